//! Shared harness for integration tests against the real test control plane (design.md §7): etcd and
//! kube-apiserver started by `scripts/control-plane`, one control plane per test binary, one namespace per test.
//!
//! Use it from an integration test file with `mod support;`:
//!
//! ```ignore
//! mod support;
//!
//! #[tokio::test]
//! async fn something_real() {
//!     let client = support::admin_client().await;
//!     let ns = support::fresh_namespace("something-real").await;
//!     let sa = support::service_account_client(&ns, "operator").await; // RBAC applies to this one
//!     let out = support::control_plane().kubectl().args(["get", "ns", &ns]).output().unwrap();
//! }
//! ```
//!
//! The control plane starts on first use (a few seconds) and is stopped when the test process exits: a watchdog
//! started by `scripts/control-plane up` (`CONTROL_PLANE_OWNER_PID`) runs `down` and removes its directory once this
//! process is gone, whatever way it ends. Set `CONTROL_PLANE_KEEP=1` to keep the directory (logs, kubeconfig) for
//! a look after the run. `KUBEBUILDER_ASSETS` (a directory with `kube-apiserver` and `etcd`) overrides the built
//! binaries. Missing binaries are a test failure that says to run `make control-plane`, never a skip.
//!
//! What this control plane lacks unless a test binary asks for a node (`control_plane_with_node`, design.md §7):
//! no controller-manager and no kubelet, so namespaces stay
//! `Terminating` once deleted, there is no garbage collection through ownerReferences, no default ServiceAccount,
//! and Deployments never get Pods.
#![allow(dead_code)] // each test binary uses its own part of the harness

pub mod audit;

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{
        OnceLock,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use k8s_openapi::api::{
    authentication::v1::{TokenRequest, TokenRequestSpec},
    core::v1::{Namespace, ServiceAccount},
};
use kube::{
    Api, Client, Config,
    api::{ObjectMeta, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};

/// A running control plane: the directory `scripts/control-plane up` filled in.
#[derive(Debug)]
pub struct ControlPlane {
    dir: PathBuf,
    /// `PATH` with the control plane's binary directories (kube-apiserver, etcd, helm) in front.
    path: String,
}

impl ControlPlane {
    /// The control plane's directory: `kubeconfig`, `env`, `pids`, logs, certificates.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The admin kubeconfig (user `admin` in `system:masters`; its context is the current one).
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// `PATH` with the built binaries (`kube-apiserver`, `etcd`, `helm`) in front, as `DIR/env` sets it.
    pub fn path_env(&self) -> &str {
        &self.path
    }

    /// A command with `KUBECONFIG` and `PATH` set as `source DIR/env` would set them.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("KUBECONFIG", self.kubeconfig()).env("PATH", &self.path);
        cmd
    }

    /// `kubectl`, acting as the admin on this control plane.
    pub fn kubectl(&self) -> Command {
        self.command("kubectl")
    }

    /// The audit log (`DIR/audit.log`, JSON lines), written when the control plane was started with
    /// `control_plane_with_audit`.
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    /// Restarts etcd and kube-apiserver on the same ports, certificates and data (`scripts/control-plane
    /// restart`). Every test of the binary sees the outage: only for test binaries built around it.
    pub fn restart(&self) {
        run_script(&["restart"], &self.dir, &[], &[]).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Imports an image archive into the node's containerd (`scripts/control-plane load-image`).
    pub fn load_image(&self, archive: &Path) {
        run_script(&["load-image"], &self.dir, &[archive.to_str().unwrap()], &[]).unwrap_or_else(|e| panic!("{e}"));
    }
}

static CONTROL_PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
static NAMESPACES: AtomicU32 = AtomicU32::new(0);
static WITH_NODE: AtomicBool = AtomicBool::new(false);
static WITH_AUDIT: AtomicBool = AtomicBool::new(false);

/// The test binary's control plane with a real node (`scripts/control-plane up DIR --node`: controller-manager,
/// scheduler, containerd and a kubelet; Pods run, namespaces are finalized). A test binary that uses it calls this
/// before anything else of the harness (every test of it), so that the shared control plane is this one.
pub fn control_plane_with_node() -> &'static ControlPlane {
    WITH_NODE.store(true, Ordering::SeqCst);
    control_plane()
}

/// The test binary's control plane with an audit log (`scripts/control-plane up DIR --audit`: every request at
/// level Metadata in `DIR/audit.log`, see `ControlPlane::audit_log`). Called before anything else of the harness.
pub fn control_plane_with_audit() -> &'static ControlPlane {
    WITH_AUDIT.store(true, Ordering::SeqCst);
    control_plane()
}

