//! Installed as users install it: the chart, packaged with `helm package`, `helm install`ed on a real node
//! (`scripts/control-plane up DIR --node`) with the shipped image (`make image`, loaded with
//! `scripts/control-plane load-image`). The operator Pod runs with its in-cluster identity and exactly the chart's
//! RBAC, and reaches the DCS simulator on the node's loopback through the chart's `hostNetwork` value.
//!
//! One scenario, in order (each step needs the previous one): the Pod gets Ready and takes its Lease; a
//! RedisMigration reaches Ready and, deleted, has its task stopped; `helm upgrade` with a changed value rolls the Pod
//! and loses nothing; a real namespace deletion (the namespace controller runs) with resources and Secrets
//! completes; `helm uninstall` leaves the CRD and no finalizer behind.

mod e2e;
mod support;

use e2e::Env;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

const PHASE: Duration = Duration::from_millis(400);
const CRD_NAME: &str = "redismigrations.dcs.migration.io";

fn kubectl(args: &[&str]) -> Output {
    support::control_plane().kubectl().args(args).output().expect("kubectl runs")
}

fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&support::ok(kubectl(&all), &format!("kubectl {}", args.join(" ")))).unwrap()
}

fn helm(args: &[&str]) -> String {
    let out = support::control_plane().command("helm").args(args).output().expect("helm runs");
    support::ok(out, &format!("helm {}", args.join(" ")))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0").unwrap().local_addr().unwrap().port()
}

