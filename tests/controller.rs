//! The controller end to end: the operator process against the real control plane and a real
//! `dcs-simulator`. Examples are applied with kubectl; the simulator's state proves what
//! happened remotely; every test ends with a scan for leaked secret values.

mod e2e;
mod support;

use e2e::{Env, Operator};
use serde_json::{Value, json};
use std::time::Duration;

const PHASE: Duration = Duration::from_millis(400);
const CONVERGE: Duration = Duration::from_secs(60);

fn ready_status(rm: &Value) -> &Value {
    rm["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap()
}

#[tokio::test]
async fn examples_reach_their_phase_and_kubectl_wait_returns() {
    let env = Env::new("examples", PHASE).await;
    let op = Operator::start(&env);
    for file in ["backup-import-obs.yaml", "backup-import-record.yaml", "online-full.yaml", "online-incremental.yaml"] {
        env.apply(&env.example(file));
    }
    for (name, phase) in [
        ("import-from-obs", "Succeeded"),
        ("import-from-backup-record", "Succeeded"),
        ("online-full", "Succeeded"),
        ("online-incremental", "IncrementalMigrating"),
    ] {
        let out = env.kubectl(&["wait", "--for=condition=Ready", &format!("rmig/{name}"), "--timeout=60s"]);
        assert!(out.status.success(), "kubectl wait {name}: {}", String::from_utf8_lossy(&out.stderr));
        let rm = env.wait_phase(name, phase, CONVERGE).await;
        let task_name = rm["status"]["taskName"].as_str().unwrap().to_owned();
        assert_eq!(env.tasks_named(&task_name).await.len(), 1, "exactly one remote task for {name}");
        assert_eq!(rm["status"]["observedGeneration"], rm["metadata"]["generation"]);
        assert!(
            rm["metadata"]["finalizers"].as_array().unwrap().iter().any(|f| f == "dcs.migration.io/stop-remote-task")
        );
    }
    let incremental = env.get("online-incremental");
    assert_eq!(incremental["status"]["remoteStatus"], "INCRMIGEATING", "the API's word, verbatim");
    assert_eq!(ready_status(&incremental)["reason"], "IncrementalSyncing");
    assert!(incremental["status"]["ecsPrivateIp"].is_string());
    let full = env.get("online-full");
    assert_eq!(ready_status(&full)["reason"], "Succeeded");

    let table = env.kubectl(&["get", "rmig"]);
    let text = String::from_utf8_lossy(&table.stdout);
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "TYPE", "METHOD", "PHASE", "PROGRESS", "TASK", "ID", "READY", "AGE"]);
    let row = text.lines().find(|l| l.starts_with("online-incremental ")).unwrap();
    let id = incremental["status"]["taskId"].as_str().unwrap();
    assert!(
        row.contains("Online")
            && row.contains("Incremental")
            && row.contains("IncrementalMigrating")
            && row.contains(id)
            && row.contains("True"),
        "{row}"
    );

    let state = env.sim_state().await;
    assert_eq!(state["tasks"].as_array().unwrap().len(), 4, "one task per resource, no more");
    assert_eq!(state["calls"]["CreateMigrationTask"], 2);
    assert_eq!(state["calls"]["CreateOnlineMigrationTask"], 2);
    assert_eq!(state["calls"]["SetOnlineMigrationTask"], 2);
    env.assert_no_secret_leaked(&[op.logs()]);
}

#[tokio::test]
async fn an_existing_online_task_is_adopted_by_task_id_and_configured() {
    let env = Env::new("adopt", PHASE).await;
    let created = env.sim_admin(reqwest::Method::GET, "/_sim/state", None).await;
    assert!(created["tasks"].as_array().unwrap().is_empty());
    let id = create_online_task(&env, "made-elsewhere").await;
    let manifest = env.example("adopt-online-task.yaml").replace("90754308a156406fa8378f852f38a646", &id);
    let op = Operator::start(&env);
    env.apply(&manifest);
    let rm = env.wait_phase("adopted-online-task", "IncrementalMigrating", CONVERGE).await;
    assert_eq!(rm["status"]["taskId"], id.as_str());
    let state = env.sim_state().await;
    assert_eq!(state["tasks"].as_array().unwrap().len(), 1, "adoption creates nothing");
    assert_eq!(state["calls"]["CreateOnlineMigrationTask"], 1, "only the test created a task");
    assert_eq!(state["calls"]["SetOnlineMigrationTask"], 1, "the operator configured it once");
    env.assert_no_secret_leaked(&[op.logs()]);
}