/// The test binary's control plane, started on first call (blocking, a few seconds); later calls return at once.
///
/// Panics (failing the test, never skipping it) when the binaries are missing — run `make control-plane` — or
/// when the control plane does not start; the message then carries the end of the apiserver and etcd logs.
pub fn control_plane() -> &'static ControlPlane {
    match CONTROL_PLANE.get_or_init(start) {
        Ok(cp) => cp,
        Err(e) => panic!("{e}"),
    }
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn start() -> Result<ControlPlane, String> {
    let exe = std::env::current_exe().ok();
    let name = exe.as_deref().and_then(|p| p.file_stem()).and_then(|s| s.to_str()).unwrap_or("test");
    let dir = std::env::temp_dir().join(format!("dcs-control-plane-{name}-{}", std::process::id()));
    let owner = std::process::id().to_string();
    let remove = if std::env::var_os("CONTROL_PLANE_KEEP").is_some() { "0" } else { "1" };
    let mut options: Vec<&str> = vec![];
    if WITH_NODE.load(Ordering::SeqCst) {
        options.push("--node");
    }
    if WITH_AUDIT.load(Ordering::SeqCst) {
        options.push("--audit");
    }
    run_script(
        &["up"],
        &dir,
        &options,
        &[
            // Tests never build (that can take many minutes): `make control-plane` does.
            ("CONTROL_PLANE_NO_BUILD", "1"),
            ("CONTROL_PLANE_OWNER_PID", &owner),
            ("CONTROL_PLANE_REMOVE_DIR", remove),
        ],
    )?;
    let env = std::fs::read_to_string(dir.join("env")).map_err(|e| format!("reading {}/env: {e}", dir.display()))?;
    let bins = env
        .lines()
        .find_map(|l| l.strip_prefix("export PATH="))
        .map(|v| shell_unquote(v.trim_end_matches(":\"$PATH\"")))
        .ok_or_else(|| format!("{}/env sets no PATH", dir.display()))?;
    let path = match std::env::var("PATH") {
        Ok(p) if !p.is_empty() => format!("{bins}:{p}"),
        _ => bins,
    };
    eprintln!("control plane for this test binary: {}", dir.display());
    Ok(ControlPlane { dir, path })
}

/// Runs `scripts/control-plane <args> DIR <options>`; on failure, the message says what to do.
fn run_script(args: &[&str], dir: &Path, options: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let script = repo_root().join("scripts/control-plane");
    let out = Command::new(&script)
        .args(args)
        .arg(dir)
        .args(options)
        .envs(env.iter().copied())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        return Err(format!(
            "the test control plane's binaries (kube-apiserver, etcd, helm) are missing or stale: run \
             `make control-plane` (or set KUBEBUILDER_ASSETS to a directory with kube-apiserver and etcd)\n{stderr}"
        ));
    }
    Err(format!("`scripts/control-plane {} {}` failed ({}):\n{stderr}", args.join(" "), dir.display(), out.status))
}

/// Undoes bash's `printf %q` for the simple paths it is used on (backslash escapes only).
fn shell_unquote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

/// The admin's client configuration (token auth, the control plane's CA).
pub async fn admin_config() -> Config {
    let kubeconfig = control_plane().kubeconfig();
    let kc = Kubeconfig::read_from(&kubeconfig).unwrap_or_else(|e| panic!("reading {}: {e}", kubeconfig.display()));
    Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("loading {}: {e}", kubeconfig.display()))
}

