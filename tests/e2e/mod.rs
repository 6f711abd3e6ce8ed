//! End-to-end harness: the operator binary as a real process against the test control plane
//! (`tests/support`) and an in-process `dcs-simulator` over real HTTP with real signing.
//! Every Secret value a test creates is registered, and `Env::assert_no_secret_leaked` scans
//! the operator's logs, Events, statuses and `kubectl describe` for them.
#![allow(dead_code)] // each test binary uses its own part of the harness

use super::support;
use dcs_migration_operator::simulator::{self, RunningSimulator};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const AK: &str = "E2EACCESSKEY00000000";
pub const PROJECT: &str = "0123456789abcdef0123456789abcdef";
pub const CRD_FILE: &str = "crds/dcs.migration.io_redismigrations.yaml";

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

static CRD: OnceLock<()> = OnceLock::new();

/// Installs the CRD once per test binary and waits until it is Established.
pub fn install_crd() {
    CRD.get_or_init(|| {
        let cp = support::control_plane();
        let out = cp.kubectl().args(["apply", "--server-side", "-f"]).arg(repo().join(CRD_FILE)).output().unwrap();
        assert!(out.status.success(), "applying the CRD: {}", String::from_utf8_lossy(&out.stderr));
        // Asked again on failure: once, under load, `kubectl wait` failed right after the apply.
        let wait = || {
            cp.kubectl()
                .args(["wait", "--for=condition=Established", "crd/redismigrations.dcs.migration.io", "--timeout=60s"])
                .output()
                .unwrap()
        };
        let out = std::iter::repeat_with(wait).take(3).find(|out| out.status.success()).unwrap_or_else(wait);
        assert!(out.status.success(), "CRD not established: {}", String::from_utf8_lossy(&out.stderr));
    });
}

/// A random printable value, unique per call.
pub fn secret_value(prefix: &str) -> String {
    format!("{prefix}-{:032x}", rand::random::<u128>())
}

/// One test's world: a namespace, a simulator, Secrets with registered values.
pub struct Env {
    pub ns: String,
    pub sim: RunningSimulator,
    pub secret_key: String,
    pub secrets: Vec<String>,
    /// The account's access key and project (`AK` and `PROJECT` unless made with `with_account`).
    pub access_key: String,
    pub project: String,
    http: reqwest::Client,
    phase: Duration,
}

impl Env {
    /// Namespace, simulator (`phase` per transitional state), credentials Secret
    /// `dcs-credentials` and password Secret `redis-passwords` (keys `source`, `target`).
    pub async fn new(hint: &str, phase: Duration) -> Self {
        Self::with_simulator(hint, phase, |config| config).await
    }

    /// Like `new`, with the simulator's configuration tuned (e.g. whether IPs swap on exchange).
    pub async fn with_simulator(
        hint: &str,
        phase: Duration,
        tune: impl FnOnce(simulator::Config) -> simulator::Config,
    ) -> Self {
        Self::with_account(hint, phase, AK, PROJECT, tune).await
    }

    /// Like `with_simulator`, for an account of its own: the simulator accepts `access_key` (with a fresh secret
    /// key) for `project`, and `dcs-credentials` holds them (several such `Env`s are several DCS accounts).
    pub async fn with_account(
        hint: &str,
        phase: Duration,
        access_key: &str,
        project: &str,
        tune: impl FnOnce(simulator::Config) -> simulator::Config,
    ) -> Self {
        let mut env = Self::build(hint, phase, access_key, project, tune).await;
        let secret_key = env.secret_key.clone();
        env.put_secret(
            "dcs-credentials",
            &[("accessKey", access_key), ("secretKey", &secret_key), ("projectId", project)],
        )
        .await;
        env
    }

    /// Like `with_simulator`, with no credentials Secret: the namespace holds no access key (keyless tests).
    pub async fn without_keys(
        hint: &str,
        phase: Duration,
        tune: impl FnOnce(simulator::Config) -> simulator::Config,
    ) -> Self {
        Self::build(hint, phase, AK, PROJECT, tune).await
    }