/// Creates an online task directly through the client, as another tool would.
async fn create_online_task(env: &Env, name: &str) -> String {
    use dcs_migration_operator::dcs::model::CreateOnlineMigrationTaskBody;
    use dcs_migration_operator::dcs::{ClientConfig, Credentials, DcsClient, Endpoint};
    let config = ClientConfig::new(
        Endpoint::parse(&env.url()).unwrap(),
        e2e::PROJECT,
        Credentials::new(e2e::AK, &env.secret_key),
    );
    let client = DcsClient::new(config).unwrap();
    let body = CreateOnlineMigrationTaskBody {
        name: name.into(),
        description: None,
        vpc_id: "5e3a9b5a-0c3e-4bcf-9a6b-2a1d9c3b7e11".into(),
        subnet_id: "b7d7a0c4-3a4f-4b8e-9f3e-1c2d3e4f5a6b".into(),
        security_group_id: "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b".into(),
    };
    client.create_online_migration_task(&body).await.unwrap().instance_id.unwrap()
}

/// A name the user chose is not proof of ownership: another team's task of that name (without
/// this resource's UID marker in its description) is left alone, and the resource gets its own.
#[tokio::test]
async fn a_chosen_task_name_does_not_adopt_another_teams_task_of_that_name() {
    let env = Env::new("foreign-name", PHASE).await;
    let foreign = create_online_task(&env, "team-shared-name").await;
    let op = Operator::start(&env);
    let manifest = env.example("online-incremental.yaml").replace("spec:\n", "spec:\n  taskName: team-shared-name\n");
    env.apply(&manifest);
    let rm = env.wait_phase("online-incremental", "IncrementalMigrating", CONVERGE).await;
    let own = rm["status"]["taskId"].as_str().unwrap().to_owned();
    assert_ne!(own, foreign, "the other team's task was not adopted");
    let state = env.sim_state().await;
    let named: Vec<&Value> =
        state["tasks"].as_array().unwrap().iter().filter(|t| t["task_name"] == "team-shared-name").collect();
    assert_eq!(named.len(), 2, "the resource created its own task");
    let description = named.iter().find(|t| t["task_id"] == own.as_str()).unwrap()["description"].as_str().unwrap();
    assert!(description.contains(rm["metadata"]["uid"].as_str().unwrap()), "marked as this resource's: {description}");
    env.assert_no_secret_leaked(&[op.logs()]);
}

/// A reconcile that fails on the Kubernetes side (here: an admission policy refusing every status
/// write in the namespace) is told on the object as a Warning Event, not only in the log.
#[tokio::test]
async fn a_status_write_the_api_server_refuses_shows_as_a_warning_event() {
    let env = Env::new("status-refused", PHASE).await;
    let policy = format!("freeze-status-{}", env.ns);
    let manifests = format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {policy}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - {{apiGroups: ["dcs.migration.io"], apiVersions: ["*"], operations: ["CREATE", "UPDATE"], resources: ["redismigrations/status"]}}
  validations:
    - {{expression: "false", message: "status writes are frozen in this namespace"}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {policy}}}
spec:
  policyName: {policy}
  validationActions: [Deny]
  matchResources:
    namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {ns}}}}}
"#,
        ns = env.ns
    );
    e2e::kubectl_apply(&manifests);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let op = Operator::start(&env);
    env.apply(&env.example("backup-import-obs.yaml"));
    let note = support::eventually("a Warning Event about the refused write", CONVERGE, || async {
        let out = env.kubectl(&["get", "events", "-o", "json"]);
        let events: Value = serde_json::from_slice(&out.stdout).ok()?;
        events["items"].as_array()?.iter().find_map(|e| {
            let reason = e["reason"].as_str()?;
            (reason == "KubernetesApiError" && e["type"] == "Warning")
                .then(|| e["message"].as_str().unwrap_or_default().to_owned())
        })
    })
    .await;
    assert!(note.contains("frozen"), "the Event says what the API server said: {note}");
    assert!(note.len() <= 512, "bounded");
    let cp = support::control_plane();
    for kind in ["validatingadmissionpolicybinding", "validatingadmissionpolicy"] {
        let _ = cp.kubectl().args(["delete", kind, &policy]).output();
    }
    env.assert_no_secret_leaked(&[op.logs()]);
}