/// A client acting as the admin (`system:masters`). A new client on each call: every `#[tokio::test]` has its own
/// runtime, and a client must not outlive the runtime it was made in.
pub async fn admin_client() -> Client {
    Client::try_from(admin_config().await).expect("building the admin client")
}

/// Creates a namespace of its own for a test and returns its name: `<hint>-<n>`, with `hint` cut and turned into a
/// DNS label. The namespace is never deleted (nothing would finalize it: no controller-manager).
pub async fn fresh_namespace(hint: &str) -> String {
    let mut base: String =
        hint.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).take(50).collect();
    base = base.trim_matches('-').to_string();
    if base.is_empty() {
        base = "test".into();
    }
    let name = format!("{base}-{}", NAMESPACES.fetch_add(1, Ordering::Relaxed));
    let ns =
        Namespace { metadata: ObjectMeta { name: Some(name.clone()), ..Default::default() }, ..Default::default() };
    Api::<Namespace>::all(admin_client().await)
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
    name
}

/// Mints a token for ServiceAccount `ns/sa` with the TokenRequest API (creating the ServiceAccount if needed) and
/// returns a client that acts as `system:serviceaccount:<ns>:<sa>`: what it may do is decided by RBAC, for real.
pub async fn service_account_client(ns: &str, sa: &str) -> Client {
    let token = service_account_token(ns, sa).await;
    let mut config = admin_config().await;
    config.default_namespace = ns.to_string();
    config.auth_info = serde_json::from_value(serde_json::json!({ "token": token })).expect("an AuthInfo with a token");
    Client::try_from(config).expect("building the service account's client")
}

/// A fresh token (valid one hour) for ServiceAccount `ns/sa`, which is created if it does not exist.
pub async fn service_account_token(ns: &str, sa: &str) -> String {
    service_account_token_for(ns, sa, None).await
}

/// A fresh token (valid one hour) for ServiceAccount `ns/sa` (created if it does not exist), for `audience` if
/// given, else for the API server's own audience.
pub async fn service_account_token_for(ns: &str, sa: &str, audience: Option<&str>) -> String {
    let api = Api::<ServiceAccount>::namespaced(admin_client().await, ns);
    let account = ServiceAccount {
        metadata: ObjectMeta { name: Some(sa.to_string()), ..Default::default() },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &account).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("creating ServiceAccount {ns}/{sa}: {e}"),
    }
    let request = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(3600),
            audiences: audience.map(|a| vec![a.to_owned()]).unwrap_or_default(),
            ..Default::default()
        },
        ..Default::default()
    };
    let minted = api
        .create_token_request(sa, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("minting a token for ServiceAccount {ns}/{sa}: {e}"));
    minted.status.expect("a TokenRequest answer has a status").token
}

/// The test API server as an OIDC issuer of ServiceAccount tokens for `audience`: its issuer (discovery document)
/// and keys (`/openid/v1/jwks`), all a verifier needs, as a cloud's identity provider is configured with them.
pub async fn service_account_issuer(audience: &str) -> dcs_migration_operator::simulator::OidcIssuer {
    async fn api_get(path: &str) -> String {
        let request = hyper::Request::get(path).body(Vec::new()).unwrap();
        admin_client().await.request_text(request).await.unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
    let discovery: serde_json::Value =
        serde_json::from_str(&api_get("/.well-known/openid-configuration").await).unwrap();
    let issuer = discovery["issuer"].as_str().expect("the discovery document names its issuer").to_owned();
    let jwks = dcs_migration_operator::simulator::Jwks::parse(api_get("/openid/v1/jwks").await.as_bytes())
        .expect("the API server's JWKS parses");
    dcs_migration_operator::simulator::OidcIssuer { issuer, audience: audience.to_owned(), jwks }
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `timeout`; panics naming `what` otherwise.
/// A command's standard output, or a panic naming `what` with everything it printed.
pub fn ok(out: std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs the control plane's kubectl with `input` on its standard input.
pub fn kubectl_stdin(args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = control_plane()
        .kubectl()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
