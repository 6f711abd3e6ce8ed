//! Deletion end to end (design.md §5): every policy, coalesced stops, Secrets that survive until
//! their resources are released, namespace deletion with a restart in the middle, revoked
//! credentials and the Orphan escape hatch, crashes anywhere on the stop/delete path.

mod e2e;
mod support;

use e2e::{Env, Operator};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const PHASE: Duration = Duration::from_millis(300);
const CONVERGE: Duration = Duration::from_secs(90);

fn task_of(state: &Value, id: &str) -> Option<Value> {
    state["tasks"].as_array().unwrap().iter().find(|t| t["task_id"] == id).cloned()
}

fn calls(state: &Value, op: &str) -> u64 {
    state["calls"][op].as_u64().unwrap_or(0)
}

fn stop_calls(state: &Value) -> u64 {
    calls(state, "StopMigrationTask") + calls(state, "BatchStopMigrationTasks") + calls(state, "StopMigrationTaskSync")
}

/// Applies `count` copies of an example named `<prefix>-<i>` with a spec tweak.
fn apply_copies(env: &Env, file: &str, original: &str, prefix: &str, count: usize, extra: &str) {
    let base = env.example(file);
    let mut all = String::new();
    for i in 0..count {
        let mut doc = base.replace(&format!("name: {original}"), &format!("name: {prefix}-{i}"));
        if !extra.is_empty() {
            doc.push_str(extra);
            doc.push('\n');
        }
        all.push_str("---\n");
        all.push_str(&doc);
    }
    env.apply(&all);
}

