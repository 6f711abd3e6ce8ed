//! Why a migration failed, as a user sees it (dcs-api.md §12.1, §12.3): a failed provisioning job
//! and a failed task each put their reason into `status.lastError`, the Ready message and a
//! Warning Event (`kubectl describe`); the task's log is read once per failure, and a job that
//! cannot be read never holds the migration back.

mod e2e;
mod support;

use e2e::{Env, Operator};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const PHASE: Duration = Duration::from_millis(400);
const CONVERGE: Duration = Duration::from_secs(60);

fn calls(state: &Value, op: &str) -> u64 {
    state["calls"][op].as_u64().unwrap_or(0)
}

fn ready_message(rm: &Value) -> String {
    let ready = rm["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
    ready["message"].as_str().unwrap_or_default().to_owned()
}

fn describe(env: &Env, name: &str) -> String {
    String::from_utf8_lossy(&env.kubectl(&["describe", "rmig", name]).stdout).into_owned()
}

#[tokio::test]
async fn a_provisioning_failure_shows_the_jobs_reason_in_status_and_an_event() {
    let env = Env::new("provision-failed", PHASE).await;
    let faults = json!({"provisionFailRate": 1.0, "operations": ["CreateOnlineMigrationTask"]});
    env.sim_admin(Method::PUT, "/_sim/faults", Some(faults)).await;
    let op = Operator::start(&env);
    env.apply(&env.example("online-incremental.yaml"));
    let rm = env.wait_phase("online-incremental", "Failed", CONVERGE).await;
    assert!(rm["status"]["jobId"].as_str().is_some_and(|j| !j.is_empty()), "the job is recorded: {rm}");
    let error = &rm["status"]["lastError"];
    assert_eq!(error["code"], "JOB_FAILED");
    let reason = error["message"].as_str().unwrap().to_owned();
    assert!(reason.contains("provisioning failed"), "{reason}");
    assert!(ready_message(&rm).contains(reason.trim_start_matches("provisioning failed: ")), "{}", ready_message(&rm));
    let described = describe(&env, "online-incremental");
    assert!(described.contains("ProvisioningFailed"), "an Event says so:\n{described}");
    let state = env.sim_state().await;
    assert!(calls(&state, "ShowJobInfo") >= 1);
    assert_eq!(calls(&state, "SetOnlineMigrationTask"), 0, "a task that never provisioned is not configured");
    env.assert_no_secret_leaked(&[op.logs()]);
}

#[tokio::test]
async fn a_failed_task_shows_the_newest_error_of_its_log_read_once() {
    let env = Env::new("task-failed", Duration::from_secs(3)).await;
    let op = Operator::start(&env);
    env.apply(&env.example("backup-import-obs.yaml"));
    let rm = env.wait_phase("import-from-obs", "FullMigrating", CONVERGE).await;
    let id = rm["status"]["taskId"].as_str().unwrap().to_owned();
    let why = "the target instance refused the import: NOAUTH Authentication required";
    env.sim_admin(Method::PUT, &format!("/_sim/tasks/{id}"), Some(json!({"status": "FAILED", "errorMessage": why})))
        .await;
    let rm = env.wait_phase("import-from-obs", "Failed", CONVERGE).await;
    assert!(rm["status"]["lastError"]["message"].as_str().unwrap().contains(why), "{rm}");
    assert!(ready_message(&rm).contains(why), "{}", ready_message(&rm));
    let described = describe(&env, "import-from-obs");
    assert!(described.contains(why) && described.contains("TaskFailed"), "{described}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    env.kubectl(&["annotate", "rmig/import-from-obs", "dcs.migration.io/reconcile-requested-at=now", "--overwrite"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(calls(&env.sim_state().await, "ListMigrationTaskLogs"), 1, "one log read per failure");
    env.assert_no_secret_leaked(&[op.logs()]);
}

#[tokio::test]
async fn a_job_that_cannot_be_read_never_holds_the_migration_back() {
    let env = Env::new("job-unreadable", PHASE).await;
    let faults = json!({"errorRate": 1.0, "operations": ["ShowJobInfo"]});
    env.sim_admin(Method::PUT, "/_sim/faults", Some(faults)).await;
    let op = Operator::start(&env);
    env.apply(&env.example("online-incremental.yaml"));
    let rm = env.wait_phase("online-incremental", "IncrementalMigrating", CONVERGE).await;
    assert!(rm["status"]["lastError"].is_null(), "{rm}");
    let synced = rm["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Synced").unwrap().clone();
    assert_eq!(synced["status"], "True", "a failed job read is not an API error of the resource: {synced}");
    env.assert_no_secret_leaked(&[op.logs()]);
}
