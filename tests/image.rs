//! The shipped image (`make image`: Dockerfile, tools/image.sh), run as users run it: loaded from the
//! docker-archive `target/image/dcs-migration-operator.tar`, started with podman read-only, as UID 65532, with no
//! capabilities and no new privileges, against the real test control plane. It answers `/readyz`, and its static
//! binary resolves host names (static glibc with the image's /etc/nsswitch.conf). `make test` builds the image first;
//! a missing archive is a failure that says to run `make image`.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const NAME: &str = "dcs-migration-operator";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn image() -> String {
    format!("{NAME}:{}", env!("CARGO_PKG_VERSION"))
}

/// podman with the settings these machines need (tools/image.sh --podman-command).
fn podman() -> Command {
    let out = Command::new(repo().join("tools/image.sh")).arg("--podman-command").output().unwrap();
    let line = String::from_utf8(out.stdout).unwrap();
    let mut words = line.split_whitespace();
    let mut cmd = Command::new(words.next().expect("a podman command"));
    cmd.args(words);
    cmd
}

static LOADED: OnceLock<()> = OnceLock::new();

/// Loads the shipped archive (not whatever podman has under that name), once per test binary.
fn load_archive() {
    LOADED.get_or_init(|| {
        let archive = repo().join("target/image/dcs-migration-operator.tar");
        assert!(archive.is_file(), "{} is missing: run `make image`", archive.display());
        let loaded = support::ok(podman().arg("load").arg("-i").arg(&archive).output().unwrap(), "podman load");
        assert!(loaded.contains(&image()), "the archive holds {}: {loaded}", image());
    });
}

/// The run options of the test: the chart's security settings, and explicit ulimits (tools/image.sh says why).
fn run_options() -> Vec<&'static str> {
    vec![
        "--read-only",
        "--cap-drop=ALL",
        "--user=65532:65532",
        "--security-opt=no-new-privileges",
        "--ulimit=nofile=20000:20000",
        "--ulimit=nproc=4096:4096",
        // The control plane and the simulator listen on this machine's loopback.
        "--network=host",
    ]
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A container that is removed when the test ends, however it ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman().args(["rm", "--force", "--time=2", &self.0]).output();
    }
}

fn status_field(status: &str, field: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `tar ARGS` on each layer of the docker-archive (`tar -xOf archive LAYER | tar ARGS`); their outputs.
fn in_each_layer(args: &str) -> Vec<Vec<u8>> {
    let archive = repo().join("target/image/dcs-migration-operator.tar");
    let out = Command::new("tar").arg("-xOf").arg(&archive).arg("manifest.json").output().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&support::ok(out, "reading the archive's manifest")).unwrap();
    let layers = manifest[0]["Layers"].as_array().expect("a docker-archive manifest").clone();
    layers
        .iter()
        .map(|layer| {
            let script = format!("set -o pipefail; tar -xOf \"$1\" {} | tar {args}", layer.as_str().unwrap());
            let out = Command::new("bash").args(["-c", &script, "bash"]).arg(&archive).output().unwrap();
            assert!(out.status.success(), "tar {args} on {layer}: {}", String::from_utf8_lossy(&out.stderr));
            out.stdout
        })
        .collect()
}

