//! Hostile or malformed remote answers (issue 8, item 2), from the simulator's `garbageRate` fault:
//! a gateway's HTML 502, a 200 whose JSON has the wrong types, a 20 MiB body (beyond the client's
//! 16 MiB limit), truncated JSON, and a status word nobody knows. The operator never crashes, the
//! resources say what is wrong (Synced=False naming the operation), and recover when it stops;
//! garbage answers to calls that took effect (create included) never duplicate a task.

mod e2e;
mod support;

use e2e::{Env, Operator};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const PHASE: Duration = Duration::from_millis(300);
const READS: [&str; 3] = ["ListMigrationTask", "ShowMigrationTask", "ShowMigrationTaskStats"];

fn condition(rm: &Value, type_: &str) -> Option<Value> {
    rm["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_).cloned()
}

fn metrics_args() -> Option<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcs-migration-operator"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("--metrics-addr").then(|| {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        format!("127.0.0.1:{port}")
    })
}

/// Starts the operator (with `/metrics` when it has the flag); returns it and the metrics address.
fn start(env: &Env) -> (Operator, Option<String>) {
    let addr = metrics_args();
    let mut args = vec!["--qps", "20", "--burst", "20"];
    if let Some(a) = &addr {
        args.extend(["--metrics-addr", a.as_str()]);
    }
    (Operator::start_with(env, &args, &[]), addr)
}

async fn leak_scan(env: &Env, op: &Operator, metrics: &Option<String>) {
    let mut others = Vec::new();
    if let Some(addr) = metrics
        && let Ok(resp) = reqwest::get(format!("http://{addr}/metrics")).await
    {
        others.push(("/metrics", resp.text().await.unwrap_or_default()));
    }
    env.assert_no_secret_leaked_in(&[op.logs()], &others);
}

fn examples(env: &Env, names: &[&str]) -> String {
    let base = env.example("online-incremental.yaml");
    names.iter().map(|n| format!("---\n{}", base.replace("name: online-incremental", &format!("name: {n}")))).collect()
}