/// Restarted with every task ended, the operator stays quiet: no DCS call and no write to any
/// resource until their resync is due (issue 17: no stampede at scale).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_every_task_ended_makes_no_dcs_call_and_no_write() {
    let env = Env::new("restart-ended", PHASE).await;
    let mut op = Operator::start(&env);
    let base = env.example("backup-import-obs.yaml");
    let all: String = (0..10)
        .map(|i| format!("---\n{}", base.replace("name: import-from-obs", &format!("name: ended-{i}"))))
        .collect();
    env.apply(&all);
    env.wait_count_in_phase("Succeeded", 10, CONVERGE).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    op.kill();
    let calls = |state: &Value| state["calls"].as_object().unwrap().values().filter_map(Value::as_u64).sum::<u64>();
    let versions = || {
        let list: Value = serde_json::from_slice(&env.kubectl(&["get", "rmig", "-o", "json"]).stdout).unwrap();
        list["items"].as_array().unwrap().iter().map(|r| r["metadata"]["resourceVersion"].clone()).collect::<Vec<_>>()
    };
    let (calls_before, versions_before) = (calls(&env.sim_state().await), versions());
    op.restart(&[]);
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(calls(&env.sim_state().await), calls_before, "no DCS call for ended tasks after a restart");
    assert_eq!(versions(), versions_before, "no write to a resource whose task ended");
    env.assert_no_secret_leaked(&[op.logs()]);
}

#[tokio::test]
async fn a_missing_credentials_secret_stalls_then_recovers_when_it_appears() {
    let mut env = Env::new("missing-creds", PHASE).await;
    let op = Operator::start(&env);
    let manifest =
        env.example("backup-import-obs.yaml").replace("name: dcs-credentials", "name: dcs-credentials-later");
    env.apply(&manifest);
    let rm = env.wait_condition("import-from-obs", "Stalled", "True", Some("CredentialsMissing"), CONVERGE).await;
    let message = ready_status(&rm)["message"].as_str().unwrap().to_owned();
    assert!(message.contains("dcs-credentials-later"), "the message names the Secret: {message}");
    assert!(env.sim_state().await["tasks"].as_array().unwrap().is_empty(), "nothing created without credentials");

    let sk = env.secret_key.clone();
    env.put_secret("dcs-credentials-later", &[("accessKey", e2e::AK), ("secretKey", &sk), ("projectId", e2e::PROJECT)])
        .await;
    env.wait_phase("import-from-obs", "Succeeded", Duration::from_secs(30)).await;
    env.assert_no_secret_leaked(&[op.logs()]);
}

fn condition<'a>(rm: &'a Value, type_: &str) -> &'a Value {
    rm["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == type_).unwrap()
}

