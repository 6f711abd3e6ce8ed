//! The runtime of `dcs-migration-operator run` end to end (issue 7 item 1): `/metrics`, `/healthz`,
//! `/readyz`, leader election on a Lease, graceful shutdown and JSON logs — the operator as real
//! processes against the real control plane and a real in-process `dcs-simulator`.

mod e2e;
mod support;

use e2e::{Env, Operator, free_port};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const PHASE: Duration = Duration::from_millis(400);
const CONVERGE: Duration = Duration::from_secs(60);
/// The Lease duration the operator uses (src/leader.rs).
const LEASE_DURATION: Duration = Duration::from_secs(15);

/// An operator with its metrics and probe ports.
struct Replica {
    op: Operator,
    metrics: u16,
    probes: u16,
}

impl Replica {
    fn start(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Self {
        let (metrics, probes) = (free_port(), free_port());
        let (m, p) = (format!("127.0.0.1:{metrics}"), format!("127.0.0.1:{probes}"));
        let mut all = vec!["--metrics-addr", m.as_str(), "--probe-addr", p.as_str()];
        all.extend_from_slice(args);
        Self { op: Operator::start_with(env, &all, vars), metrics, probes }
    }

    /// A replica with `--leader-elect`, the Lease in the test namespace, `POD_NAME` = `pod`.
    fn elected(env: &Env, pod: &str) -> Self {
        Self::start(env, &["--leader-elect"], &[("POD_NAMESPACE", &env.ns), ("POD_NAME", pod)])
    }

    async fn scrape(&self) -> Option<String> {
        get(self.metrics, "/metrics").await.filter(|(status, _)| *status == 200).map(|(_, body)| body)
    }

    async fn leader(&self) -> Option<f64> {
        value(&self.scrape().await?, "dcs_migration_leader")
    }

    async fn wait_leader(&self, leading: bool, timeout: Duration) {
        let want = if leading { 1.0 } else { 0.0 };
        support::eventually(&format!("dcs_migration_leader {want}"), timeout, || async {
            (self.leader().await? == want).then_some(())
        })
        .await;
    }

    async fn readyz(&self) -> Option<(u16, String)> {
        get(self.probes, "/readyz").await
    }
}

async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let resp = client.get(format!("http://127.0.0.1:{port}{path}")).send().await.ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.text().await.ok()?))
}