/// Garbage of `kind` on every read: the operator stays up, the resource shows Synced=False with a
/// message naming the operation, and Synced=True again once the garbage stops.
async fn garbage_on_reads_is_reported_and_survived(kind: &str) {
    let env = Env::new(&format!("hostile-{kind}"), PHASE).await;
    let (mut op, metrics) = start(&env);
    env.apply(&examples(&env, &["hostile-a", "hostile-b"]));
    for name in ["hostile-a", "hostile-b"] {
        env.wait_phase(name, "IncrementalMigrating", Duration::from_secs(60)).await;
    }
    let faults = json!({"garbageRate": 1.0, "garbage": kind, "operations": READS});
    env.sim_admin(reqwest::Method::PUT, "/_sim/faults", Some(faults)).await;
    let started = Instant::now();
    let rm = env.wait_condition("hostile-a", "Synced", "False", None, Duration::from_secs(75)).await;
    let synced = condition(&rm, "Synced").unwrap();
    let message = synced["message"].as_str().unwrap_or_default().to_owned();
    eprintln!("{kind}: Synced=False ({}) after {:?}: {message}", synced["reason"], started.elapsed());
    assert!(READS.iter().any(|op| message.contains(op)), "{kind}: the message names the operation: {message}");
    assert_eq!(synced["reason"], "ApiError", "{kind}: {synced}");
    assert!(message.len() < 1024, "{kind}: a short, readable message, not a body dump ({} bytes)", message.len());
    assert_eq!(rm["status"]["phase"], "IncrementalMigrating", "{kind}: the phase is kept while answers are unreadable");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(op.try_exit().is_none(), "{kind}: the operator died:\n{}", op.logs());

    env.sim_admin(reqwest::Method::DELETE, "/_sim/faults", None).await;
    for name in ["hostile-a", "hostile-b"] {
        env.wait_condition(name, "Synced", "True", None, Duration::from_secs(60)).await;
        env.wait_condition(name, "Ready", "True", None, Duration::from_secs(30)).await;
    }
    assert!(op.try_exit().is_none(), "{kind}: the operator died");
    assert_eq!(op.logs().matches("starting the controller").count(), 1, "{kind}: never restarted");
    let events = String::from_utf8_lossy(&env.kubectl(&["get", "events", "-o", "json"]).stdout).into_owned();
    assert!(events.contains("ApiError"), "{kind}: a Warning Event says so");
    leak_scan(&env, &op, &metrics).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_error_page_from_a_gateway_is_reported_and_survived() {
    garbage_on_reads_is_reported_and_survived("html").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_of_the_wrong_types_is_reported_and_survived() {
    garbage_on_reads_is_reported_and_survived("wrongTypes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_beyond_the_size_limit_is_reported_and_survived() {
    garbage_on_reads_is_reported_and_survived("huge").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_json_is_reported_and_survived() {
    garbage_on_reads_is_reported_and_survived("truncated").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_answers_to_every_call_during_creation_duplicate_nothing_and_converge_after() {
    let env = Env::new("hostile-mixed", PHASE).await;
    let (mut op, metrics) = start(&env);
    env.sim_admin(reqwest::Method::PUT, "/_sim/faults", Some(json!({"garbageRate": 0.35, "garbage": "mixed"}))).await;
    let names = ["mixed-0", "mixed-1", "mixed-2", "mixed-3"];
    env.apply(&examples(&env, &names));
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert!(op.try_exit().is_none(), "the operator died under garbage:\n{}", op.logs());
    env.sim_admin(reqwest::Method::DELETE, "/_sim/faults", None).await;
    for name in names {
        env.wait_phase(name, "IncrementalMigrating", Duration::from_secs(90)).await;
        env.wait_condition(name, "Synced", "True", None, Duration::from_secs(30)).await;
    }
    let state = env.sim_state().await;
    let mut per_name: HashMap<String, usize> = HashMap::new();
    for t in state["tasks"].as_array().unwrap() {
        *per_name.entry(t["task_name"].as_str().unwrap_or_default().to_owned()).or_insert(0) += 1;
    }
    eprintln!("tasks after garbage during creation: {per_name:?}; calls {}", state["calls"]);
    assert_eq!(per_name.len(), names.len(), "one task per resource: {per_name:?}");
    assert!(per_name.values().all(|n| *n == 1), "duplicate tasks: {per_name:?}");
    assert_eq!(op.logs().matches("starting the controller").count(), 1, "never restarted");
    leak_scan(&env, &op, &metrics).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_status_word_is_shown_verbatim_and_treated_as_in_progress() {
    let env = Env::new("hostile-word", PHASE).await;
    let (mut op, metrics) = start(&env);
    env.apply(&examples(&env, &["word"]));
    let rm = env.wait_phase("word", "IncrementalMigrating", Duration::from_secs(60)).await;
    let id = rm["status"]["taskId"].as_str().unwrap().to_owned();
    env.sim_admin(reqwest::Method::PUT, &format!("/_sim/tasks/{id}"), Some(json!({"status": "QUANTUM_REBALANCING"})))
        .await;
    let rm = support::eventually("the unknown word in status.remoteStatus", Duration::from_secs(30), || async {
        let rm = env.get("word");
        (rm["status"]["remoteStatus"] == "QUANTUM_REBALANCING").then_some(rm)
    })
    .await;
    let stalled = condition(&rm, "Stalled");
    assert!(
        stalled.is_none_or(|c| c["status"] != "True"),
        "an unknown word is in progress, not Stalled: {}",
        rm["status"]
    );
    assert!(
        condition(&rm, "Synced").is_some_and(|c| c["status"] == "True"),
        "the answer decoded fine: {}",
        rm["status"]
    );
    eprintln!(
        "unknown word: phase {}, Ready {:?}",
        rm["status"]["phase"],
        condition(&rm, "Ready").map(|c| c["reason"].clone())
    );
    env.sim_admin(reqwest::Method::PUT, &format!("/_sim/tasks/{id}"), Some(json!({"status": "INCRMIGEATING"}))).await;
    env.wait_condition("word", "Ready", "True", Some("IncrementalSyncing"), Duration::from_secs(30)).await;
    assert!(op.try_exit().is_none(), "the operator died");
    leak_scan(&env, &op, &metrics).await;
}
