//! IP switch-over on the simulator as the real API reports it (`dcs-api.md` §12): exchange-ip and
//! rollback-ip answer 204 with no body, the top-level `task_status` reads `EXCHANGING` for one
//! phase, then `EXCHANGE_SUCCESS` / `ROLLBACK_SUCCESS` until the next switch; a `switchFailRate`
//! fault ends a switch `EXCHANGE_FAILED` / `ROLLBACK_FAILED`; the instances swap IPs only when the
//! simulator is told to.

mod simulator_support;

use std::time::Duration;

use dcs_migration_operator::simulator::{self, Config, RunningSimulator};
use serde_json::{Value, json};
use simulator_support::{AK, Client, PROJECT, SK, configure_body};

const PHASE: Duration = Duration::from_millis(150);

fn start(swap_ips: bool) -> RunningSimulator {
    simulator::spawn(Config::new(AK, SK, PROJECT).with_phase(PHASE).with_swap_ips(swap_ips)).expect("simulator starts")
}

async fn streaming_task(client: &Client) -> String {
    let id = client.create_online(&format!("switch-{}", rand_suffix())).await;
    client.wait_for(&id, "RUNNING").await;
    let a = client
        .call("POST", &format!("/migration/{id}/task"), &[], Some(&configure_body("incremental_migration")))
        .await;
    assert_eq!(a.status, 200);
    client.wait_for(&id, "INCRMIGEATING").await;
    id
}

fn rand_suffix() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}

async fn show(client: &Client, id: &str) -> Value {
    client.call("GET", &format!("/migration-task/{id}"), &[], None).await.json()
}

/// Polls until the top-level `task_status` is no longer `EXCHANGING`; returns the task.
async fn switch_done(client: &Client, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let task = show(client, id).await;
        if task["task_status"] != "EXCHANGING" {
            return task;
        }
        assert!(tokio::time::Instant::now() < deadline, "switch of {id} never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ips(task: &Value) -> (Value, Value) {
    (task["source_instance"]["ip"].clone(), task["target_instance"]["ip"].clone())
}

async fn exchange(client: &Client, id: &str) {
    let body = json!({"exchanged_ip": ["10.0.0.10"], "is_exchange_domain": false});
    let a = client.call("POST", &format!("/migration-task/{id}/exchange-ip"), &[], Some(&body)).await;
    assert_eq!((a.status, a.body.as_slice()), (204, b"".as_slice()), "exchange-ip answers 204 with no body");
}

async fn rollback(client: &Client, id: &str) {
    let a = client.call("POST", &format!("/migration-task/{id}/rollback-ip"), &[], None).await;
    assert_eq!((a.status, a.body.as_slice()), (204, b"".as_slice()), "rollback-ip answers 204 with no body");
}

async fn switch_and_check(swap_ips: bool) {
    let sim = start(swap_ips);
    let client = Client::new(&sim.url());
    let id = streaming_task(&client).await;
    let before = show(&client, &id).await;
    assert!(before.get("task_status").is_none_or(Value::is_null), "no switch yet: {before}");

    exchange(&client, &id).await;
    let during = show(&client, &id).await;
    assert_eq!(during["task_status"], "EXCHANGING");
    assert_eq!(during["target_instance"]["task_status"], "EXCHANGING");
    let after = switch_done(&client, &id).await;
    assert_eq!(after["task_status"], "EXCHANGE_SUCCESS");
    assert_eq!(after["source_instance"]["task_status"], "RUNNING");
    let (source, target) = ips(&before);
    let expected = if swap_ips { (target.clone(), source.clone()) } else { (source.clone(), target.clone()) };
    assert_eq!(ips(&after), expected, "swap_ips = {swap_ips}");
    tokio::time::sleep(PHASE * 2).await;
    assert_eq!(show(&client, &id).await["task_status"], "EXCHANGE_SUCCESS", "the word stays until the next switch");

    rollback(&client, &id).await;
    assert_eq!(show(&client, &id).await["task_status"], "EXCHANGING");
    let rolled_back = switch_done(&client, &id).await;
    assert_eq!(rolled_back["task_status"], "ROLLBACK_SUCCESS");
    assert_eq!(ips(&rolled_back), (source, target));

    let calls = client.state().await["calls"].clone();
    assert_eq!(
        (calls["ExchangeInstanceIp"].as_u64(), calls["RollbackExchangeInstanceIp"].as_u64()),
        (Some(1), Some(1))
    );
}

#[tokio::test]
async fn exchange_and_rollback_answer_204_and_end_in_their_success_words_with_ips_swapped() {
    switch_and_check(true).await;
}

#[tokio::test]
async fn exchange_and_rollback_end_in_their_success_words_with_ips_kept() {
    switch_and_check(false).await;
}

#[tokio::test]
async fn a_switch_fail_fault_ends_exchange_and_rollback_in_their_failed_words() {
    let sim = start(true);
    let client = Client::new(&sim.url());
    let id = streaming_task(&client).await;
    let before = ips(&show(&client, &id).await);

    client.set_faults(json!({"switchFailRate": 1.0, "operations": ["ExchangeInstanceIp"]})).await;
    exchange(&client, &id).await;
    let failed = switch_done(&client, &id).await;
    assert_eq!(failed["task_status"], "EXCHANGE_FAILED");
    assert_eq!(ips(&failed), before, "a failed exchange changes nothing");
    let logs = client.call("GET", &format!("/migration-task/{id}/logs"), &[("log_level", "ERROR")], None).await.json();
    assert_eq!(logs["migration_logs"][0]["log_code"], "MIGRATION_IP_SWITCH_FAILED");

    client.set_faults(json!({})).await;
    exchange(&client, &id).await;
    assert_eq!(switch_done(&client, &id).await["task_status"], "EXCHANGE_SUCCESS");
    client.set_faults(json!({"switchFailRate": 1.0})).await;
    rollback(&client, &id).await;
    let failed = switch_done(&client, &id).await;
    assert_eq!(failed["task_status"], "ROLLBACK_FAILED");
    assert_ne!(ips(&failed), before, "a failed rollback leaves the exchange in place");
    assert_eq!(client.state().await["switchovers"][&id]["outcome"], "ROLLBACK_FAILED");
}
