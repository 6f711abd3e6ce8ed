//! The simulator over real HTTP: signature checks, the API's answers to garbage, lifecycles and the
//! admin API. Requests are signed with `dcs::signer` as the official SDK signs them.

mod simulator_support;

use std::time::Duration;

use serde_json::json;
use simulator_support::{Client, backup_import_body, configure_body, start};

const UNKNOWN: &str = "0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn a_correctly_signed_request_is_accepted_and_carries_a_request_id() {
    let sim = start(Duration::from_millis(200));
    let client = Client::new(&sim.url());
    let a = client.call("GET", "/migration-tasks", &[("limit", "10"), ("offset", "0")], None).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json(), json!({"count": 0, "migration_tasks": []}));
    assert_eq!(a.request_id.as_deref().map(str::len), Some(32));
}

#[tokio::test]
async fn wrong_secret_unknown_key_and_missing_authorization_are_401_apigw_0301() {
    let sim = start(Duration::from_millis(200));
    let mut wrong_secret = Client::new(&sim.url());
    wrong_secret.secret_key = "wrong".into();
    wrong_secret.call("GET", "/migration-tasks", &[], None).await.assert_error(401, "APIGW.0301");

    let mut unknown_key = Client::new(&sim.url());
    unknown_key.access_key = "NOSUCHKEY".into();
    unknown_key.call("GET", "/migration-tasks", &[], None).await.assert_error(401, "APIGW.0301");

    let client = Client::new(&sim.url());
    let path = format!("/v2/{}/migration-tasks", client.project);
    let a = client.unsigned("GET", &path, None).await;
    a.assert_error(401, "APIGW.0301");
    assert!(a.json()["request_id"].is_string(), "gateway errors carry request_id");
}

#[tokio::test]
async fn a_body_changed_after_signing_fails_the_signature_and_has_no_effect() {
    let sim = start(Duration::from_millis(200));
    let client = Client::new(&sim.url());
    let mut tamper = Client::new(&sim.url());
    tamper.send_instead = Some(serde_json::to_vec(&backup_import_body("tampered-name")).unwrap());
    let a = tamper.call("POST", "/migration-task", &[], Some(&backup_import_body("signed-name"))).await;
    a.assert_error(401, "APIGW.0301");
    assert_eq!(client.state().await["tasks"], json!([]));
    // The canonical URI always ends in `/`: a trailing slash on the wire signs the same.
    let slash = client.call_raw("GET", &format!("/v2/{}/migration-tasks/", client.project), &[], None).await;
    assert_eq!(slash.status, 200);
}

#[tokio::test]
async fn a_stale_sdk_date_is_401_apigw_0303() {
    let sim = start(Duration::from_millis(200));
    let mut client = Client::new(&sim.url());
    client.date = Some(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(16 * 60));
    client.call("GET", "/migration-tasks", &[], None).await.assert_error(401, "APIGW.0303");
    client.date = Some(jiff::Timestamp::now() + jiff::SignedDuration::from_secs(16 * 60));
    client.call("GET", "/migration-tasks", &[], None).await.assert_error(401, "APIGW.0303");
    client.date = Some(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(14 * 60));
    assert_eq!(client.call("GET", "/migration-tasks", &[], None).await.status, 200);
}

#[tokio::test]
async fn a_signed_security_token_is_accepted() {
    let sim = start(Duration::from_millis(200));
    let mut client = Client::new(&sim.url());
    client.security_token = Some("TEMPORARY-SECURITY-TOKEN".into());
    assert_eq!(client.call("GET", "/migration-tasks", &[], None).await.status, 200);
}

#[tokio::test]
async fn another_project_id_is_refused_with_401_dcs_1004() {
    let sim = start(Duration::from_millis(200));
    let mut client = Client::new(&sim.url());
    client.project = "fedcba9876543210fedcba9876543210".into();
    client.call("GET", "/migration-tasks", &[], None).await.assert_error(401, "DCS.1004");
}

