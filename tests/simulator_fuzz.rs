//! Property tests: random bytes, random JSON, random paths and queries fed to the simulator's
//! router and handlers (in-process) and to the running simulator (over HTTP) never panic and always
//! get either a JSON answer or a well-formed error body.

mod simulator_support;

use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use dcs_migration_operator::simulator::handlers;
use dcs_migration_operator::simulator::lifecycle::Timing;
use dcs_migration_operator::simulator::routes::{self, ApiRoute, Operation};
use dcs_migration_operator::simulator::store::TaskStore;
use dcs_migration_operator::simulator::{ApiError, RunningSimulator};
use hyper::Method;
use proptest::prelude::*;
use serde_json::{Value, json};
use simulator_support::{Client, PROJECT, assert_well_formed_error, backup_import_body, configure_body};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        "[a-z_]{0,12}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
        Just(json!("0123456789abcdef0123456789abcdef")),
        Just(json!("full_amount_migration")),
        Just(json!("incremental_migration")),
        Just(json!("backupfile_import")),
        Just(json!("auto")),
        Just(json!("10.0.0.1:6379")),
    ];
    let keys = prop_oneof![
        Just("task_name".to_owned()),
        Just("name".to_owned()),
        Just("migration_type".to_owned()),
        Just("migration_method".to_owned()),
        Just("backup_files".to_owned()),
        Just("files".to_owned()),
        Just("file_name".to_owned()),
        Just("bucket_name".to_owned()),
        Just("target_instance".to_owned()),
        Just("source_instance".to_owned()),
        Just("id".to_owned()),
        Just("addrs".to_owned()),
        Just("resume_mode".to_owned()),
        Just("bandwidth_limit_mb".to_owned()),
        Just("migration_tasks".to_owned()),
        Just("task_id_list".to_owned()),
        Just("exchanged_ip".to_owned()),
        Just("vpc_id".to_owned()),
        "[a-z_]{1,10}",
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        arb_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        Just(serde_json::to_vec(&backup_import_body("fuzz-task")).unwrap()),
        Just(serde_json::to_vec(&configure_body("incremental_migration")).unwrap()),
    ]
}

fn arb_task_id() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{32}",
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        any::<String>(),
        "[ -~]{0,40}",
    ]
}

fn arb_query() -> impl Strategy<Value = Vec<(String, String)>> {
    let key = prop_oneof![
        Just("offset".to_owned()),
        Just("limit".to_owned()),
        Just("name".to_owned()),
        Just("log_level".to_owned()),
        any::<String>(),
    ];
    let value = prop_oneof![any::<String>(), "-?[0-9]{1,22}", Just("INFO".to_owned())];
    prop::collection::vec((key, value), 0..5)
}

/// A store holding one task of each kind in various states.
fn seeded_store() -> (Mutex<TaskStore>, Vec<String>) {
    let store =
        Mutex::new(TaskStore::new(Timing { phase: Duration::from_millis(1), release_after: None, swap_ips: true }));
    let now = jiff::Timestamp::now();
    let mut ids = Vec::new();
    let create = ApiRoute { operation: Operation::CreateMigrationTask, project_id: PROJECT.into(), task_id: None };
    let body = serde_json::to_vec(&backup_import_body("seed-import")).unwrap();
    let reply = handlers::handle(&store, &create, &[], &body, now, false).unwrap();
    ids.push(serde_json::from_slice::<Value>(&reply.body.unwrap()).unwrap()["id"].as_str().unwrap().to_owned());
    let online =
        ApiRoute { operation: Operation::CreateOnlineMigrationTask, project_id: PROJECT.into(), task_id: None };
    let body = br#"{"name": "seed-online", "vpc_id": "v", "subnet_id": "s", "security_group_id": "g"}"#;
    let reply = handlers::handle(&store, &online, &[], body, now, false).unwrap();
    ids.push(
        serde_json::from_slice::<Value>(&reply.body.unwrap()).unwrap()["instance_id"].as_str().unwrap().to_owned(),
    );
    (store, ids)
}