    async fn build(
        hint: &str,
        phase: Duration,
        access_key: &str,
        project: &str,
        tune: impl FnOnce(simulator::Config) -> simulator::Config,
    ) -> Self {
        install_crd();
        let ns = support::fresh_namespace(hint).await;
        let secret_key = secret_value("SK");
        let config = tune(simulator::Config::new(access_key, &secret_key, project).with_phase(phase));
        let sim = simulator::spawn(config).expect("simulator");
        let mut env = Self {
            ns,
            sim,
            secret_key: secret_key.clone(),
            secrets: vec![secret_key.clone()],
            access_key: access_key.to_owned(),
            project: project.to_owned(),
            http: reqwest::Client::new(),
            phase,
        };
        let (source, target) = (secret_value("SourcePw"), secret_value("TargetPw"));
        env.put_secret("redis-passwords", &[("source", &source), ("target", &target)]).await;
        env.secrets.extend([source, target]);
        env
    }

    pub fn url(&self) -> String {
        self.sim.url()
    }

    /// Stops the simulator and starts a new one on the same port with the same key and timings:
    /// every task is gone (a simulator restarted with its state lost); clients see refused
    /// connections for `outage`.
    pub fn restart_simulator_with_state_lost(&mut self, outage: Duration) {
        let addr = self.sim.addr();
        let config = simulator::Config::new(&self.access_key, &self.secret_key, &self.project).with_phase(self.phase);
        let placeholder = simulator::spawn(config.clone()).expect("simulator");
        std::mem::replace(&mut self.sim, placeholder).shutdown();
        std::thread::sleep(outage);
        let deadline = Instant::now() + Duration::from_secs(10);
        let restarted = loop {
            match simulator::spawn_at(config.clone(), addr) {
                Ok(sim) => break sim,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("rebinding {addr}: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("the simulator cannot listen on {addr} again: {e}"),
            }
        };
        std::mem::replace(&mut self.sim, restarted).shutdown();
    }

    pub async fn client(&self) -> kube::Client {
        support::admin_client().await
    }

    /// Creates or replaces a Secret; its values are registered for the leak scan (the access
    /// key id is not a secret and stays out of the list).
    pub async fn put_secret(&mut self, name: &str, data: &[(&str, &str)]) {
        let api: Api<Secret> = Api::namespaced(self.client().await, &self.ns);
        let string_data: serde_json::Map<String, Value> =
            data.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect();
        // Updated in place: a Secret the operator protects (in-use finalizer) cannot be recreated.
        match api.get_opt(name).await.expect("read Secret") {
            Some(_) => {
                let patch = json!({"data": null, "stringData": string_data});
                api.patch(name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch))
                    .await
                    .expect("update Secret");
            }
            None => {
                let secret: Secret = serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": string_data,
                }))
                .unwrap();
                api.create(&PostParams::default(), &secret).await.expect("create Secret");
            }
        }
        for (key, value) in data {
            if *key != "accessKey" && *key != "projectId" && !self.secrets.iter().any(|s| s == value) {
                self.secrets.push(value.to_string());
            }
        }
    }

    /// An example manifest with the simulator as its endpoint.
    pub fn example(&self, file: &str) -> String {
        let text = std::fs::read_to_string(repo().join("examples").join(file)).expect("example exists");
        with_endpoint(&text, &self.url())
    }

    /// `kubectl apply -f -` in the test namespace; panics with kubectl's message on failure.
    pub fn apply(&self, yaml: &str) {
        let out = self.kubectl_stdin(&["apply", "-f", "-"], yaml);
        assert!(out.status.success(), "kubectl apply failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn kubectl(&self, args: &[&str]) -> std::process::Output {
        support::control_plane().kubectl().args(["-n", &self.ns]).args(args).output().expect("kubectl runs")
    }

    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> std::process::Output {
        support::kubectl_stdin(&[&["-n", &self.ns], args].concat(), input)
    }

    /// The RedisMigration as JSON.
    pub fn get(&self, name: &str) -> Value {
        let out = self.kubectl(&["get", "rmig", name, "-o", "json"]);
        assert!(out.status.success(), "kubectl get rmig {name}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Waits until `.status.phase` is `phase`.
    pub async fn wait_phase(&self, name: &str, phase: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let rm = self.get(name);
            if rm["status"]["phase"] == phase {
                return rm;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never reached phase {phase}; now: {}",
                serde_json::to_string_pretty(&rm["status"]).unwrap()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until `count` RedisMigrations of the namespace are in `phase`.
    pub async fn wait_count_in_phase(&self, phase: &str, count: usize, timeout: Duration) {
        support::eventually(&format!("{count} resources in phase {phase}"), timeout, || async {
            let out = self.kubectl(&["get", "rmig", "-o", "json"]);
            let list: Value = serde_json::from_slice(&out.stdout).ok()?;
            let n = list["items"].as_array()?.iter().filter(|r| r["status"]["phase"] == phase).count();
            (n == count).then_some(())
        })
        .await;
    }

    /// Waits until condition `type_` has `status` (and, if given, `reason`).
    pub async fn wait_condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: Option<&str>,
        timeout: Duration,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let rm = self.get(name);
            let found = rm["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == type_ && c["status"] == status && reason.is_none_or(|r| c["reason"] == r));
            if found {
                return rm;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: condition {type_}={status} ({reason:?}) never came; now: {}",
                serde_json::to_string_pretty(&rm["status"]).unwrap()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn sim_admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.url()));
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(serde_json::to_vec(&b).unwrap());
        }
        let resp = req.send().await.expect("simulator admin call");
        let bytes = resp.bytes().await.unwrap();
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }

    pub async fn sim_state(&self) -> Value {
        self.sim_admin(reqwest::Method::GET, "/_sim/state", None).await
    }

    /// The simulator's tasks with this name.
    pub async fn tasks_named(&self, name: &str) -> Vec<Value> {
        let state = self.sim_state().await;
        state["tasks"].as_array().unwrap().iter().filter(|t| t["task_name"] == name).cloned().collect()
    }

    /// Fails if any registered secret value appears in the operator's log, the namespace's
    /// Events, the resources' statuses, or `kubectl describe`.
    pub fn assert_no_secret_leaked(&self, operator_logs: &[String]) {
        self.assert_no_secret_leaked_in(operator_logs, &[]);
    }

    /// `assert_no_secret_leaked`, plus other texts (a `/metrics` scrape, error outputs) named by place.
    pub fn assert_no_secret_leaked_in(&self, operator_logs: &[String], others: &[(&str, String)]) {
        let events = self.kubectl(&["get", "events", "-o", "json"]);
        let statuses = self.kubectl(&["get", "rmig", "-o", "json"]);
        let describe = self.kubectl(&["describe", "rmig"]);
        let mut places: Vec<(&str, String)> = vec![
            ("Events", String::from_utf8_lossy(&events.stdout).into_owned()),
            ("RedisMigration objects", String::from_utf8_lossy(&statuses.stdout).into_owned()),
            ("kubectl describe", String::from_utf8_lossy(&describe.stdout).into_owned()),
        ];
        for log in operator_logs {
            places.push(("operator log", log.clone()));
        }
        for (place, text) in others {
            places.push((place, text.clone()));
        }
        for secret in &self.secrets {
            for (place, text) in &places {
                assert!(!text.contains(secret.as_str()), "a secret value leaked into the {place}");
            }
        }
    }
}

/// Inserts `endpoint: URL` after the `region:` line of every RedisMigration in a manifest.
pub fn with_endpoint(manifest: &str, url: &str) -> String {
    let mut out = String::new();
    for line in manifest.lines() {
        out.push_str(line);
        out.push('\n');
        if let Some(indent) = line.strip_suffix(line.trim_start()).filter(|_| line.trim_start().starts_with("region:"))
        {
            out.push_str(&format!("{indent}endpoint: {url}\n"));
        }
    }
    out
}

/// The operator running as a process, watching one namespace.
pub struct Operator {
    child: Child,
    log: PathBuf,
    ns: String,
    restarts: u32,
    extra_env: Vec<(String, String)>,
    extra_args: Vec<String>,
    /// The kubeconfig the process uses: the admin's, or the Helm chart's ServiceAccount's (`ChartIdentity`).
    kubeconfig: PathBuf,
}

impl Operator {
    /// Starts `dcs-migration-operator run --watch-namespace NS` with a short tick.
    pub fn start(env: &Env) -> Self {
        Self::start_with(env, &[], &[])
    }

    /// Starts the operator with extra flags and env vars. With `DCS_E2E_AS_CHART_SA` set (`1` or `namespace`: the
    /// chart's Role in the test namespace, as with `watchNamespace`; `cluster`: the chart's default ClusterRole), it
    /// runs as the Helm chart's own ServiceAccount instead of the admin: the whole suite then proves the chart's RBAC.
    pub fn start_with(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Self {
        match ChartIdentity::from_env() {
            Some(identity) => Self::start_as_chart_identity(env, identity, args, vars),
            None => Self::start_with_kubeconfig(env, support::control_plane().kubeconfig(), args, vars),
        }
    }

    /// Starts the operator authenticated as the Helm chart's ServiceAccount (`identity` picks the chart's RBAC
    /// mode): the chart's ServiceAccount and RBAC are rendered with `helm template` and applied, a token is minted
    /// with the TokenRequest API, and the process gets a kubeconfig with that token (same server and CA as the admin's).
    pub fn start_as_chart_identity(env: &Env, identity: ChartIdentity, args: &[&str], vars: &[(&str, &str)]) -> Self {
        let kubeconfig = chart_identity_kubeconfig(&env.ns, identity);
        Self::start_with_kubeconfig(env, kubeconfig, args, vars)
    }

    /// Starts the operator with a kubeconfig of the test's choosing (e.g. a restricted identity).
    pub fn start_with_kubeconfig(env: &Env, kubeconfig: PathBuf, args: &[&str], vars: &[(&str, &str)]) -> Self {
        let log = std::env::temp_dir().join(format!("dcs-operator-{}-{}.log", env.ns, rand::random::<u32>()));
        let mut op = Self {
            child: spawn_with_kubeconfig(&env.ns, &log, args, vars, &kubeconfig),
            kubeconfig,
            log,
            ns: env.ns.clone(),
            restarts: 0,
            extra_env: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            extra_args: args.iter().map(|a| a.to_string()).collect(),
        };
        op.restarts = 0;
        op
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (as Kubernetes does to stop a pod); the process stays to be waited for.
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().expect("kill runs");
        assert!(status.success(), "kill -TERM {}", self.pid());
    }

    /// SIGKILLs the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The exit status if the process has ended, without waiting.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// How many times the process was started again.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// The log file all incarnations append to.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Waits for the process to end by itself (a crash point), at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the process again (same namespace and flags, optionally other env vars).
    pub fn restart(&mut self, vars: &[(&str, &str)]) {
        self.kill();
        self.restarts += 1;
        let args: Vec<&str> = self.extra_args.iter().map(String::as_str).collect();
        self.child = spawn_with_kubeconfig(&self.ns, &self.log, &args, vars, &self.kubeconfig);
    }

    /// Everything the process (and its earlier incarnations) logged.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(ns: &str, log: &Path, args: &[&str], vars: &[(&str, &str)]) -> Child {
    spawn_with_kubeconfig(ns, log, args, vars, &support::control_plane().kubeconfig())
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for `--metrics-addr` / `--probe-addr`).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn spawn_with_kubeconfig(ns: &str, log: &Path, args: &[&str], vars: &[(&str, &str)], kubeconfig: &Path) -> Child {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("operator log file");
    // Many operators run at once: unless a test picks them, the metrics and probe listeners take
    // any free port instead of the fixed defaults, and the operator watches the test's namespace only.
    let mut defaults = Vec::new();
    for (flag, value) in [("--metrics-addr", "127.0.0.1:0"), ("--probe-addr", "127.0.0.1:0"), ("--watch-namespace", ns)]
    {
        if !args.iter().any(|a| *a == flag || a.starts_with(&format!("{flag}="))) {
            defaults.extend([flag, value]);
        }
    }
    Command::new(env!("CARGO_BIN_EXE_dcs-migration-operator"))
        .args(["run", "--tick", "300ms", "--create-grace", "2s"])
        .args(&defaults)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "info,dcs_migration_operator=debug")
        .env_remove("HUAWEICLOUD_SDK_AK")
        .env_remove("HUAWEICLOUD_SDK_SK")
        .env_remove("DCS_OPERATOR_CRASH_AT")
        // The SDK's chain tries ECS metadata last: tests never reach 169.254.169.254.
        .env("METADATA_ENDPOINT", "none")
        .envs(vars.iter().copied())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .expect("the operator starts")
}

// ---- The Helm chart's identity (charts/dcs-migration-operator) --------------------------------------------------

pub const CHART_DIR: &str = "charts/dcs-migration-operator";

/// Which of the chart's RBAC modes the operator runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartIdentity {
    /// `watchNamespace` set to the test namespace: a Role and RoleBinding there.
    WatchNamespace,
    /// The chart's default: a ClusterRole and ClusterRoleBinding.
    ClusterWide,
}

impl ChartIdentity {
    /// `DCS_E2E_AS_CHART_SA`: unset, empty or `0`: the admin; `cluster`: `ClusterWide`; anything else: `WatchNamespace`.
    pub fn from_env() -> Option<Self> {
        match std::env::var("DCS_E2E_AS_CHART_SA").ok()?.as_str() {
            "" | "0" => None,
            "cluster" => Some(Self::ClusterWide),
            _ => Some(Self::WatchNamespace),
        }
    }
}

/// The release name a test namespace's chart identity is installed under (unique per namespace, so that
/// cluster-scoped RBAC objects of several tests do not collide).
pub fn chart_release(ns: &str) -> String {
    format!("op-{ns}")
}

/// `helm template RELEASE charts/dcs-migration-operator --namespace NS` with `--set` values and `--show-only`
/// templates (none: all); panics with helm's message on failure.
pub fn helm_template(release: &str, ns: &str, sets: &[&str], show_only: &[&str]) -> String {
    let mut cmd = support::control_plane().command("helm");
    cmd.args(["template", release]).arg(repo().join(CHART_DIR)).args(["--namespace", ns]);
    for set in sets {
        cmd.args(["--set", set]);
    }
    for template in show_only {
        cmd.args(["--show-only", template]);
    }
    let out = cmd.output().expect("helm runs");
    assert!(out.status.success(), "helm template {sets:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The name of the chart's ServiceAccount (and RBAC objects) for a release.
pub fn chart_fullname(release: &str) -> String {
    let name = if release.contains("dcs-migration-operator") {
        release.to_owned()
    } else {
        format!("{release}-dcs-migration-operator")
    };
    name.chars().take(63).collect::<String>().trim_end_matches('-').to_owned()
}

/// Renders and applies the chart's ServiceAccount and RBAC for release `chart_release(ns)` in `ns`.
pub fn apply_chart_rbac(ns: &str, identity: ChartIdentity) -> String {
    let release = chart_release(ns);
    let watch = format!("watchNamespace={ns}");
    let mut sets = vec!["crds.install=false"];
    if identity == ChartIdentity::WatchNamespace {
        sets.push(&watch);
    }
    let manifests = helm_template(&release, ns, &sets, &["templates/serviceaccount.yaml", "templates/rbac.yaml"]);
    kubectl_apply(&manifests);
    chart_fullname(&release)
}

/// `kubectl apply -f -` as the admin; panics with kubectl's message on failure.
pub fn kubectl_apply(manifests: &str) {
    use std::io::Write;
    let mut child = support::control_plane()
        .kubectl()
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    child.stdin.take().unwrap().write_all(manifests.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "kubectl apply: {}", String::from_utf8_lossy(&out.stderr));
}

/// Applies the chart's ServiceAccount and RBAC for `ns`, mints a token for the ServiceAccount (TokenRequest, via
/// `kubectl create token`) and writes a kubeconfig that authenticates with it; returns the kubeconfig's path.
pub fn chart_identity_kubeconfig(ns: &str, identity: ChartIdentity) -> PathBuf {
    let sa = apply_chart_rbac(ns, identity);
    let cp = support::control_plane();
    let out =
        cp.kubectl().args(["create", "token", &sa, "-n", ns, "--duration", "3600s"]).output().expect("kubectl runs");
    assert!(out.status.success(), "minting a token for {ns}/{sa}: {}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let path = std::env::temp_dir().join(format!("dcs-kubeconfig-{ns}-{sa}-{}.json", rand::random::<u32>()));
    write_token_kubeconfig(&path, &token, &format!("system:serviceaccount:{ns}:{sa}"));
    path
}

/// Writes a kubeconfig with the admin kubeconfig's server and CA and `token` as the only credential.
pub fn write_token_kubeconfig(path: &Path, token: &str, user: &str) {
    let out = support::control_plane()
        .kubectl()
        .args(["config", "view", "--raw", "--minify", "-o", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "kubectl config view: {}", String::from_utf8_lossy(&out.stderr));
    let admin: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cluster = admin["clusters"][0].clone();
    let cluster_name = cluster["name"].as_str().unwrap().to_owned();
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": cluster_name, "user": user}}],
        "current-context": user,
    });
    std::fs::write(path, serde_json::to_vec_pretty(&kubeconfig).unwrap()).unwrap();
}