#[tokio::test]
async fn rotated_credentials_replace_the_old_key_at_once() {
    let sim = start(Duration::from_millis(200));
    let client = Client::new(&sim.url());
    let rotate = json!({"accessKey": "NEWKEY", "secretKey": "new-secret"}).to_string().into_bytes();
    assert_eq!(client.unsigned("PUT", "/_sim/credentials", Some(rotate)).await.status, 200);
    client.call("GET", "/migration-tasks", &[], None).await.assert_error(401, "APIGW.0301");
    let mut rotated = Client::new(&sim.url());
    rotated.access_key = "NEWKEY".into();
    rotated.secret_key = "new-secret".into();
    assert_eq!(rotated.call("GET", "/migration-tasks", &[], None).await.status, 200);
}

#[tokio::test]
async fn garbage_bodies_get_the_apis_validation_errors() {
    let sim = start(Duration::from_millis(200));
    let client = Client::new(&sim.url());
    let path = format!("/v2/{}/migration-task", client.project);
    client.call_raw("POST", &path, &[], Some(b"{\"task_name\": ")).await.assert_error(400, "DCS.4005");
    client.call_raw("POST", &path, &[], Some(b"[1,2,3]")).await.assert_error(400, "DCS.4005");
    client.call_raw("POST", &path, &[], Some(&[0xff, 0xfe, 0x00])).await.assert_error(400, "DCS.4005");
    client.call_raw("POST", &path, &[], None).await.assert_error(400, "DCS.4004");

    let mut missing = backup_import_body("task-missing");
    missing.as_object_mut().unwrap().remove("target_instance");
    let a = client.call("POST", "/migration-task", &[], Some(&missing)).await;
    a.assert_error(400, "DCS.4062");
    assert!(a.json()["error_msg"].as_str().unwrap().contains("target_instance"));

    let mut bad_enum = backup_import_body("task-enum");
    bad_enum["migration_method"] = json!("sideways");
    let a = client.call("POST", "/migration-task", &[], Some(&bad_enum)).await;
    a.assert_error(400, "DCS.4063");
    assert!(a.json()["error_msg"].as_str().unwrap().contains("migration_method"));

    let bad_name = backup_import_body("1-starts-with-a-digit");
    client.call("POST", "/migration-task", &[], Some(&bad_name)).await.assert_error(400, "DCS.4063");

    let wrong_type = json!({"name": 42, "vpc_id": "v", "subnet_id": "s", "security_group_id": "g"});
    client.call("POST", "/migration/instance", &[], Some(&wrong_type)).await.assert_error(400, "DCS.4063");
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_apigw_0201_and_the_simulator_keeps_serving() {
    let sim = start(Duration::from_millis(200));
    let client = Client::new(&sim.url());
    let huge = vec![b'x'; 2 * 1024 * 1024];
    let path = format!("/v2/{}/migration-task", client.project);
    client.call_raw("POST", &path, &[], Some(&huge)).await.assert_error(413, "APIGW.0201");
    let unsigned = client.unsigned("PUT", "/_sim/faults", Some(huge)).await;
    assert_eq!(unsigned.status, 413);
    assert_eq!(client.call("GET", "/migration-tasks", &[], None).await.status, 200);
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_are_404_apigw_0101() {
    let sim = start(Duration::from_millis(200));
    let client = Client::new(&sim.url());
    for (method, path) in [
        ("GET", "/".to_owned()),
        ("GET", "/v1.0/x/migration-task".to_owned()),
        ("GET", format!("/v2/{}/nothing-here", client.project)),
        ("DELETE", format!("/v2/{}/migration-task/{UNKNOWN}", client.project)),
        ("PATCH", format!("/v2/{}/migration-tasks", client.project)),
        ("GET", format!("/v2/{}/migration-tasks/delete", client.project)),
        ("GET", "/_sim/nothing".to_owned()),
        ("POST", "/_sim/state".to_owned()),
    ] {
        let a = client.call_raw(method, &path, &[], None).await;
        a.assert_error(404, "APIGW.0101");
        assert!(a.request_id.is_some(), "{method} {path} has no X-Request-Id");
    }
}

#[tokio::test]
async fn malformed_ids_are_4070_in_paths_and_4855_in_batches_and_unknown_ids_are_4133() {
    let sim = start(Duration::from_millis(200));
    let client = Client::new(&sim.url());
    for id in ["abc", "0123456789ABCDEF0123456789ABCDEF", "%00%ff", "batch-stop", "../../etc"] {
        let a = client.call("GET", &format!("/migration-task/{id}"), &[], None).await;
        assert!(matches!(a.status, 400 | 404), "{id}: {}", a.status);
        simulator_support::assert_well_formed_error(&a.json());
        if a.status == 400 {
            assert_eq!(a.error_code(), "DCS.4070", "{id}");
        }
    }
    let a = client.call("POST", "/migration-task/batch-stop", &[], Some(&json!({"migration_tasks": ["x"]}))).await;
    a.assert_error(400, "DCS.4855");
    let a = client.call("DELETE", "/migration-tasks/delete", &[], Some(&json!({"task_id_list": ["x"]}))).await;
    a.assert_error(400, "DCS.4855");
    let many: Vec<String> = (0..51).map(|i| format!("{i:032x}")).collect();
    let a = client.call("POST", "/migration-tasks/batch-restart", &[], Some(&json!({"migration_tasks": many}))).await;
    a.assert_error(400, "DCS.4800");
    for (method, path) in [
        ("GET", format!("/migration-task/{UNKNOWN}")),
        ("GET", format!("/migration-task/{UNKNOWN}/stats")),
        ("GET", format!("/migration-task/{UNKNOWN}/logs")),
        ("POST", format!("/migration-task/{UNKNOWN}/stop")),
        ("POST", format!("/migration-task/{UNKNOWN}/sync-stop")),
        ("POST", format!("/migration-task/{UNKNOWN}/rollback-ip")),
        ("GET", "/migration-task/90754308-a156-406f-a837-8f852f38a646".to_owned()),
    ] {
        client.call(method, &path, &[], None).await.assert_error(400, "DCS.4133");
    }
}

#[tokio::test]
async fn list_paging_is_validated_and_counts_every_match() {
    let sim = start(Duration::from_millis(200));
    let client = Client::new(&sim.url());
    for i in 0..5 {
        client.create_backup_import(&format!("paged-{i}")).await;
    }
    client.create_backup_import("other-task").await;
    let a = client.call("GET", "/migration-tasks", &[("name", "paged"), ("limit", "2"), ("offset", "4")], None).await;
    assert_eq!(a.json()["count"], 5);
    assert_eq!(a.json()["migration_tasks"].as_array().unwrap().len(), 1);
    for (k, v) in [("limit", "0"), ("limit", "1001"), ("limit", "x"), ("offset", "-1")] {
        let a = client.call("GET", "/migration-tasks", &[(k, v)], None).await;
        assert_eq!(a.status, 400, "{k}={v}");
        simulator_support::assert_well_formed_error(&a.json());
    }
    let all = client.call("GET", "/migration-tasks", &[("limit", "1000")], None).await;
    assert_eq!(all.json()["count"], 6);
}

#[tokio::test]
async fn online_lifecycle_runs_through_every_state_and_stats_move() {
    let sim = start(Duration::from_millis(300));
    let client = Client::new(&sim.url());
    let id = client.create_online("lifecycle-1").await;
    assert_eq!(client.status(&id).await, "CREATING");
    client.wait_for(&id, "RUNNING").await;
    let a = client
        .call("POST", &format!("/migration/{id}/task"), &[], Some(&configure_body("full_amount_migration")))
        .await;
    assert_eq!(a.json()["status"], "FULLMIGRATING");
    let mut seen = Vec::new();
    loop {
        let stats = client.call("GET", &format!("/migration-task/{id}/stats"), &[], None).await.json();
        let p: u32 = stats["full_migration_progress"].as_str().unwrap().parse().unwrap();
        seen.push(p);
        if p == 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "progress never goes back: {seen:?}");
    assert!(seen.len() >= 3, "progress rises in steps: {seen:?}");
    assert_eq!(client.status(&id).await, "SUCCESS");
}

#[tokio::test]
async fn forced_status_and_out_of_band_removal_through_the_admin_api() {
    let sim = start(Duration::from_millis(200));
    let client = Client::new(&sim.url());
    let id = client.create_online("forced-1").await;
    let body = json!({"status": "FAILED", "errorMessage": "source unreachable"}).to_string().into_bytes();
    let a = client.unsigned("PUT", &format!("/_sim/tasks/{id}"), Some(body)).await;
    assert_eq!(a.status, 200);
    assert_eq!(client.status(&id).await, "FAILED");
    let list = client.call("GET", "/migration-tasks", &[("name", "forced-1")], None).await.json();
    assert_eq!(list["migration_tasks"][0]["error_message"], "source unreachable");
    let state = client.state().await;
    assert_eq!(state["tasks"][0]["task_id"], id.as_str());
    assert_eq!(client.unsigned("DELETE", &format!("/_sim/tasks/{id}"), None).await.status, 204);
    client.call("GET", &format!("/migration-task/{id}"), &[], None).await.assert_error(400, "DCS.4133");
    assert_eq!(
        client
            .unsigned("PUT", &format!("/_sim/tasks/{UNKNOWN}"), Some(b"{\"status\":\"FAILED\"}".to_vec()))
            .await
            .status,
        404
    );
    assert_eq!(client.unsigned("PUT", "/_sim/faults", Some(b"{\"errorRate\": 2}".to_vec())).await.status, 400);
    assert_eq!(
        client.unsigned("PUT", "/_sim/faults", Some(b"{\"operations\": [\"Nope\"]}".to_vec())).await.status,
        400
    );
}

#[tokio::test]
async fn delete_refuses_running_tasks_and_keeps_a_stale_detail_for_deleted_ones() {
    let sim = start(Duration::from_millis(200));
    let client = Client::new(&sim.url());
    let id = client.create_backup_import("delete-1").await;
    let a = client.call("DELETE", "/migration-tasks/delete", &[], Some(&json!({"task_id_list": [id]}))).await;
    a.assert_error(400, "DCS.4957");
    client.wait_for(&id, "SUCCESS").await;
    let a = client.call("DELETE", "/migration-tasks/delete", &[], Some(&json!({"task_id_list": [id]}))).await;
    assert_eq!(a.json(), json!({"task_id_list": [id]}));
    assert_eq!(client.status(&id).await, "SUCCESS");
    assert_eq!(client.state().await["tasks"], json!([]));
    client.call("GET", &format!("/migration-task/{id}/stats"), &[], None).await.assert_error(400, "DCS.4133");
}

#[tokio::test]
async fn stop_echoes_passwords_and_a_second_stop_is_4957() {
    let sim = start(Duration::from_millis(200));
    let client = Client::new(&sim.url());
    let id = client.create_online("stop-1").await;
    client.wait_for(&id, "RUNNING").await;
    client.call("POST", &format!("/migration/{id}/task"), &[], Some(&configure_body("incremental_migration"))).await;
    client.wait_for(&id, "INCRMIGEATING").await;
    let a = client.call("POST", &format!("/migration-task/{id}/stop"), &[], None).await;
    assert_eq!(a.status, 200);
    let body = a.json();
    assert_eq!(body["status"], "TERMINATING");
    assert_eq!(body["source_instance"]["password"], "src");
    assert_eq!(body["target_instance"]["password"], "tgt");
    client.call("POST", &format!("/migration-task/{id}/stop"), &[], None).await.assert_error(400, "DCS.4957");
    client.wait_for(&id, "TERMINATED").await;
    let a = client.call("POST", &format!("/migration-task/{id}/sync-stop"), &[], None).await;
    a.assert_error(400, "DCS.4957");
}

#[tokio::test]
async fn ended_online_tasks_are_released_after_the_configured_delay() {
    let config = dcs_migration_operator::simulator::Config::new(
        simulator_support::AK,
        simulator_support::SK,
        simulator_support::PROJECT,
    )
    .with_phase(Duration::from_millis(100))
    .with_release_after(Some(Duration::from_millis(300)));
    let sim = dcs_migration_operator::simulator::spawn(config).unwrap();
    let client = Client::new(&sim.url());
    let id = client.create_online("release-1").await;
    client.wait_for(&id, "RUNNING").await;
    client.call("POST", &format!("/migration/{id}/task"), &[], Some(&configure_body("full_amount_migration"))).await;
    client.wait_for(&id, "RELEASED").await;
    let show = client.call("GET", &format!("/migration-task/{id}"), &[], None).await.json();
    assert!(show["released_at"].as_str().is_some_and(|s| s.len() == 12), "{show}");
}