fn check_error(e: &ApiError) {
    assert!(e.status.is_client_error() || e.status.is_server_error(), "{e}");
    assert_well_formed_error(&serde_json::from_slice(&e.body("rid")).unwrap());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn handlers_never_panic_on_random_bodies_ids_and_queries(
        op_index in 0usize..Operation::ALL.len(),
        use_known_id in any::<bool>(),
        known in 0usize..2,
        id in arb_task_id(),
        body in arb_body(),
        query in arb_query(),
    ) {
        let (store, ids) = seeded_store();
        let operation = Operation::ALL[op_index];
        let task_id = if use_known_id { ids[known].clone() } else { id };
        let route = ApiRoute { operation, project_id: PROJECT.into(), task_id: Some(task_id) };
        // Every operation, with and without a path id, twice (the first call may change state).
        for route in [route.clone(), ApiRoute { task_id: None, ..route }] {
            for _ in 0..2 {
                match handlers::handle(&store, &route, &query, &body, jiff::Timestamp::now(), false) {
                    Ok(reply) => {
                        if let Some(body) = reply.body {
                            prop_assert!(serde_json::from_slice::<Value>(&body).is_ok());
                        }
                    }
                    Err(e) => check_error(&e),
                }
            }
        }
    }

    #[test]
    fn valid_requests_carrying_random_strings_never_panic(
        id in any::<String>(),
        name in any::<String>(),
        password in any::<String>(),
        addrs in prop_oneof![any::<String>(), "[0-9.]{1,15}:[0-9]{1,6}(,[0-9.]{1,15}:[0-9]{1,6}){0,2}"],
        bandwidth in prop_oneof![any::<String>().prop_map(Value::String), any::<i64>().prop_map(|n| json!(n))],
    ) {
        let (store, _) = seeded_store();
        let now = jiff::Timestamp::now();
        let create = ApiRoute { operation: Operation::CreateMigrationTask, project_id: PROJECT.into(), task_id: None };
        let mut body = backup_import_body("random-strings");
        body["target_instance"] = json!({"id": id, "name": name, "password": password});
        body["backup_files"]["files"][0]["size"] = json!(name);
        let outcome = handlers::handle(&store, &create, &[], &serde_json::to_vec(&body).unwrap(), now, false);
        if let Err(e) = &outcome { check_error(e); }
        let online = ApiRoute { operation: Operation::CreateOnlineMigrationTask, project_id: PROJECT.into(), task_id: None };
        let short = |s: &str| format!("x{}", s.chars().take(100).collect::<String>());
        let body = json!({"name": "random-online", "vpc_id": short(&id), "subnet_id": short(&name), "security_group_id": short(&password)});
        let reply = handlers::handle(&store, &online, &[], &serde_json::to_vec(&body).unwrap(), now, false).unwrap();
        let task_id = serde_json::from_slice::<Value>(&reply.body.unwrap()).unwrap()["instance_id"].as_str().unwrap().to_owned();
        let later = now.checked_add(Duration::from_millis(10)).unwrap();
        let configure = ApiRoute { operation: Operation::SetOnlineMigrationTask, project_id: PROJECT.into(), task_id: Some(task_id.clone()) };
        let body = json!({
            "migration_method": "incremental_migration", "resume_mode": "auto", "bandwidth_limit_mb": bandwidth,
            "source_instance": {"addrs": addrs, "password": password},
            "target_instance": {"id": id, "password": password},
        });
        if let Err(e) = handlers::handle(&store, &configure, &[], &serde_json::to_vec(&body).unwrap(), later, false) { check_error(&e); }
        for operation in [Operation::ShowMigrationTask, Operation::ListMigrationTask, Operation::ShowMigrationTaskStats, Operation::StopMigrationTask] {
            let route = ApiRoute { operation, project_id: PROJECT.into(), task_id: Some(task_id.clone()) };
            if let Err(e) = handlers::handle(&store, &route, &[], b"", later, false) { check_error(&e); }
        }
    }

    #[test]
    fn the_router_never_panics_on_random_paths(method in "[A-Z]{1,8}", path in any::<String>()) {
        if let Ok(method) = Method::from_bytes(method.as_bytes()) {
            let _ = routes::route(&method, &path);
            let _ = routes::route(&method, &format!("/v2/{PROJECT}/{path}"));
            let _ = routes::route(&method, &format!("/_sim/{path}"));
        }
    }
}

struct Http {
    runtime: tokio::runtime::Runtime,
    sim: RunningSimulator,
}

static HTTP: LazyLock<Http> = LazyLock::new(|| Http {
    runtime: tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
    sim: simulator_support::start(Duration::from_millis(5)),
});

fn arb_path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("migration-task".to_owned()),
        Just("migration-tasks".to_owned()),
        Just("migration".to_owned()),
        Just("instance".to_owned()),
        Just("batch-stop".to_owned()),
        Just("stop".to_owned()),
        Just("stats".to_owned()),
        Just("0123456789abcdef0123456789abcdef".to_owned()),
        "[A-Za-z0-9._~-]{0,12}",
        "%[0-9A-F]{2}[a-z]{0,3}",
    ];
    (any::<bool>(), prop::collection::vec(segment, 0..5)).prop_map(|(api, segs)| {
        let rest = segs.join("/");
        if api { format!("/v2/{PROJECT}/{rest}") } else { format!("/{rest}") }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn the_running_simulator_answers_every_random_signed_request_with_json(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH"]),
        path in arb_path(),
        query in prop::collection::vec(("[a-z]{1,6}", "[ -~]{0,10}"), 0..3),
        body in prop::option::of(arb_body()),
    ) {
        let http = &*HTTP;
        let client = Client::new(&http.sim.url());
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let answer = http.runtime.block_on(client.try_call_raw(method, &path, &query, body.as_deref()));
        let answer = answer.map_err(|e| TestCaseError::fail(format!("{method} {path}: transport error {e}")))?;
        prop_assert!(answer.request_id.is_some());
        if answer.status >= 400 {
            let value: Value = serde_json::from_slice(&answer.body)
                .map_err(|e| TestCaseError::fail(format!("{method} {path}: {e}")))?;
            assert_well_formed_error(&value);
        } else if answer.status != 204 {
            prop_assert!(serde_json::from_slice::<Value>(&answer.body).is_ok());
        }
    }

    #[test]
    fn random_unsigned_bytes_to_any_path_never_break_the_simulator(
        path in arb_path(),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let http = &*HTTP;
        let client = Client::new(&http.sim.url());
        let answer = http.runtime.block_on(client.unsigned("POST", &path, Some(body)));
        prop_assert!(answer.status >= 400);
        assert_well_formed_error(&answer.json());
        let alive = http.runtime.block_on(client.call("GET", "/migration-tasks", &[("limit", "1")], None));
        prop_assert_eq!(alive.status, 200);
    }
}