/// Polls `check` every 250 ms for at most `timeout`; panics with `what` and `context()` otherwise.
fn until<T>(what: &str, timeout: Duration, context: impl Fn() -> String, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}\n{}", context());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The release's operator Pods that are not being deleted.
fn operator_pods(ns: &str, release: &str) -> Vec<Value> {
    let pods = json(&["get", "pods", "-n", ns, "-l", &format!("app.kubernetes.io/instance={release}")]);
    pods["items"].as_array().unwrap().iter().filter(|p| p["metadata"]["deletionTimestamp"].is_null()).cloned().collect()
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// What to print when something times out: the Pods, the node's Events, the operator's log.
fn diagnostics(ns: &str, release: &str) -> String {
    let pods = kubectl(&["get", "pods", "-n", ns, "-o", "wide"]);
    let events = kubectl(&["get", "events", "-n", ns, "--sort-by=.lastTimestamp"]);
    let logs = kubectl(&["logs", "-n", ns, "-l", &format!("app.kubernetes.io/instance={release}"), "--tail=80"]);
    format!(
        "pods:\n{}\nevents:\n{}\noperator log:\n{}{}",
        String::from_utf8_lossy(&pods.stdout),
        String::from_utf8_lossy(&events.stdout),
        String::from_utf8_lossy(&logs.stdout),
        String::from_utf8_lossy(&logs.stderr)
    )
}

/// Waits for exactly one Ready operator Pod (other than `not`), and for it to hold the release's Lease.
fn ready_leader(ns: &str, release: &str, lease: &str, not: Option<&str>) -> String {
    let ctx = || diagnostics(ns, release);
    let pod = until("one Ready operator Pod", Duration::from_secs(120), ctx, || {
        let pods = operator_pods(ns, release);
        let fresh: Vec<&Value> = pods.iter().filter(|p| Some(p["metadata"]["name"].as_str().unwrap()) != not).collect();
        (pods.len() == 1 && fresh.len() == 1 && is_ready(fresh[0]))
            .then(|| fresh[0]["metadata"]["name"].as_str().unwrap().to_string())
    });
    until(&format!("Pod {pod} holding Lease {lease}"), Duration::from_secs(60), ctx, || {
        let l = kubectl(&["get", "lease", lease, "-n", ns, "-o", "jsonpath={.spec.holderIdentity}"]);
        let holder = String::from_utf8_lossy(&l.stdout).into_owned();
        holder.contains(&pod).then_some(())
    });
    pod
}

/// The resource's task in the simulator.
async fn task(env: &Env, id: &str) -> Option<Value> {
    env.sim_state().await["tasks"].as_array().unwrap().iter().find(|t| t["id"] == id || t["task_id"] == id).cloned()
}

#[tokio::test]
async fn the_chart_installed_on_a_node_runs_the_operator_image_as_users_run_it() {
    let cp = support::control_plane_with_node();
    let repo = e2e::repo();
    let archive = repo.join("target/image/dcs-migration-operator.tar");
    assert!(archive.is_file(), "{} is missing: run `make image`", archive.display());
    cp.load_image(&archive);

    // helm package, then install the package (not the directory), as a user installs a released chart.
    let out_dir = std::env::temp_dir().join(format!("in-cluster-chart-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let packaged =
        helm(&["package", repo.join(e2e::CHART_DIR).to_str().unwrap(), "--destination", out_dir.to_str().unwrap()]);
    let package: PathBuf = packaged.trim().rsplit(' ').next().unwrap().into();
    assert!(package.is_file(), "helm package: {packaged}");

    let ns = support::fresh_namespace("operator").await;
    let release = "dcs";
    let fullname = e2e::chart_fullname(release);
    let (metrics_port, probes_port) = (free_port(), free_port());
    let image_sets = format!(
        "image.repository=localhost/dcs-migration-operator,image.tag={},image.pullPolicy=Never",
        env!("CARGO_PKG_VERSION")
    );
    let net_sets = format!("hostNetwork=true,metrics.port={metrics_port},probes.port={probes_port}");
    // The simulator listens on 127.0.0.1: allowed explicitly, whatever the chart's default list.
    helm(&[
        "install",
        release,
        package.to_str().unwrap(),
        "-n",
        &ns,
        "--set",
        &image_sets,
        "--set",
        &net_sets,
        "--set-json",
        r#"allowedEndpoints=["127.0.0.1"]"#,
    ]);
    let pod = ready_leader(&ns, release, &fullname, None);

    // Its identity in the Pod is the chart's ServiceAccount token, projected by the kubelet.
    let p = json(&["get", "pod", &pod, "-n", &ns]);
    assert_eq!(p["spec"]["serviceAccountName"], fullname.as_str());
    assert_eq!(p["spec"]["hostNetwork"], true);
    assert_eq!(p["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"], true);

    // A RedisMigration reaches Ready; deleted, its task is stopped.
    let env = Env::new("in-cluster", PHASE).await;
    env.apply(&env.example("backup-import-obs.yaml"));
    env.apply(&env.example("online-incremental.yaml"));
    let ctx = || diagnostics(&ns, release);
    for name in ["import-from-obs", "online-incremental"] {
        let out = env.kubectl(&["wait", "--for=condition=Ready", &format!("rmig/{name}"), "--timeout=90s"]);
        assert!(out.status.success(), "{name} Ready: {}\n{}", String::from_utf8_lossy(&out.stderr), ctx());
    }
    let streaming = env.get("online-incremental")["status"]["taskId"].as_str().unwrap().to_owned();
    support::ok(env.kubectl(&["delete", "rmig/online-incremental", "--timeout=60s"]), "deleting online-incremental");
    let stopped = task(&env, &streaming).await;
    assert!(
        stopped.as_ref().is_none_or(|t| t["status"] != "INCRMIGEATING" && t["status"] != "INCRMIGRATING"),
        "the deletion stopped the task: {stopped:?}"
    );

    // helm upgrade with a changed value: a new Pod takes over, nothing is lost.
    env.apply(&env.example("online-incremental.yaml"));
    let out = env.kubectl(&["wait", "--for=condition=Ready", "rmig/online-incremental", "--timeout=90s"]);
    assert!(out.status.success(), "online-incremental Ready again: {}", String::from_utf8_lossy(&out.stderr));
    let before = json(&["get", "rmig", "-n", &env.ns]);
    let tasks_before = env.sim_state().await["tasks"].as_array().unwrap().len();
    helm(&["upgrade", release, package.to_str().unwrap(), "-n", &ns, "--reuse-values", "--set", "logFormat=text"]);
    let new_pod = ready_leader(&ns, release, &fullname, Some(&pod));
    assert_ne!(new_pod, pod, "the upgrade rolled the Pod");
    let args = json(&["get", "pod", &new_pod, "-n", &ns])["spec"]["containers"][0]["args"].clone();
    assert!(args.as_array().unwrap().windows(2).any(|w| w[0] == "--log-format" && w[1] == "text"), "{args}");
    until("the streaming migration Ready under the new Pod", Duration::from_secs(60), ctx, || {
        let rm = env.get("online-incremental");
        let ready =
            rm["status"]["conditions"].as_array()?.iter().any(|c| c["type"] == "Ready" && c["status"] == "True");
        ready.then_some(())
    });
    let after = json(&["get", "rmig", "-n", &env.ns]);
    for old in before["items"].as_array().unwrap() {
        let name = old["metadata"]["name"].as_str().unwrap();
        let new = after["items"].as_array().unwrap().iter().find(|r| r["metadata"]["name"] == name);
        let new = new.unwrap_or_else(|| panic!("{name} lost in the upgrade"));
        assert_eq!(new["metadata"]["uid"], old["metadata"]["uid"], "{name}");
        assert_eq!(new["status"]["taskId"], old["status"]["taskId"], "{name}: same task");
        assert_eq!(new["status"]["phase"], old["status"]["phase"], "{name}: same phase");
        assert_eq!(new["metadata"]["finalizers"], old["metadata"]["finalizers"], "{name}: finalizer kept");
    }
    assert_eq!(env.sim_state().await["tasks"].as_array().unwrap().len(), tasks_before, "no task created twice");

    // A real namespace deletion, with resources and their Secrets: it completes, and the task is stopped.
    let doomed = Env::new("in-cluster-doomed", PHASE).await;
    doomed.apply(&doomed.example("online-incremental.yaml"));
    let out = doomed.kubectl(&["wait", "--for=condition=Ready", "rmig/online-incremental", "--timeout=90s"]);
    assert!(out.status.success(), "doomed Ready: {}", String::from_utf8_lossy(&out.stderr));
    let doomed_task = doomed.get("online-incremental")["status"]["taskId"].as_str().unwrap().to_owned();
    support::ok(kubectl(&["delete", "namespace", &doomed.ns, "--wait=false"]), "deleting the namespace");
    until(&format!("namespace {} gone", doomed.ns), Duration::from_secs(120), ctx, || {
        let out = kubectl(&["get", "namespace", &doomed.ns, "--ignore-not-found", "-o", "name"]);
        out.stdout.is_empty().then_some(())
    });
    let t = task(&doomed, &doomed_task).await;
    assert!(
        t.as_ref().is_none_or(|t| t["status"] != "INCRMIGEATING" && t["status"] != "INCRMIGRATING"),
        "the namespace deletion stopped the task: {t:?}"
    );

    // helm uninstall, once the resources are gone: the CRD stays (keep policy), no finalizer is left behind.
    support::ok(env.kubectl(&["delete", "rmig", "--all", "--timeout=60s"]), "deleting the remaining RedisMigrations");
    let protected = || {
        let secrets = json(&["get", "secrets", "-n", &env.ns]);
        secrets["items"].as_array().unwrap().iter().any(|s| !s["metadata"]["finalizers"].is_null())
    };
    until("the Secrets released once no resource needs them", Duration::from_secs(60), ctx, || {
        (!protected()).then_some(())
    });
    helm(&["uninstall", release, "-n", &ns, "--wait", "--timeout", "60s"]);
    let crd = json(&["get", "crd", CRD_NAME]);
    assert_eq!(crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
    let secrets = json(&["get", "secrets", "-n", &env.ns]);
    for s in secrets["items"].as_array().unwrap() {
        let finalizers = s["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
        assert!(finalizers.is_empty(), "Secret {} keeps {finalizers:?}", s["metadata"]["name"]);
    }
    assert!(operator_pods(&ns, release).is_empty(), "the operator is gone");
    support::ok(kubectl(&["delete", "namespace", &ns, &env.ns, "--timeout=120s"]), "deleting the test namespaces");

    env.assert_no_secret_leaked(&[]);
    let _ = std::fs::remove_dir_all(&out_dir);
}