/// The files of the image's layers.
fn files_in_archive() -> Vec<String> {
    let mut files: Vec<String> = in_each_layer("-t")
        .iter()
        .flat_map(|l| {
            String::from_utf8_lossy(l).lines().filter(|l| !l.ends_with('/')).map(str::to_owned).collect::<Vec<_>>()
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_image_holds_only_the_static_binary_ca_certificates_and_user_65532() {
    load_archive();
    let config = support::ok(
        podman().args(["image", "inspect", "--format", "{{json .Config}}", &image()]).output().unwrap(),
        "podman image inspect",
    );
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(config["Entrypoint"], serde_json::json!(["/usr/local/bin/dcs-migration-operator"]));
    assert_eq!(config["Labels"]["org.opencontainers.image.version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        files_in_archive(),
        [
            "etc/group",
            "etc/nsswitch.conf",
            "etc/passwd",
            "etc/ssl/certs/ca-certificates.crt",
            "usr/local/bin/dcs-migration-operator",
        ]
    );
    // The binary as shipped: static (no program interpreter: the image has no libc), a release build without
    // the chaos tests' crash points.
    let binary = in_each_layer("-xO usr/local/bin/dcs-migration-operator 2>/dev/null || true")
        .into_iter()
        .max_by_key(Vec::len)
        .unwrap();
    assert!(binary.starts_with(b"\x7fELF"), "the binary is in the archive");
    let shipped = std::env::temp_dir().join(format!("image-test-binary-{}", std::process::id()));
    std::fs::write(&shipped, &binary).unwrap();
    let headers = support::ok(Command::new("readelf").args(["-l", "-d"]).arg(&shipped).output().unwrap(), "readelf");
    std::fs::remove_file(&shipped).unwrap();
    assert!(!headers.contains("program interpreter"), "statically linked (static-pie at most): {headers}");
    assert!(!headers.contains("(NEEDED)"), "no shared library needed: {headers}");
    let needle = b"DCS_OPERATOR_CRASH_AT";
    assert!(!binary.windows(needle.len()).any(|w| w == needle), "no crash points in the shipped binary");
}

#[tokio::test]
async fn a_container_of_the_image_runs_read_only_as_65532_without_capabilities_and_answers_readyz() {
    load_archive();
    let cp = support::control_plane();
    let out = cp.kubectl().args(["apply", "--server-side", "-f"]).arg(repo().join("crds")).output().unwrap();
    support::ok(out, "applying the CRD");
    // The admin kubeconfig, readable by 65532 (the control plane's copy is root's, mode 600).
    let kubeconfig = std::env::temp_dir().join(format!("image-test-kubeconfig-{}", std::process::id()));
    std::fs::copy(cp.kubeconfig(), &kubeconfig).unwrap();
    std::fs::set_permissions(&kubeconfig, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let (metrics, probes) = (free_port(), free_port());
    let name = format!("dcs-image-test-{}", std::process::id());
    let mut run = podman();
    run.args(["run", "--detach", "--name", &name])
        .args(run_options())
        .arg(format!("--volume={}:/kubeconfig:ro", kubeconfig.display()))
        .args(["--env=KUBECONFIG=/kubeconfig", &image(), "run"])
        .args(["--metrics-addr", &format!("127.0.0.1:{metrics}"), "--probe-addr", &format!("127.0.0.1:{probes}")]);
    support::ok(run.output().unwrap(), "podman run");
    let _container = Container(name.clone());

    let http = reqwest::Client::new();
    let readyz = format!("http://127.0.0.1:{probes}/readyz");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(&readyz).send().await
            && r.status() == 200
        {
            break;
        }
        if Instant::now() > deadline {
            let logs = podman().args(["logs", &name]).output().unwrap();
            panic!("no 200 from {readyz} within 60 s; container log:\n{}", String::from_utf8_lossy(&logs.stderr));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = http.get(format!("http://127.0.0.1:{metrics}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);

    // What the kernel says about the container's process.
    let pid = support::ok(
        podman().args(["inspect", "--format", "{{.State.Pid}}", &name]).output().unwrap(),
        "podman inspect",
    );
    let pid = pid.trim();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(status_field(&status, "Uid"), "65532 65532 65532 65532");
    assert_eq!(status_field(&status, "Gid"), "65532 65532 65532 65532");
    for caps in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status_field(&status, caps), "0000000000000000", "{caps}");
    }
    assert_eq!(status_field(&status, "NoNewPrivs"), "1");
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root = mounts.lines().find(|l| l.split_whitespace().nth(4) == Some("/")).expect("a root mount");
    let options = root.split_whitespace().nth(5).unwrap();
    assert!(options.split(',').any(|o| o == "ro"), "the root filesystem is read-only: {root}");
    let _ = std::fs::remove_file(&kubeconfig);
}

#[test]
fn the_static_binary_in_the_image_resolves_host_names() {
    // Static glibc resolves through /etc/nsswitch.conf with its built-in files and dns sources; `localhost`
    // comes from the container's /etc/hosts, and only a resolved name reaches the simulator.
    load_archive();
    let (ak, sk, project) = ("IMAGETESTACCESSKEY00", "image-test-secret-key", "0123456789abcdef0123456789abcdef");
    let sim = dcs_migration_operator::simulator::spawn(dcs_migration_operator::simulator::Config::new(ak, sk, project))
        .unwrap();
    let endpoint = format!("http://localhost:{}", sim.addr().port());
    let out = podman()
        .args(["run", "--rm"])
        .args(run_options())
        .args([&format!("--env=HUAWEICLOUD_SDK_AK={ak}"), &format!("--env=HUAWEICLOUD_SDK_SK={sk}")])
        .args([&image(), "dcs", "list", "--region", "cn-north-4", "--endpoint", &endpoint, "--project-id", project])
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_str(&support::ok(out, "dcs list in the image")).unwrap();
    assert!(listed.get("migration_tasks").is_some() || listed.get("count").is_some(), "the API's answer: {listed}");
    sim.shutdown();
}

#[test]
fn the_image_trusts_a_private_ca_mounted_as_the_charts_ca_bundle() {
    // An HTTPS endpoint whose certificate a private CA (as Huawei Cloud Stack's) signed; the chart's caBundle mounts
    // that CA at /etc/dcs-migration-operator/ca and sets SSL_CERT_DIR (charts/.../templates/deployment.yaml).
    load_archive();
    let dir = std::env::temp_dir().join(format!("image-test-ca-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("ca")).unwrap();
    let openssl =
        |args: &[&str]| support::ok(Command::new("openssl").args(args).current_dir(&dir).output().unwrap(), "openssl");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        "ca.key",
        "-out",
        "ca/ca.crt",
        "-subj",
        "/CN=private CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n\
         subjectAltName=DNS:localhost\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca/ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.crt",
    ]);
    std::fs::set_permissions(dir.join("ca/ca.crt"), std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    // openssl's test server: TLS with that certificate, then any HTTP answer (not the DCS API's: only TLS is tested).
    let port = free_port();
    let mut server = Command::new("openssl")
        .args(["s_server", "-quiet", "-WWW", "-accept", &format!("127.0.0.1:{port}"), "-cert", "server.crt"])
        .args(["-key", "server.key"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "openssl s_server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let list = |bundle: bool| {
        let mut cmd = podman();
        cmd.args(["run", "--rm"]).args(run_options());
        if bundle {
            cmd.arg(format!("--volume={}:/etc/dcs-migration-operator/ca:ro", dir.join("ca").display()))
                .arg("--env=SSL_CERT_DIR=/etc/ssl/certs:/etc/dcs-migration-operator/ca");
        }
        cmd.args(["--env=HUAWEICLOUD_SDK_AK=AK", "--env=HUAWEICLOUD_SDK_SK=SK", &image(), "dcs", "list"])
            .args(["--region", "cn-north-4", "--project-id", "0123456789abcdef0123456789abcdef", "--endpoint"])
            .arg(format!("https://localhost:{port}"));
        let out = cmd.output().unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let without = list(false);
    let with = list(true);
    let _ = server.kill();
    let _ = server.wait();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(without.contains("UnknownIssuer"), "the image's public CAs alone refuse it: {without}");
    assert!(!with.contains("certificate") && with.contains("HTTP 200"), "TLS verified with the bundle: {with}");
}
