//! The client's per-operation answer caps (`Operation::max_answer_bytes`) hold the largest answers
//! the API can give with a margin of at least 3×: measured on the simulator's own answers, built
//! in-process with the longest names and every field set.

use std::sync::Mutex;
use std::time::Duration;

use dcs_migration_operator::dcs::Operation;
use dcs_migration_operator::simulator::handlers;
use dcs_migration_operator::simulator::lifecycle::Timing;
use dcs_migration_operator::simulator::routes::ApiRoute;
use dcs_migration_operator::simulator::store::TaskStore;
use serde_json::{Value, json};

const PROJECT: &str = "0123456789abcdef0123456789abcdef";
const MARGIN: usize = 3;
/// The API's largest page (`limit` 1–1000).
const MAX_PAGE: usize = 1000;

fn store() -> Mutex<TaskStore> {
    Mutex::new(TaskStore::new(Timing { phase: Duration::from_millis(1), release_after: None, swap_ips: true }))
}

fn call(
    store: &Mutex<TaskStore>,
    operation: Operation,
    task_id: Option<&str>,
    query: &[(&str, &str)],
    body: &Value,
) -> Vec<u8> {
    let route = ApiRoute { operation, project_id: PROJECT.into(), task_id: task_id.map(str::to_owned) };
    let query: Vec<(String, String)> = query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let body = if body.is_null() { Vec::new() } else { serde_json::to_vec(body).unwrap() };
    let reply = handlers::handle(store, &route, &query, &body, jiff::Timestamp::now(), false).expect("call succeeds");
    reply.body.unwrap_or_default()
}

fn id_of(answer: &[u8], key: &str) -> String {
    serde_json::from_slice::<Value>(answer).unwrap()[key].as_str().unwrap().to_owned()
}

/// An online task with a 64-character name, a 256-character description, configured with
/// self-hosted addresses on both sides, and its first log lines.
fn long_online_task(store: &Mutex<TaskStore>, n: usize) -> String {
    let name = format!("t{n:063}");
    let created = call(
        store,
        Operation::CreateOnlineMigrationTask,
        None,
        &[],
        &json!({"name": name, "description": "d".repeat(256), "vpc_id": "5e3a9b5a-0c3e-4bcf-9a6b-2a1d9c3b7e11",
                "subnet_id": "b7d7a0c4-3a4f-4b8e-9f3e-1c2d3e4f5a6b", "security_group_id": "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"}),
    );
    id_of(&created, "instance_id")
}

fn configure_all(store: &Mutex<TaskStore>, ids: &[String]) {
    std::thread::sleep(Duration::from_millis(5));
    let addrs = "192.168.100.100:6379,192.168.100.101:6379,192.168.100.102:6379";
    for id in ids {
        call(
            store,
            Operation::SetOnlineMigrationTask,
            Some(id),
            &[],
            &json!({"migration_method": "incremental_migration", "resume_mode": "auto", "bandwidth_limit_mb": "10240",
                    "source_instance": {"addrs": addrs, "password": "p".repeat(64)},
                    "target_instance": {"addrs": addrs, "password": "p".repeat(64)}}),
        );
    }
}

fn assert_fits(operation: Operation, largest: usize) {
    let cap = operation.max_answer_bytes();
    println!("{operation}: largest answer {largest} bytes, cap {cap} bytes");
    assert!(largest * MARGIN <= cap, "{operation}: {largest} bytes × {MARGIN} exceed the cap of {cap}");
}

#[test]
fn a_full_list_page_fits_its_cap_three_times() {
    let store = store();
    let ids: Vec<String> = (0..MAX_PAGE).map(|n| long_online_task(&store, n)).collect();
    configure_all(&store, &ids);
    let page = call(&store, Operation::ListMigrationTask, None, &[("limit", "1000")], &Value::Null);
    assert_eq!(serde_json::from_slice::<Value>(&page).unwrap()["migration_tasks"].as_array().unwrap().len(), MAX_PAGE);
    assert_fits(Operation::ListMigrationTask, page.len());
}

#[test]
fn a_full_log_page_fits_its_cap_three_times() {
    let store = store();
    let id = long_online_task(&store, 1);
    configure_all(&store, std::slice::from_ref(&id));
    let page = call(&store, Operation::ListMigrationTaskLogs, Some(&id), &[("limit", "1000")], &Value::Null);
    let lines = serde_json::from_slice::<Value>(&page).unwrap()["migration_logs"].as_array().unwrap().len();
    // The simulator keeps fewer lines than a page can hold: scale its longest line to a full page.
    let longest_line = serde_json::from_slice::<Value>(&page).unwrap()["migration_logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.to_string().len() + 1)
        .max()
        .unwrap();
    assert!(lines > 0);
    assert_fits(Operation::ListMigrationTaskLogs, longest_line.max(256) * MAX_PAGE);
}

#[test]
fn a_task_and_a_full_batch_fit_their_caps_three_times() {
    let store = store();
    let files: Vec<Value> =
        (0..100).map(|n| json!({"file_name": format!("backup/{n:0>120}.rdb"), "size": "754.0MB"})).collect();
    let created = call(
        &store,
        Operation::CreateMigrationTask,
        None,
        &[],
        &json!({"task_name": format!("i{:063}", 0), "description": "d".repeat(256), "migration_type": "backupfile_import",
                "migration_method": "full_amount_migration",
                "backup_files": {"file_source": "self_build_obs", "bucket_name": "b".repeat(63), "files": files},
                "target_instance": {"id": "d2c8399f-bdba-43c1-8069-3ff17a1a79d5", "password": "p".repeat(64)}}),
    );
    let import = id_of(&created, "id");
    let show = call(&store, Operation::ShowMigrationTask, Some(&import), &[], &Value::Null);
    assert_fits(Operation::ShowMigrationTask, show.len());

    let ids: Vec<String> = (0..50).map(|n| long_online_task(&store, n)).collect();
    configure_all(&store, &ids);
    let stop = call(&store, Operation::StopMigrationTask, Some(&ids[0]), &[], &Value::Null);
    assert_fits(Operation::StopMigrationTask, stop.len().max(show.len()));
    let batch = call(&store, Operation::BatchStopMigrationTasks, None, &[], &json!({"migration_tasks": ids}));
    assert_fits(Operation::BatchStopMigrationTasks, batch.len());
    let stats = call(&store, Operation::ShowMigrationTaskStats, Some(&ids[1]), &[], &Value::Null);
    assert_fits(Operation::ShowMigrationTaskStats, stats.len());
}