/// The value of one exact series (`name` or `name{labels}` as the operator writes it).
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Sum of `dcs_migration_dcs_calls_total` over the codes of one operation.
fn calls_of(metrics: &str, operation: &str) -> f64 {
    let prefix = format!("dcs_migration_dcs_calls_total{{operation=\"{operation}\",code=\"");
    metrics.lines().filter(|l| l.starts_with(&prefix)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

async fn lease_holder(env: &Env) -> Option<String> {
    let api: Api<Lease> = Api::namespaced(env.client().await, &env.ns);
    api.get_opt("dcs-migration-operator").await.unwrap()?.spec?.holder_identity
}

#[tokio::test]
async fn metrics_show_the_documented_series_with_real_values_and_no_secret_or_task_id() {
    let env = Env::new("metrics", Duration::from_secs(2)).await;
    let replica = Replica::elected(&env, "metrics-replica");
    env.apply(&env.example("backup-import-obs.yaml"));
    // Once the task exists, throttle every list for a moment: the client's retries must show.
    support::eventually("a task id in the status", CONVERGE, || async {
        env.get("import-from-obs")["status"]["taskId"].as_str().map(str::to_owned)
    })
    .await;
    env.sim_admin(
        reqwest::Method::PUT,
        "/_sim/faults",
        Some(json!({"throttleRate": 1.0, "operations": ["ListMigrationTask"]})),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    env.sim_admin(reqwest::Method::DELETE, "/_sim/faults", None).await;
    let rm = env.wait_phase("import-from-obs", "Succeeded", CONVERGE).await;
    let task_id = rm["status"]["taskId"].as_str().unwrap().to_owned();

    // Every HTTP exchange the simulator saw is counted once, whatever its outcome: the
    // simulator's count lies between two scrapes taken around it.
    let text = support::eventually("the DCS call counts to match the simulator's", Duration::from_secs(20), || async {
        let before = replica.scrape().await?;
        let state = env.sim_state().await;
        let after = replica.scrape().await?;
        let calls = state["calls"].as_object()?;
        let consistent = calls.iter().all(|(op, n)| {
            let n = n.as_f64().unwrap_or(0.0);
            calls_of(&before, op) <= n && n <= calls_of(&after, op)
        });
        consistent.then_some(after)
    })
    .await;

    let at_least = |series: &str, min: f64| {
        let v = value(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
        assert!(v >= min, "{series} = {v}, expected at least {min}\n{text}");
    };
    let exactly = |series: &str, want: f64| assert_eq!(value(&text, series), Some(want), "{series}\n{text}");
    at_least("dcs_migration_reconcile_total{result=\"success\"}", 1.0);
    at_least("dcs_migration_reconcile_duration_seconds_count", 1.0);
    at_least("dcs_migration_reconcile_duration_seconds_bucket{le=\"+Inf\"}", 1.0);
    exactly("dcs_migration_dcs_calls_total{operation=\"CreateMigrationTask\",code=\"200\"}", 1.0);
    at_least("dcs_migration_dcs_calls_total{operation=\"ListMigrationTask\",code=\"200\"}", 1.0);
    at_least("dcs_migration_dcs_calls_total{operation=\"ListMigrationTask\",code=\"APIGW.0308\"}", 1.0);
    at_least("dcs_migration_dcs_retries_total{operation=\"ListMigrationTask\"}", 1.0);
    exactly("dcs_migration_resources{phase=\"Succeeded\"}", 1.0);
    exactly("dcs_migration_resources{phase=\"Pending\"}", 0.0);
    exactly("dcs_migration_resources_stalled", 0.0);
    at_least("dcs_migration_queue_depth", 0.0);
    exactly("dcs_migration_leader", 1.0);
    assert!(text.contains("# TYPE dcs_migration_reconcile_duration_seconds histogram"), "{text}");

    for secret in &env.secrets {
        assert!(!text.contains(secret.as_str()), "a secret value is in /metrics");
    }
    assert!(!text.contains(&task_id), "a task id is in /metrics");
    assert!(!text.contains(&env.ns), "a namespace is in /metrics");
    assert!(!text.contains("import-from-obs"), "a resource name is in /metrics");

    let (status, _) = get(replica.probes, "/healthz").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(replica.readyz().await.unwrap().0, 200);
    env.assert_no_secret_leaked(&[replica.op.logs()]);
}

#[tokio::test]
async fn readyz_is_unavailable_until_the_watch_has_synced_while_healthz_answers() {
    let env = Env::new("readyz", PHASE).await;
    // An identity that may not list RedisMigrations yet: the watch cannot sync.
    let sa = "operator-not-yet-allowed";
    let token = support::service_account_token(&env.ns, sa).await;
    let kubeconfig = std::env::temp_dir().join(format!("dcs-kubeconfig-{}-{sa}.json", env.ns));
    e2e::write_token_kubeconfig(&kubeconfig, &token, &format!("system:serviceaccount:{}:{sa}", env.ns));
    let (metrics, probes) = (free_port(), free_port());
    let (m, p) = (format!("127.0.0.1:{metrics}"), format!("127.0.0.1:{probes}"));
    let op = Operator::start_with_kubeconfig(&env, kubeconfig, &["--metrics-addr", &m, "--probe-addr", &p], &[]);

    support::eventually("/healthz to answer", Duration::from_secs(20), || async {
        get(probes, "/healthz").await.filter(|(s, _)| *s == 200)
    })
    .await;
    for _ in 0..10 {
        let (status, body) = get(probes, "/readyz").await.expect("/readyz answers");
        assert_eq!(status, 503, "ready before the watch synced: {body}");
        assert!(body.contains("sync"), "{body}");
        assert_eq!(get(probes, "/healthz").await.unwrap().0, 200, "alive meanwhile");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let out = env.kubectl(&[
        "create",
        "rolebinding",
        "operator-allowed",
        "--clusterrole=cluster-admin",
        &format!("--serviceaccount={}:{sa}", env.ns),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let body = support::eventually("/readyz 200 once the watch synced", Duration::from_secs(60), || async {
        get(probes, "/readyz").await.filter(|(s, _)| *s == 200).map(|(_, b)| b)
    })
    .await;
    assert!(body.contains("synced"), "{body}");
    assert!(op.logs().contains("the RedisMigration watch has synced"), "{}", op.logs());
}

#[tokio::test]
async fn two_replicas_elect_one_leader_and_the_standby_takes_over_within_the_lease_duration_after_a_kill() {
    let env = Env::new("leader-kill", Duration::from_secs(2)).await;
    let mut first = Replica::elected(&env, "replica-a");
    first.wait_leader(true, Duration::from_secs(30)).await;
    let second = Replica::elected(&env, "replica-b");
    support::eventually("the standby to be ready", Duration::from_secs(30), || async {
        second.readyz().await.filter(|(s, _)| *s == 200)
    })
    .await;
    assert_eq!(second.leader().await, Some(0.0), "the standby does not lead");
    assert_eq!(lease_holder(&env).await.as_deref(), Some("replica-a"));

    env.apply(&env.example("online-full.yaml"));
    support::eventually("the leader to create the task", CONVERGE, || async {
        env.get("online-full")["status"]["taskId"].as_str().map(str::to_owned)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(first.op.logs().contains("DCS call"), "the leader calls DCS");
    assert!(!second.op.logs().contains("DCS call"), "the standby called DCS:\n{}", second.op.logs());
    assert!(!second.op.logs().contains("starting the controller"), "the standby runs no controller");

    let killed = Instant::now();
    first.op.kill();
    second.wait_leader(true, LEASE_DURATION + Duration::from_secs(8)).await;
    let took = killed.elapsed();
    assert!(took <= LEASE_DURATION + Duration::from_secs(6), "took over after {took:?}");
    assert_eq!(lease_holder(&env).await.as_deref(), Some("replica-b"));

    let rm = env.wait_phase("online-full", "Succeeded", CONVERGE).await;
    let task_name = rm["status"]["taskName"].as_str().unwrap();
    assert_eq!(env.tasks_named(task_name).await.len(), 1, "exactly one remote task");
    let state = env.sim_state().await;
    assert_eq!(state["calls"]["CreateOnlineMigrationTask"], 1, "created once, by one replica");
    assert!(second.op.logs().contains("DCS call"), "the new leader took over the work");
    env.assert_no_secret_leaked(&[first.op.logs(), second.op.logs()]);
    eprintln!("standby took over {took:?} after the leader was killed");
}

#[tokio::test]
async fn sigterm_makes_the_leader_finish_release_the_lease_and_exit_zero_so_the_standby_takes_over_at_once() {
    let env = Env::new("leader-term", PHASE).await;
    let mut first = Replica::elected(&env, "replica-a");
    first.wait_leader(true, Duration::from_secs(30)).await;
    let second = Replica::elected(&env, "replica-b");
    support::eventually("the standby to be ready", Duration::from_secs(30), || async {
        second.readyz().await.filter(|(s, _)| *s == 200)
    })
    .await;
    env.apply(&env.example("backup-import-obs.yaml"));
    env.wait_phase("import-from-obs", "Succeeded", CONVERGE).await;

    let terminated = Instant::now();
    first.op.terminate();
    let status = first.op.wait_exit(Duration::from_secs(25)).expect("the leader exits after SIGTERM");
    assert!(status.success(), "exit status {status:?}\n{}", first.op.logs());
    assert!(first.op.logs().contains("released the lease"), "{}", first.op.logs());
    second.wait_leader(true, Duration::from_secs(10)).await;
    let took = terminated.elapsed();
    assert!(took < Duration::from_secs(6), "took over {took:?} after SIGTERM: the lease was not released");
    assert_eq!(lease_holder(&env).await.as_deref(), Some("replica-b"));
    eprintln!("standby took over {took:?} after SIGTERM to the leader");
}

#[tokio::test]
async fn a_leader_whose_lease_is_taken_stops_at_once() {
    let env = Env::new("leader-lost", PHASE).await;
    let mut replica = Replica::elected(&env, "replica-a");
    replica.wait_leader(true, Duration::from_secs(30)).await;
    let api: Api<Lease> = Api::namespaced(env.client().await, &env.ns);
    let mut lease = api.get("dcs-migration-operator").await.unwrap();
    let spec = lease.spec.as_mut().unwrap();
    spec.holder_identity = Some("intruder".into());
    spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(jiff::Timestamp::now()));
    api.replace("dcs-migration-operator", &PostParams::default(), &lease).await.unwrap();
    let taken = Instant::now();
    // The leader notices at its next renewal (every 5 s) and exits.
    let status = replica.op.wait_exit(Duration::from_secs(10)).expect("the leader stops once its lease is taken");
    assert!(!status.success(), "a lost lease is a failure exit (Kubernetes restarts the pod)");
    assert!(replica.op.logs().contains("lost the lease"), "{}", replica.op.logs());
    assert_eq!(lease_holder(&env).await.as_deref(), Some("intruder"), "the lost lease is left alone");
    eprintln!("the leader stopped {:?} after its lease was taken", taken.elapsed());
}

#[test]
fn leader_election_without_pod_namespace_fails_with_one_clear_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcs-migration-operator"))
        .args(["run", "--leader-elect", "--metrics-addr", "127.0.0.1:0", "--probe-addr", "127.0.0.1:0"])
        .env_remove("POD_NAMESPACE")
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("--leader-elect") && lines[0].contains("POD_NAMESPACE"), "{stderr}");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_and_carry_the_reconcile_span_fields() {
    let env = Env::new("json-logs", PHASE).await;
    let replica = Replica::start(&env, &["--log-format", "json"], &[]);
    env.apply(&env.example("backup-import-obs.yaml"));
    env.wait_phase("import-from-obs", "Succeeded", CONVERGE).await;
    let logs = replica.op.logs();
    let lines: Vec<Value> = logs
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not one JSON object: {e}: {l}")))
        .collect();
    assert!(lines.iter().all(|l| l.is_object() && l["level"].is_string() && l["timestamp"].is_string()));
    let in_reconcile = lines
        .iter()
        .filter(|l| l["span"].as_str().is_some_and(|s| s.contains("reconcile")))
        .filter(|l| l["namespace"] == env.ns.as_str() && l["name"] == "import-from-obs")
        .count();
    assert!(in_reconcile > 0, "no log line carries the reconcile span's namespace and name:\n{logs}");
    env.assert_no_secret_leaked(&[logs]);
}