#[tokio::test]
async fn a_missing_password_secret_reads_credentials_missing_for_both_kinds_and_both_go_on_once_it_exists() {
    let mut env = Env::new("missing-passwords", PHASE).await;
    let op = Operator::start(&env);
    let later = |file: &str| env.example(file).replace("name: redis-passwords", "name: redis-passwords-later");
    env.apply(&format!("{}\n---\n{}", later("backup-import-obs.yaml"), later("online-incremental.yaml")));
    for name in ["import-from-obs", "online-incremental"] {
        let rm = env.wait_condition(name, "Ready", "False", Some("CredentialsMissing"), CONVERGE).await;
        let synced = condition(&rm, "Synced");
        assert_eq!((&synced["status"], &synced["reason"]), (&json!("False"), &json!("CredentialsMissing")), "{name}");
        let message = ready_status(&rm)["message"].as_str().unwrap();
        assert!(message.contains("redis-passwords-later"), "{name}: the message names the Secret: {message}");
    }
    let (source, target) = (e2e::secret_value("SourcePw"), e2e::secret_value("TargetPw"));
    let created = std::time::Instant::now();
    env.put_secret("redis-passwords-later", &[("source", &source), ("target", &target)]).await;
    let on_their_way = ["FullMigrating", "IncrementalMigrating", "Succeeded"];
    let deadline = Duration::from_secs(2 + 10);
    for name in ["import-from-obs", "online-incremental"] {
        loop {
            let phase = env.get(name)["status"]["phase"].as_str().unwrap_or_default().to_owned();
            if on_their_way.contains(&phase.as_str()) {
                break;
            }
            assert!(
                created.elapsed() < deadline,
                "{name} still {phase} {:?} after the Secret appeared",
                created.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    env.assert_no_secret_leaked(&[op.logs()]);
}

#[tokio::test]
async fn a_wrong_secret_key_stalls_with_credentials_rejected_then_recovers_when_fixed() {
    let mut env = Env::new("wrong-key", PHASE).await;
    let wrong = e2e::secret_value("WrongSK");
    env.put_secret("dcs-credentials", &[("accessKey", e2e::AK), ("secretKey", &wrong), ("projectId", e2e::PROJECT)])
        .await;
    let op = Operator::start(&env);
    env.apply(&env.example("backup-import-obs.yaml"));
    let rm = env.wait_condition("import-from-obs", "Stalled", "True", Some("CredentialsRejected"), CONVERGE).await;
    let synced = rm["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Synced").unwrap().clone();
    assert_eq!(synced["status"], "False");
    assert!(synced["message"].as_str().unwrap().contains("APIGW.0301"), "{synced}");
    let calls_before = env.sim_state().await["calls"]["ListMigrationTask"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let calls_after = env.sim_state().await["calls"]["ListMigrationTask"].as_u64().unwrap();
    assert!(calls_after - calls_before <= 1, "no hot loop against a refused key ({calls_before} -> {calls_after})");

    let sk = env.secret_key.clone();
    env.put_secret("dcs-credentials", &[("accessKey", e2e::AK), ("secretKey", &sk), ("projectId", e2e::PROJECT)]).await;
    env.wait_phase("import-from-obs", "Succeeded", Duration::from_secs(30)).await;
    env.assert_no_secret_leaked(&[op.logs()]);
}

#[tokio::test]
async fn every_resource_converges_through_thirty_percent_faults_within_the_qps_limit() {
    let env = Env::new("faults", PHASE).await;
    env.sim_admin(reqwest::Method::PUT, "/_sim/faults", Some(json!({"errorRate": 0.15, "throttleRate": 0.15}))).await;
    let op = Operator::start_with(&env, &["--qps", "5", "--burst", "5"], &[]);
    let base = env.example("backup-import-obs.yaml");
    for i in 0..6 {
        env.apply(&base.replace("name: import-from-obs", &format!("name: import-{i}")));
    }
    env.apply(&env.example("online-incremental.yaml"));
    for i in 0..6 {
        env.wait_phase(&format!("import-{i}"), "Succeeded", Duration::from_secs(120)).await;
    }
    env.wait_phase("online-incremental", "IncrementalMigrating", Duration::from_secs(120)).await;
    let state = env.sim_state().await;
    assert_eq!(state["tasks"].as_array().unwrap().len(), 7, "no duplicate task despite failed calls");

    let log = env.sim_admin(reqwest::Method::GET, "/_sim/log", None).await;
    let times: Vec<u64> = log.as_array().unwrap().iter().map(|c| c["atMs"].as_u64().unwrap()).collect();
    // Token bucket: at most burst + qps * window calls in any window.
    let worst =
        times.iter().map(|&start| times.iter().filter(|&&t| t >= start && t < start + 2000).count()).max().unwrap();
    assert!(worst <= 5 + 5 * 2 + 1, "{worst} calls within 2 s at qps 5, burst 5");
    env.assert_no_secret_leaked(&[op.logs()]);
}

async fn annotate(env: &Env, name: &str, key: &str, value: Option<&str>) {
    let arg = match value {
        Some(v) => format!("{key}={v}"),
        None => format!("{key}-"),
    };
    let out = env.kubectl(&["annotate", "--overwrite", &format!("rmig/{name}"), &arg]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn patch(env: &Env, name: &str, patch: Value) {
    let out = env.kubectl(&["patch", &format!("rmig/{name}"), "--type=merge", "-p", &patch.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

async fn total_calls(env: &Env) -> u64 {
    env.sim_state().await["calls"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum()
}

#[tokio::test]
async fn paused_resources_make_no_remote_calls_and_resume_when_unpaused() {
    let env = Env::new("paused", PHASE).await;
    let op = Operator::start(&env);
    env.apply(&env.example("online-incremental.yaml"));
    env.wait_phase("online-incremental", "IncrementalMigrating", CONVERGE).await;
    annotate(&env, "online-incremental", "dcs.migration.io/paused", Some("true")).await;
    let rm = env.wait_phase("online-incremental", "Paused", CONVERGE).await;
    assert_eq!(ready_status(&rm)["status"], "True", "Ready is left as it was");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = total_calls(&env).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(total_calls(&env).await, before, "no DCS call while paused");
    annotate(&env, "online-incremental", "dcs.migration.io/paused", None).await;
    env.wait_phase("online-incremental", "IncrementalMigrating", CONVERGE).await;
    env.assert_no_secret_leaked(&[op.logs()]);
}

#[tokio::test]
async fn a_reconcile_request_is_acted_on_and_recorded() {
    let env = Env::new("reconcile-now", PHASE).await;
    let op = Operator::start(&env);
    env.apply(&env.example("backup-import-obs.yaml"));
    env.wait_phase("import-from-obs", "Succeeded", CONVERGE).await;
    annotate(&env, "import-from-obs", "dcs.migration.io/reconcile-requested-at", Some("2026-11-23T12:00:00Z")).await;
    support::eventually("lastHandledReconcileAt", CONVERGE, || async {
        (env.get("import-from-obs")["status"]["lastHandledReconcileAt"] == "2026-11-23T12:00:00Z").then_some(())
    })
    .await;
    drop(op);
}

#[tokio::test]
async fn a_changed_resume_mode_is_applied_to_the_running_task() {
    let env = Env::new("resume-mode", PHASE).await;
    let op = Operator::start(&env);
    env.apply(&env.example("online-incremental.yaml"));
    let rm = env.wait_phase("online-incremental", "IncrementalMigrating", CONVERGE).await;
    let id = rm["status"]["taskId"].as_str().unwrap().to_owned();
    patch(&env, "online-incremental", json!({"spec": {"online": {"resumeMode": "Manual"}}}));
    support::eventually("resume_mode manual remotely", CONVERGE, || async {
        let state = env.sim_state().await;
        let task = state["tasks"].as_array().unwrap().iter().find(|t| t["task_id"] == id.as_str()).cloned().unwrap();
        (task["resume_mode"] == "manual").then_some(())
    })
    .await;
    assert_eq!(env.sim_state().await["calls"]["UpdateMigrationTask"], 1);
    env.assert_no_secret_leaked(&[op.logs()]);
}

#[tokio::test]
async fn stopped_stops_the_task_and_keeps_the_resource_then_unstopping_restarts_it() {
    let env = Env::new("stopped", PHASE).await;
    let op = Operator::start(&env);
    env.apply(&env.example("online-incremental.yaml"));
    env.wait_phase("online-incremental", "IncrementalMigrating", CONVERGE).await;
    patch(&env, "online-incremental", json!({"spec": {"stopped": true}}));
    let rm = env.wait_phase("online-incremental", "Terminated", CONVERGE).await;
    assert_eq!(ready_status(&rm)["reason"], "StoppedByUser");
    let stalled =
        rm["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Stalled").unwrap().clone();
    assert_eq!(stalled["status"], "False", "a requested stop is not a failure");
    assert_eq!(rm["status"]["remoteStatus"], "TERMINATED");

    patch(&env, "online-incremental", json!({"spec": {"stopped": false}}));
    env.wait_phase("online-incremental", "IncrementalMigrating", CONVERGE).await;
    let calls = env.sim_state().await["calls"].clone();
    assert_eq!(calls["StopMigrationTask"], 1);
    assert_eq!(calls["BatchRestartOnlineMigrationTasks"], 1);
    env.assert_no_secret_leaked(&[op.logs()]);
}

#[tokio::test]
async fn deleting_a_resource_stops_its_task_and_releases_the_finalizer() {
    let env = Env::new("delete-stop", PHASE).await;
    let op = Operator::start(&env);
    env.apply(&env.example("online-incremental.yaml"));
    let rm = env.wait_phase("online-incremental", "IncrementalMigrating", CONVERGE).await;
    let id = rm["status"]["taskId"].as_str().unwrap().to_owned();
    let out = env.kubectl(&["delete", "rmig/online-incremental", "--wait=true", "--timeout=60s"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let state = env.sim_state().await;
    let task = state["tasks"].as_array().unwrap().iter().find(|t| t["task_id"] == id.as_str()).cloned().unwrap();
    assert_eq!(task["status"], "TERMINATED", "the finalizer waits for the stop to finish");
    env.assert_no_secret_leaked(&[op.logs()]);
}