async fn wait_gone(env: &Env, what: &str, timeout: Duration) {
    support::eventually(&format!("{what} to be gone"), timeout, || async {
        let out = env.kubectl(&["get", what, "-o", "json"]);
        let list: Value = serde_json::from_slice(&out.stdout).unwrap_or(json!({"items": []}));
        list["items"].as_array().is_none_or(|items| items.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn delete_policy_deletes_the_finished_task_record_without_stopping_it() {
    let env = Env::new("policy-delete", PHASE).await;
    let op = Operator::start(&env);
    env.apply(&env.example("backup-import-record.yaml"));
    let rm = env.wait_phase("import-from-backup-record", "Succeeded", CONVERGE).await;
    let id = rm["status"]["taskId"].as_str().unwrap().to_owned();
    let out = env.kubectl(&["delete", "rmig/import-from-backup-record", "--timeout=60s"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let state = env.sim_state().await;
    assert!(task_of(&state, &id).is_none(), "the task record is deleted");
    assert_eq!(calls(&state, "DeleteMigrationTask"), 1);
    assert_eq!(stop_calls(&state), 0, "a finished task is not stopped");
    env.assert_no_secret_leaked(&[op.logs()]);
}

#[tokio::test]
async fn orphan_policy_leaves_the_task_running_and_says_so() {
    let env = Env::new("policy-orphan", PHASE).await;
    let op = Operator::start(&env);
    env.apply(&format!("{}  deletionPolicy: Orphan\n", env.example("online-incremental.yaml")));
    let rm = env.wait_phase("online-incremental", "IncrementalMigrating", CONVERGE).await;
    let id = rm["status"]["taskId"].as_str().unwrap().to_owned();
    let out = env.kubectl(&["delete", "rmig/online-incremental", "--timeout=60s"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let state = env.sim_state().await;
    assert_eq!(task_of(&state, &id).unwrap()["status"], "INCRMIGEATING", "the task keeps streaming");
    assert_eq!(stop_calls(&state), 0);
    let events = String::from_utf8_lossy(&env.kubectl(&["get", "events", "-o", "json"]).stdout).into_owned();
    assert!(events.contains("Orphaned") && events.contains(&id), "an Event says the task was left");
    env.assert_no_secret_leaked(&[op.logs()]);
}

#[tokio::test]
async fn a_task_that_vanished_remotely_counts_as_stopped() {
    let env = Env::new("vanished", PHASE).await;
    let op = Operator::start(&env);
    env.apply(&env.example("online-incremental.yaml"));
    let rm = env.wait_phase("online-incremental", "IncrementalMigrating", CONVERGE).await;
    let id = rm["status"]["taskId"].as_str().unwrap().to_owned();
    env.sim_admin(reqwest::Method::DELETE, &format!("/_sim/tasks/{id}"), None).await;
    env.wait_condition("online-incremental", "Ready", "False", Some("RemoteTaskGone"), CONVERGE).await;
    let out = env.kubectl(&["delete", "rmig/online-incremental", "--timeout=60s"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stop_calls(&env.sim_state().await), 0);
    env.assert_no_secret_leaked(&[op.logs()]);
}

/// Applies `n` online incremental migrations, waits until they all stream, deletes them all at
/// once and waits until they are gone; checks every task ended TERMINATED and answers the
/// simulator's state and how long the deletion took.
async fn stream_then_delete_all(env: &Env, prefix: &str, n: usize) -> (Value, Duration) {
    apply_copies(env, "online-incremental.yaml", "online-incremental", prefix, n, "");
    env.wait_count_in_phase("IncrementalMigrating", n, Duration::from_secs(180)).await;
    let out = env.kubectl(&["delete", "rmig", "--all", "--wait=false"]);
    assert!(out.status.success());
    let started = Instant::now();
    wait_gone(env, "rmig", CONVERGE).await;
    let took = started.elapsed();
    let state = env.sim_state().await;
    let tasks = state["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), n, "one task per resource");
    assert!(tasks.iter().all(|t| t["status"] == "TERMINATED"), "every task TERMINATED");
    (state, took)
}

#[tokio::test]
async fn a_hundred_resources_deleted_at_once_cost_at_most_ten_stop_calls() {
    let env = Env::new("mass-delete", PHASE).await;
    let op = Operator::start_with(&env, &["--qps", "200", "--burst", "200"], &[]);
    let (state, took) = stream_then_delete_all(&env, "m", 100).await;
    let stops = stop_calls(&state);
    assert!(stops <= 10, "{stops} stop calls for 100 deletions");
    eprintln!("mass delete of 100: {stops} stop calls, all released in {took:?}");
    env.assert_no_secret_leaked(&[op.logs()]);
}

#[tokio::test]
async fn two_hundred_deletions_with_delete_policy_cost_at_most_five_delete_calls() {
    let env = Env::new("mass-delete-records", PHASE).await;
    let op = Operator::start_with(&env, &["--qps", "200", "--burst", "200"], &[]);
    apply_copies(&env, "backup-import-obs.yaml", "import-from-obs", "d", 200, "  deletionPolicy: Delete");
    env.wait_count_in_phase("Succeeded", 200, Duration::from_secs(240)).await;
    let out = env.kubectl(&["delete", "rmig", "--all", "--wait=false"]);
    assert!(out.status.success());
    let started = Instant::now();
    wait_gone(&env, "rmig", CONVERGE).await;
    let took = started.elapsed();
    let state = env.sim_state().await;
    assert!(state["tasks"].as_array().unwrap().is_empty(), "every task record is deleted");
    let deletes = calls(&state, "DeleteMigrationTask");
    assert!(deletes <= 5, "{deletes} delete calls for 200 deletions");
    eprintln!("mass delete of 200 records: {deletes} DeleteMigrationTask calls, all released in {took:?}");
    env.assert_no_secret_leaked(&[op.logs()]);
}

#[tokio::test]
async fn one_reconcile_at_a_time_still_brings_every_resource_to_its_phase_and_deletes_them_all() {
    // The tightest bound: a reconcile that held its slot while waiting for another one (a batch
    // round, a look of the account loop) would stall everything behind it.
    let env = Env::new("one-at-a-time", PHASE).await;
    let op = Operator::start_with(&env, &["--max-concurrent-reconciles", "1", "--qps", "100", "--burst", "100"], &[]);
    let (state, took) = stream_then_delete_all(&env, "one", 10).await;
    eprintln!("one at a time: 10 deleted in {took:?}, {} stop calls", stop_calls(&state));
    env.assert_no_secret_leaked(&[op.logs()]);
}

#[tokio::test]
async fn referenced_secrets_carry_the_in_use_finalizer_until_no_resource_needs_them() {
    let env = Env::new("secret-finalizer", PHASE).await;
    let op = Operator::start(&env);
    env.apply(&env.example("online-incremental.yaml"));
    env.wait_phase("online-incremental", "IncrementalMigrating", CONVERGE).await;
    for secret in ["dcs-credentials", "redis-passwords"] {
        let s: Value = serde_json::from_slice(&env.kubectl(&["get", "secret", secret, "-o", "json"]).stdout).unwrap();
        assert!(
            s["metadata"]["finalizers"].as_array().is_some_and(|f| f.iter().any(|x| x == "dcs.migration.io/in-use")),
            "{secret} is protected"
        );
    }
    let out = env.kubectl(&["delete", "rmig/online-incremental", "--timeout=60s"]);
    assert!(out.status.success());
    support::eventually("the in-use finalizers to come off", Duration::from_secs(30), || async {
        let out = env.kubectl(&["get", "secrets", "-o", "json"]);
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        list["items"].as_array().unwrap().iter().all(|s| s["metadata"]["finalizers"].is_null()).then_some(())
    })
    .await;
    env.assert_no_secret_leaked(&[op.logs()]);
}

#[tokio::test]
async fn deleting_a_whole_namespace_stops_every_task_even_across_an_operator_restart() {
    let env = Env::new("namespace-delete", PHASE).await;
    let mut op = Operator::start_with(&env, &["--qps", "100", "--burst", "100"], &[]);
    apply_copies(&env, "online-incremental.yaml", "online-incremental", "ns-m", 20, "");
    env.wait_count_in_phase("IncrementalMigrating", 20, Duration::from_secs(120)).await;
    // What the namespace controller does (this control plane has none): delete the namespace,
    // then every object in it, Secrets and resources together.
    let out =
        support::control_plane().kubectl().args(["delete", "namespace", &env.ns, "--wait=false"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = env.kubectl(&["delete", "secrets,rmig", "--all", "--wait=false"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    tokio::time::sleep(Duration::from_millis(700)).await;
    op.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    op.restart(&[]);
    wait_gone(&env, "rmig", CONVERGE).await;
    wait_gone(&env, "secrets", Duration::from_secs(30)).await;
    let state = env.sim_state().await;
    assert!(state["tasks"].as_array().unwrap().iter().all(|t| t["status"] == "TERMINATED"), "every task stopped");
    env.assert_no_secret_leaked(&[op.logs()]);
}

#[tokio::test]
async fn revoked_credentials_during_deletion_say_why_and_orphan_releases_the_resource() {
    let env = Env::new("revoked", PHASE).await;
    let op = Operator::start(&env);
    env.apply(&env.example("online-incremental.yaml"));
    env.wait_phase("online-incremental", "IncrementalMigrating", CONVERGE).await;
    let new_key = e2e::secret_value("Rotated");
    env.sim_admin(reqwest::Method::PUT, "/_sim/credentials", Some(json!({"accessKey": e2e::AK, "secretKey": new_key})))
        .await;
    let out = env.kubectl(&["delete", "rmig/online-incremental", "--wait=false"]);
    assert!(out.status.success());
    // The account loop may report the refused key first; the deletion then says what to do.
    let message = support::eventually("Synced=False naming the escape hatch", CONVERGE, || async {
        let rm = env.get("online-incremental");
        let synced = rm["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "Synced")?.clone();
        let message = synced["message"].as_str()?.to_owned();
        (synced["status"] == "False" && synced["reason"] == "CredentialsRejected" && message.contains("deletionPolicy"))
            .then_some(message)
    })
    .await;
    assert!(message.contains("APIGW.0301") && message.contains("Orphan"), "{message}");
    let events = String::from_utf8_lossy(&env.kubectl(&["get", "events", "-o", "json"]).stdout).into_owned();
    assert!(events.contains("DeletionBlocked"), "an Event says why");

    let out = env.kubectl(&[
        "patch",
        "rmig/online-incremental",
        "--type=merge",
        "-p",
        r#"{"spec":{"deletionPolicy":"Orphan"}}"#,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_gone(&env, "rmig", Duration::from_secs(30)).await;
    env.assert_no_secret_leaked(&[op.logs()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_anywhere_on_the_stop_and_delete_path_leave_no_task_running_and_no_finalizer() {
    const RUNS: usize = 20;
    let env = Env::new("deletion-crashes", PHASE).await;
    let mut op = Operator::start_with(&env, &["--qps", "100", "--burst", "100"], &[]);
    apply_copies(&env, "online-incremental.yaml", "online-incremental", "c", RUNS / 2, "");
    apply_copies(&env, "online-incremental.yaml", "online-incremental", "d", RUNS / 2, "  deletionPolicy: Delete");
    env.wait_count_in_phase("IncrementalMigrating", RUNS, Duration::from_secs(120)).await;
    let points = ["deletion-stop-sent", "status-written#1", "status-written#2", "deletion-delete-sent"];
    let names: Vec<String> = (0..RUNS / 2).flat_map(|i| [format!("c-{i}"), format!("d-{i}")]).collect();
    for (i, name) in names.iter().enumerate() {
        let point = points[(i * 7 + 3) % points.len()];
        op.restart(&[("DCS_OPERATOR_CRASH_AT", point)]);
        let out = env.kubectl(&["delete", &format!("rmig/{name}"), "--wait=false"]);
        assert!(out.status.success());
        let crashed = tokio::task::block_in_place(|| op.wait_exit(Duration::from_secs(8)).is_some());
        op.restart(&[]);
        support::eventually(
            &format!("{name} released after a crash at {point} (crashed: {crashed})"),
            CONVERGE,
            || async { (!env.kubectl(&["get", &format!("rmig/{name}")]).status.success()).then_some(()) },
        )
        .await;
    }
    let state = env.sim_state().await;
    let tasks = state["tasks"].as_array().unwrap();
    assert!(tasks.iter().all(|t| t["status"] == "TERMINATED"), "no task left running");
    assert_eq!(tasks.len(), RUNS / 2, "the Delete-policy tasks are deleted");
    let stops = stop_calls(&state);
    assert!(stops <= 2 * RUNS as u64, "no stop storm: {stops} stop calls for {RUNS} deletions");
    env.assert_no_secret_leaked(&[op.logs()]);
}

#[tokio::test]
async fn restarts_of_stopped_tasks_are_coalesced_like_stops() {
    let env = Env::new("restart-batch", PHASE).await;
    let op = Operator::start_with(&env, &["--qps", "100", "--burst", "100"], &[]);
    apply_copies(&env, "online-incremental.yaml", "online-incremental", "r", 10, "  stopped: false");
    env.wait_count_in_phase("IncrementalMigrating", 10, Duration::from_secs(120)).await;
    let patch_all = |stopped: bool| {
        let names: Vec<String> = (0..10).map(|i| format!("rmig/r-{i}")).collect();
        let mut args = vec!["patch".to_owned()];
        args.extend(names);
        args.extend(["--type=merge".to_owned(), "-p".to_owned(), json!({"spec": {"stopped": stopped}}).to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.kubectl(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    patch_all(true);
    env.wait_count_in_phase("Terminated", 10, CONVERGE).await;
    patch_all(false);
    env.wait_count_in_phase("IncrementalMigrating", 10, CONVERGE).await;
    let state = env.sim_state().await;
    let stops = stop_calls(&state);
    let restarts = calls(&state, "BatchRestartOnlineMigrationTasks");
    assert!(stops <= 3, "{stops} stop calls for 10 stops");
    assert!((1..=3).contains(&restarts), "{restarts} restart calls for 10 restarts");
    env.assert_no_secret_leaked(&[op.logs()]);
}
