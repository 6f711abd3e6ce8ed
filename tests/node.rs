//! `scripts/control-plane up DIR --node` and `down DIR` (design.md §7): Pods on the node's bridge reach the API
//! server through the `kubernetes` Service and nothing else addressed to the Service range leaves the machine; `down`
//! leaves nothing behind — processes, mounts, cgroups, the bridge, iptables rules and chains, sysctls, host files.
//! A control plane of its own (not the harness's): this test takes one down.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script(args: &[&str], dir: &Path) -> Output {
    let mut cmd = Command::new(repo().join("scripts/control-plane"));
    cmd.arg(args[0]).arg(dir).args(&args[1..]);
    // A watchdog takes the node down if this test ends before its own `down`.
    cmd.env("CONTROL_PLANE_NO_BUILD", "1").env("CONTROL_PLANE_OWNER_PID", std::process::id().to_string());
    cmd.output().unwrap()
}

fn kubectl(dir: &Path, args: &[&str]) -> Output {
    Command::new("kubectl").arg("--kubeconfig").arg(dir.join("kubeconfig")).args(args).output().unwrap()
}

/// What `up --node` may change on the host, as text to compare before and after.
fn host_state() -> Vec<(String, String)> {
    let run = |cmd: &str, args: &[&str]| {
        String::from_utf8_lossy(&Command::new(cmd).args(args).output().unwrap().stdout).into_owned()
    };
    // iptables-save's counters and comment lines change by themselves: rules and chains only.
    let rules = |cmd: &str| {
        run(cmd, &[])
            .lines()
            .filter(|l| l.starts_with('-') || l.starts_with(':') || l.starts_with('*'))
            .map(|l| l.split(" [").next().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let links = run("ip", &["-o", "link", "show"])
        .lines()
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let sysctls = [
        "vm/overcommit_memory",
        "vm/panic_on_oom",
        "kernel/panic",
        "kernel/panic_on_oops",
        "kernel/keys/root_maxkeys",
        "kernel/keys/root_maxbytes",
        "net/ipv4/ip_forward",
    ]
    .iter()
    .map(|s| format!("{s}={}", std::fs::read_to_string(format!("/proc/sys/{s}")).unwrap().trim()))
    .collect::<Vec<_>>()
    .join(" ");
    let exists = ["/var/log/containers", "/run/containerd", "/var/lib/cni"]
        .iter()
        .map(|d| format!("{d}:{}", Path::new(d).exists()))
        .collect::<Vec<_>>()
        .join(" ");
    vec![
        ("iptables".into(), rules("iptables-save")),
        ("ip6tables".into(), rules("ip6tables-save")),
        ("links".into(), links),
        ("sysctls".into(), sysctls),
        ("host directories".into(), exists),
    ]
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let d = format!("{}/", dir.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(str::to_owned))
        .filter(|m| m.starts_with(&d))
        .collect()
}

/// Processes whose command line names `dir`.
fn processes_naming(dir: &Path) -> Vec<String> {
    let d = dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.iter().any(|a| a == &d || a.starts_with(&format!("{d}/"))) {
            found.push(args.join(" "));
        }
    }
    found
}

fn cgroups_named(prefix: &str) -> Vec<String> {
    let mut found = Vec::new();
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        for c in std::fs::read_dir(h.path()).into_iter().flatten().flatten() {
            if c.file_name().to_string_lossy().starts_with(prefix) {
                found.push(c.path().display().to_string());
            }
        }
    }
    found
}

#[test]
fn pods_reach_the_api_server_by_its_service_and_down_leaves_nothing_behind() {
    // Another test binary's node (tests/in_cluster.rs) may still be going down: its watchdog runs after it exits.
    let deadline = Instant::now() + Duration::from_secs(30);
    while String::from_utf8_lossy(&Command::new("iptables-save").output().unwrap().stdout)
        .contains("dcs-control-plane-node")
    {
        assert!(Instant::now() < deadline, "another control plane's node stays up on this machine");
        std::thread::sleep(Duration::from_millis(500));
    }
    let before = host_state();
    let dir = std::env::temp_dir().join(format!("dcs-control-plane-node-test-{}", std::process::id()));
    let up = script(&["up", "--node"], &dir);
    if !up.status.success() {
        let _ = script(&["down"], &dir);
        panic!("up --node: {}", String::from_utf8_lossy(&up.stderr));
    }
    let archive = repo().join("target/image/dcs-migration-operator.tar");
    assert!(archive.is_file(), "{} is missing: run `make image`", archive.display());
    support::ok(script(&["load-image", archive.to_str().unwrap()], &dir), "load-image");

    // A Pod on the bridge: the operator's in-cluster client reaches the API server through the Service and is
    // authenticated as its ServiceAccount (403 from RBAC, so TLS to the Service IP verified), and a connection to
    // another Service address is refused on this machine.
    let pod = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "on-the-bridge", "namespace": "default"},
      "spec": {"restartPolicy": "Never", "containers": [{"name": "op", "image": "localhost/dcs-migration-operator:0.1.0",
        "imagePullPolicy": "Never", "args": ["run", "--probe-addr", "0.0.0.0:8081", "--metrics-addr", "0.0.0.0:8080"]}]}}"#
        .replace("0.1.0", env!("CARGO_PKG_VERSION"));
    let file = dir.join("pod.json");
    std::fs::write(&file, pod).unwrap();
    support::ok(kubectl(&dir, &["apply", "-f", file.to_str().unwrap()]), "creating the Pod");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let logs = kubectl(&dir, &["logs", "on-the-bridge"]);
        let text = String::from_utf8_lossy(&logs.stdout);
        if text.contains("system:serviceaccount:default:default") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the Pod never reached the API server:\n{text}\n{}",
            String::from_utf8_lossy(&logs.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let ip =
        support::ok(kubectl(&dir, &["get", "pod", "on-the-bridge", "-o", "jsonpath={.status.podIP}"]), "the Pod's IP");
    assert!(ip.starts_with("10.244."), "a Pod on the node's bridge, not the host network: {ip}");
    let rules = support::ok(Command::new("iptables-save").output().unwrap(), "iptables-save");
    assert!(
        rules.lines().any(|l| l.contains("-d 10.0.0.0/24") && l.contains("-j REJECT") && l.starts_with("-A OUTPUT")),
        "the rest of the Service range is refused on this machine:\n{rules}"
    );

    let down = script(&["down"], &dir);
    support::ok(down, "down");
    assert_eq!(processes_naming(&dir), Vec::<String>::new(), "no process of the node left");
    assert_eq!(mounts_under(&dir), Vec::<String>::new(), "no mount left");
    assert_eq!(cgroups_named("dcs-control-plane-"), Vec::<String>::new(), "no cgroup left");
    let after = host_state();
    for ((what, b), (_, a)) in before.iter().zip(&after) {
        assert_eq!(a, b, "{what} changed by up --node / down");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
