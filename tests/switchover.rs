//! IP switch-over against the simulator: exchanged once when the migration is Ready, rolled
//! back once on request, exchanged again when the request flips back, and never twice for one
//! request, even when the operator is SIGKILLed around the call.

mod e2e;
mod support;

use e2e::{Env, Operator};
use serde_json::{Value, json};
use std::time::Duration;

const PHASE: Duration = Duration::from_millis(300);
const CONVERGE: Duration = Duration::from_secs(60);
const NAME: &str = "online-switchover";

async fn switch_counts(env: &Env, id: &str) -> (u64, u64) {
    let state = env.sim_state().await;
    let s = &state["switchovers"][id];
    (s["exchanges"].as_u64().unwrap_or(0), s["rollbacks"].as_u64().unwrap_or(0))
}

fn patch(env: &Env, patch: Value) {
    let out = env.kubectl(&["patch", &format!("rmig/{NAME}"), "--type=merge", "-p", &patch.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Exchange, roll back, exchange again: each request acted on exactly once, the outcome read
/// from the task's `task_status` word.
async fn exchange_roll_back_and_exchange_again(env: &Env) {
    env.apply(&env.example("online-incremental-switchover.yaml"));
    let rm = env.wait_condition(NAME, "SwitchedOver", "True", Some("SwitchedOver"), CONVERGE).await;
    let id = rm["status"]["taskId"].as_str().unwrap().to_owned();
    assert_eq!(rm["status"]["switchover"]["serving"], "Target");
    assert_eq!(rm["status"]["switchover"]["taskStatus"], "EXCHANGE_SUCCESS");
    assert_eq!(rm["status"]["phase"], "IncrementalMigrating");
    assert_eq!(switch_counts(env, &id).await, (1, 0));

    patch(env, json!({"spec": {"switchover": {"rollback": true}}}));
    let rm = env.wait_condition(NAME, "SwitchedOver", "False", Some("RolledBack"), CONVERGE).await;
    assert_eq!(rm["status"]["switchover"]["serving"], "Source");
    assert_eq!(switch_counts(env, &id).await, (1, 1));

    patch(env, json!({"spec": {"switchover": {"rollback": false}}}));
    env.wait_condition(NAME, "SwitchedOver", "True", Some("SwitchedOver"), CONVERGE).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(switch_counts(env, &id).await, (2, 1), "each request acted on exactly once");
}

#[tokio::test]
async fn switchover_exchanges_once_rolls_back_once_and_exchanges_again() {
    let env = Env::new("switchover", PHASE).await;
    let op = Operator::start(&env);
    exchange_roll_back_and_exchange_again(&env).await;
    env.assert_no_secret_leaked(&[op.logs()]);
}

/// The real API may not swap the instances' `ip` fields: the outcome is the task's word either way.
#[tokio::test]
async fn switchover_is_read_from_the_task_status_word_when_the_ips_do_not_swap() {
    let env = Env::with_simulator("switchover-no-swap", PHASE, |c| c.with_swap_ips(false)).await;
    let op = Operator::start(&env);
    exchange_roll_back_and_exchange_again(&env).await;
    env.assert_no_secret_leaked(&[op.logs()]);
}

#[tokio::test]
async fn a_failed_switch_says_so_once_and_is_sent_again_only_when_the_user_asks() {
    let env = Env::new("switchover-failed", PHASE).await;
    env.sim_admin(reqwest::Method::PUT, "/_sim/faults", Some(json!({"switchFailRate": 1.0}))).await;
    let op = Operator::start(&env);
    env.apply(&env.example("online-incremental-switchover.yaml"));
    let rm = env.wait_condition(NAME, "SwitchedOver", "False", Some("SwitchFailed"), CONVERGE).await;
    let id = rm["status"]["taskId"].as_str().unwrap().to_owned();
    let message = rm["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "SwitchedOver").unwrap()
        ["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("EXCHANGE_FAILED") && message.contains("attempt"), "{message}");
    let events = String::from_utf8_lossy(&env.kubectl(&["get", "events", "-o", "json"]).stdout).into_owned();
    assert!(events.contains("SwitchFailed"), "a Warning Event says so");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(switch_counts(&env, &id).await, (1, 0), "a failed switch is never sent again by itself");

    env.sim_admin(reqwest::Method::DELETE, "/_sim/faults", None).await;
    patch(&env, json!({"spec": {"switchover": {"attempt": 1}}}));
    env.wait_condition(NAME, "SwitchedOver", "True", Some("SwitchedOver"), CONVERGE).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(switch_counts(&env, &id).await, (2, 0), "the new attempt is sent once");
    env.assert_no_secret_leaked(&[op.logs()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_right_after_the_rollback_call_does_not_roll_back_twice() {
    let env = Env::with_simulator("switch-crash-rollback", PHASE, |c| c.with_swap_ips(false)).await;
    let mut op = Operator::start(&env);
    env.apply(&env.example("online-incremental-switchover.yaml"));
    let rm = env.wait_condition(NAME, "SwitchedOver", "True", Some("SwitchedOver"), CONVERGE).await;
    let id = rm["status"]["taskId"].as_str().unwrap().to_owned();
    op.kill();
    op.restart(&[("DCS_OPERATOR_CRASH_AT", "switchover-sent")]);
    patch(&env, json!({"spec": {"switchover": {"rollback": true}}}));
    let crashed = tokio::task::block_in_place(|| op.wait_exit(Duration::from_secs(40)));
    assert!(crashed.is_some(), "never reached switchover-sent\n{}", op.logs());
    op.restart(&[]);
    env.wait_condition(NAME, "SwitchedOver", "False", Some("RolledBack"), CONVERGE).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(switch_counts(&env, &id).await, (1, 1), "rolled back exactly once across the crash");
    env.assert_no_secret_leaked(&[op.logs()]);
}

/// Starts the operator so that it SIGKILLs itself at `point` of the first exchange; restarts it.
async fn crash_at(env: &Env, point: &str) -> Operator {
    env.apply(&env.example("online-incremental-switchover.yaml"));
    let mut op = Operator::start_with(env, &[], &[("DCS_OPERATOR_CRASH_AT", point)]);
    let crashed = tokio::task::block_in_place(|| op.wait_exit(Duration::from_secs(40)));
    assert!(crashed.is_some(), "never reached {point} (built with --features crash-points?)\n{}", op.logs());
    op.restart(&[]);
    op
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_exchange_call_does_not_exchange_twice() {
    let env = Env::new("switch-crash-sent", PHASE).await;
    let op = crash_at(&env, "switchover-sent").await;
    let rm = env.wait_condition(NAME, "SwitchedOver", "True", Some("SwitchedOver"), CONVERGE).await;
    let id = rm["status"]["taskId"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(switch_counts(&env, &id).await, (1, 0), "exchanged exactly once across the crash");
    env.assert_no_secret_leaked(&[op.logs()]);
}

/// Recorded but maybe not sent: never sent again by itself, and sent once when the user asks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_the_exchange_call_leaves_it_unconfirmed_until_the_user_asks_again() {
    let env = Env::new("switch-crash-recorded", PHASE).await;
    let op = crash_at(&env, "switchover-recorded").await;
    let rm = env.wait_condition(NAME, "SwitchedOver", "False", Some("SwitchUnconfirmed"), CONVERGE).await;
    let id = rm["status"]["taskId"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(switch_counts(&env, &id).await, (0, 0), "an unconfirmed request is never resent by itself");
    patch(&env, json!({"spec": {"switchover": {"attempt": 1}}}));
    env.wait_condition(NAME, "SwitchedOver", "True", Some("SwitchedOver"), CONVERGE).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(switch_counts(&env, &id).await, (1, 0), "the new request is sent once");
    env.assert_no_secret_leaked(&[op.logs()]);
}
