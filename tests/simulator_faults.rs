//! Fault injection over real HTTP: errors, throttling, dropped connections, lost replies, latency
//! and the operations filter, and how faulted calls show in `/_sim/state` and `/_sim/log`.

mod simulator_support;

use std::time::{Duration, Instant};

use serde_json::json;
use simulator_support::{Client, backup_import_body, start};

#[tokio::test]
async fn error_rate_answers_500_dcs_5000_and_throttle_rate_429_apigw_0308() {
    let sim = start(Duration::from_millis(200));
    let client = Client::new(&sim.url());
    client.set_faults(json!({"errorRate": 1.0})).await;
    client.call("GET", "/migration-tasks", &[], None).await.assert_error(500, "DCS.5000");
    client.set_faults(json!({"throttleRate": 1.0})).await;
    client.call("GET", "/migration-tasks", &[], None).await.assert_error(429, "APIGW.0308");
    assert_eq!(client.unsigned("DELETE", "/_sim/faults", None).await.status, 200);
    assert_eq!(client.call("GET", "/migration-tasks", &[], None).await.status, 200);
    let state = client.state().await;
    assert_eq!(state["calls"]["ListMigrationTask"], 3, "faulted calls count too");
}

#[tokio::test]
async fn a_dropped_call_closes_the_connection_before_it_takes_effect() {
    let sim = start(Duration::from_millis(200));
    let client = Client::new(&sim.url());
    client.set_faults(json!({"dropRate": 1.0, "operations": ["CreateMigrationTask"]})).await;
    let result = client.try_call("POST", "/migration-task", Some(&backup_import_body("dropped-1"))).await;
    assert!(result.is_err(), "no reply expected, got {result:?}");
    let state = client.state().await;
    assert_eq!(state["tasks"], json!([]), "a dropped create has no effect");
    assert_eq!(state["calls"]["CreateMigrationTask"], 1);
    assert_eq!(client.call("GET", "/migration-tasks", &[], None).await.status, 200, "other operations unaffected");
}

#[tokio::test]
async fn a_lost_reply_applies_the_call_and_then_closes_the_connection() {
    let sim = start(Duration::from_millis(200));
    let client = Client::new(&sim.url());
    client.set_faults(json!({"lostReplyRate": 1.0, "operations": ["CreateMigrationTask"]})).await;
    let result = client.try_call("POST", "/migration-task", Some(&backup_import_body("lost-reply-1"))).await;
    assert!(result.is_err(), "no reply expected, got {result:?}");
    let state = client.state().await;
    assert_eq!(state["tasks"][0]["task_name"], "lost-reply-1", "the create took effect");
    let log: Vec<serde_json::Value> =
        serde_json::from_slice(&client.unsigned("GET", "/_sim/log", None).await.body).unwrap();
    let last = log.iter().rev().find(|e| e["operation"] == "CreateMigrationTask").unwrap();
    assert_eq!(last["status"], 0, "no reply is logged with status 0");
}

#[tokio::test]
async fn latency_delays_only_the_listed_operations() {
    let sim = start(Duration::from_millis(200));
    let client = Client::new(&sim.url());
    client.set_faults(json!({"latencyMs": 300, "operations": ["ShowMigrationTask"]})).await;
    let started = Instant::now();
    client.call("GET", "/migration-tasks", &[], None).await;
    assert!(started.elapsed() < Duration::from_millis(250), "list is not delayed");
    let started = Instant::now();
    let a = client.call("GET", "/migration-task/0123456789abcdef0123456789abcdef", &[], None).await;
    assert!(started.elapsed() >= Duration::from_millis(300), "show is delayed");
    a.assert_error(400, "DCS.4133");
}

#[tokio::test]
async fn the_operations_filter_limits_errors_to_the_named_operations() {
    let sim = start(Duration::from_millis(200));
    let client = Client::new(&sim.url());
    client.set_faults(json!({"errorRate": 1.0, "operations": ["ShowMigrationTask"]})).await;
    let id = client.create_backup_import("filtered-1").await;
    client.call("GET", &format!("/migration-task/{id}"), &[], None).await.assert_error(500, "DCS.5000");
    assert_eq!(client.call("GET", &format!("/migration-task/{id}/stats"), &[], None).await.status, 200);
    let faults = client.unsigned("GET", "/_sim/faults", None).await.json();
    assert_eq!(faults["operations"], json!(["ShowMigrationTask"]));
}

#[tokio::test]
async fn partial_rates_fault_some_calls_and_the_log_records_each_outcome() {
    let sim = start(Duration::from_millis(200));
    let client = Client::new(&sim.url());
    client.set_faults(json!({"errorRate": 0.3, "throttleRate": 0.3})).await;
    let before = jiff::Timestamp::now().as_millisecond();
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..200 {
        let a = client.call("GET", "/migration-tasks", &[], None).await;
        *statuses.entry(a.status).or_insert(0) += 1;
    }
    for status in [200, 429, 500] {
        assert!(statuses.get(&status).copied().unwrap_or(0) > 10, "{statuses:?}");
    }
    let log: Vec<serde_json::Value> =
        serde_json::from_slice(&client.unsigned("GET", &format!("/_sim/log?sinceMs={before}"), None).await.body)
            .unwrap();
    assert_eq!(log.len(), 200);
    assert!(log.windows(2).all(|w| w[0]["atMs"].as_i64() <= w[1]["atMs"].as_i64()), "oldest first");
    let logged_500 = log.iter().filter(|e| e["status"] == 500).count();
    assert_eq!(logged_500, statuses[&500]);
}
