//! The Rust client against a real `dcs-simulator` over loopback HTTP with real signing: every
//! operation round-trips, retries cover faults for idempotent calls only, the rate limit holds,
//! and the `dcs` CLI reports errors in one line.

use dcs_migration_operator::dcs::model::*;
use dcs_migration_operator::dcs::{
    ClientConfig, Credentials, DcsClient, DcsError, Endpoint, ErrorClass, InFlight, RateLimit, RetryPolicy,
};
use dcs_migration_operator::simulator;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const AK: &str = "SIMACCESSKEY0000";
const SK: &str = "SimSecretKey0123456789";
const PROJECT: &str = "0123456789abcdef0123456789abcdef";
const PHASE: f64 = 0.2;

struct Sim {
    running: simulator::RunningSimulator,
    http: reqwest::Client,
}

impl Sim {
    async fn start() -> Self {
        let config = simulator::Config::new(AK, SK, PROJECT).with_phase(Duration::from_secs_f64(PHASE));
        let running = simulator::spawn(config).expect("simulator starts");
        Self { running, http: reqwest::Client::new() }
    }

    fn url(&self) -> String {
        self.running.url()
    }

    fn client_with(&self, sk: &str, tune: impl FnOnce(&mut ClientConfig)) -> DcsClient {
        let endpoint = Endpoint::parse(&self.url()).unwrap();
        let mut config = ClientConfig::new(endpoint, PROJECT, Credentials::new(AK, sk));
        config.rate_limit = RateLimit { qps: 500.0, burst: 100 };
        config.retry = RetryPolicy {
            max_retries: 10,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(200),
            total_delay: Duration::from_secs(10),
        };
        tune(&mut config);
        DcsClient::new(config).unwrap()
    }

    fn client(&self) -> DcsClient {
        self.client_with(SK, |_| {})
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.url()));
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(serde_json::to_vec(&b).unwrap());
        }
        let resp = req.send().await.expect("admin call");
        assert!(resp.status().is_success(), "admin {path}: {}", resp.status());
        let bytes = resp.bytes().await.unwrap();
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }

    async fn state(&self) -> Value {
        self.admin(reqwest::Method::GET, "/_sim/state", None).await
    }

    async fn calls(&self, operation: &str) -> u64 {
        self.state().await["calls"][operation].as_u64().unwrap_or(0)
    }

    async fn faults(&self, faults: Value) {
        self.admin(reqwest::Method::PUT, "/_sim/faults", Some(faults)).await;
    }
}

fn import_body(name: &str) -> CreateMigrationTaskBody {
    CreateMigrationTaskBody {
        task_name: name.to_owned(),
        description: Some("backup import".into()),
        migration_type: MIGRATION_TYPE_BACKUP_IMPORT.into(),
        migration_method: MigrationMethod::Full,
        backup_files: BackupFilesBody {
            file_source: Some("self_build_obs".into()),
            bucket_name: Some("bucket".into()),
            files: vec![BackupFile { file_name: Some("dump.rdb".into()), size: Some("1024".into()), update_at: None }],
            backup_id: None,
        },
        target_instance: TargetInstanceBody {
            id: "d2c8399f-bdba-43c1-8069-3ff17a1a79d5".into(),
            password: Some(SecretString::from("TargetPassw0rd!")),
        },
    }
}

fn online_body(name: &str) -> CreateOnlineMigrationTaskBody {
    CreateOnlineMigrationTaskBody {
        name: name.to_owned(),
        description: None,
        vpc_id: "5e3a9b5a-0c3e-4bcf-9a6b-2a1d9c3b7e11".into(),
        subnet_id: "b7d7a0c4-3a4f-4b8e-9f3e-1c2d3e4f5a6b".into(),
        security_group_id: "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b".into(),
    }
}

fn configure_body(method: MigrationMethod) -> SetOnlineMigrationTaskBody {
    SetOnlineMigrationTaskBody {
        migration_method: method,
        resume_mode: ResumeMode::Auto,
        bandwidth_limit_mb: Some("100".into()),
        source_instance: ConfigMigrationInstanceBody {
            addrs: Some("192.168.0.10:6379".into()),
            password: Some(SecretString::from("SourcePassw0rd!")),
            ..Default::default()
        },
        target_instance: ConfigMigrationInstanceBody {
            id: Some("d2c8399f-bdba-43c1-8069-3ff17a1a79d5".into()),
            password: Some(SecretString::from("TargetPassw0rd!")),
            ..Default::default()
        },
    }
}

async fn wait_for(client: &DcsClient, id: &str, state: TaskState) -> MigrationTask {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let task = client.show_migration_task(id).await.expect("show");
        if task.status.state() == state {
            return task;
        }
        assert!(Instant::now() < deadline, "task {id} stuck in {} waiting for {state:?}", task.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until the switch under way ends; returns the top-level `task_status` it ended with.
async fn wait_until_not_exchanging(client: &DcsClient, id: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let word = client.show_migration_task(id).await.unwrap().task_status;
        if word.as_deref() != Some("EXCHANGING") {
            return word;
        }
        assert!(Instant::now() < deadline, "switch-over of {id} never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn backup_import_round_trips_from_create_to_success_and_delete() {
    let sim = Sim::start().await;
    let client = sim.client();
    let created = client.create_migration_task(&import_body("import-one")).await.unwrap();
    let id = created.id.clone().expect("create answers the task id");
    assert_eq!(created.status.state(), TaskState::Migrating);

    let done = wait_for(&client, &id, TaskState::Success).await;
    assert_eq!(done.task_name.as_deref(), Some("import-one"));
    let shown = format!("{done:?}");
    assert!(!shown.contains("TargetPassw0rd!"), "echoed password survived decoding: {shown}");

    let page = client
        .list_migration_tasks(&ListQuery { name: Some("import-one".into()), limit: Some(1000), offset: Some(0) })
        .await
        .unwrap();
    assert!(page.migration_tasks.iter().any(|t| t.task_id.as_deref() == Some(id.as_str())));

    let logs = client.list_migration_task_logs(&id, &LogsQuery::default()).await.unwrap();
    assert!(!logs.migration_logs.is_empty(), "the task has a log");

    let deleted = client.delete_migration_tasks(std::slice::from_ref(&id)).await.unwrap();
    assert_eq!(deleted, vec![id.clone()]);
    let page = client.list_migration_tasks(&ListQuery { limit: Some(1000), ..Default::default() }).await.unwrap();
    assert!(page.migration_tasks.iter().all(|t| t.task_id.as_deref() != Some(id.as_str())), "deleted task is listed");
}

#[tokio::test]
async fn online_incremental_task_is_configured_streams_switches_over_and_stops() {
    let sim = Sim::start().await;
    let client = sim.client();
    let created = client.create_online_migration_task(&online_body("online-incr")).await.unwrap();
    let id = created.instance_id.expect("create-online answers instance_id");
    wait_for(&client, &id, TaskState::Running).await;

    let configured =
        client.set_online_migration_task(&id, &configure_body(MigrationMethod::Incremental)).await.unwrap();
    assert!(!matches!(configured.status.state(), TaskState::Running), "configure starts the migration");
    let streaming = wait_for(&client, &id, TaskState::IncrementalMigrating).await;
    assert_eq!(streaming.status.word(), "INCRMIGEATING", "the API's spelling is kept verbatim");
    assert!(streaming.ecs_tenant_private_ip.is_some(), "the migration ECS has an IP");

    let stats = client.show_migration_task_stats(&id).await.unwrap();
    assert_eq!(stats.full_migration_progress, Some(100.0));

    client.update_migration_task(&id, ResumeMode::Manual).await.unwrap();
    assert_eq!(client.show_migration_task(&id).await.unwrap().resume_mode.as_deref(), Some("manual"));

    let exchange = ExchangeInstanceIpBody { exchanged_ip: vec!["192.168.0.10".into()], is_exchange_domain: false };
    client.exchange_instance_ip(&id, &exchange).await.unwrap();
    assert_eq!(wait_until_not_exchanging(&client, &id).await.as_deref(), Some("EXCHANGE_SUCCESS"));
    client.rollback_exchange_instance_ip(&id).await.unwrap();
    assert_eq!(wait_until_not_exchanging(&client, &id).await.as_deref(), Some("ROLLBACK_SUCCESS"));

    let stopping = client.stop_migration_task(&id).await.unwrap();
    assert!(matches!(stopping.status.state(), TaskState::Terminating | TaskState::Terminated));
    wait_for(&client, &id, TaskState::Terminated).await;

    let restarted = client.batch_restart_online_migration_tasks(std::slice::from_ref(&id)).await.unwrap();
    assert!(restarted.migration_tasks.iter().all(BatchItemResult::succeeded), "{restarted:?}");
    wait_for(&client, &id, TaskState::IncrementalMigrating).await;
    client.stop_migration_task_sync(&id).await.unwrap();
    wait_for(&client, &id, TaskState::Terminated).await;
}

#[tokio::test]
async fn batch_stop_reports_per_item_failures_with_http_200() {
    let sim = Sim::start().await;
    let client = sim.client();
    let a = client.create_online_migration_task(&online_body("batch-a")).await.unwrap().instance_id.unwrap();
    let b = client.create_migration_task(&import_body("batch-b")).await.unwrap().id.unwrap();
    wait_for(&client, &a, TaskState::Running).await;
    client.set_online_migration_task(&a, &configure_body(MigrationMethod::Incremental)).await.unwrap();
    wait_for(&client, &a, TaskState::IncrementalMigrating).await;
    wait_for(&client, &b, TaskState::Success).await;

    let missing = "0123456789abcdef0123456789abcdef".to_owned();
    let result = client.batch_stop_migration_tasks(&[a.clone(), b.clone(), missing.clone()]).await.unwrap();
    let by_id = |id: &str| result.migration_tasks.iter().find(|r| r.task_id.as_deref() == Some(id)).unwrap().clone();
    assert!(by_id(&a).succeeded());
    assert!(!by_id(&b).succeeded(), "a finished task cannot be stopped");
    assert!(!by_id(&missing).succeeded());
    wait_for(&client, &a, TaskState::Terminated).await;

    let too_many: Vec<String> = (0..51).map(|i| format!("{i:032x}")).collect();
    assert!(matches!(client.batch_stop_migration_tasks(&too_many).await, Err(DcsError::InvalidRequest(_))));
}

#[tokio::test]
async fn unknown_task_is_not_found_and_a_malformed_id_is_a_bad_request() {
    let sim = Sim::start().await;
    let client = sim.client();
    let err = client.show_migration_task("0123456789abcdef0123456789abcdef").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NotFound);
    assert_eq!(err.code(), Some("DCS.4133"));
    assert!(err.to_string().contains("DCS.4133"), "{err}");

    let err = client.show_migration_task("not a task id/..").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::BadRequest, "{err}");
    assert_eq!(err.http_status(), Some(400));
}

#[tokio::test]
async fn wrong_secret_key_is_refused_with_apigw_0301_and_never_retried() {
    let sim = Sim::start().await;
    let client = sim.client_with("WrongSecretKey", |_| {});
    let err = client.list_migration_tasks(&ListQuery::default()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Authentication);
    assert_eq!(err.code(), Some("APIGW.0301"));
    assert_eq!(err.http_status(), Some(401));
    assert_eq!(sim.calls("ListMigrationTask").await, 1, "a refused signature is not retried");
}

#[tokio::test]
async fn an_unknown_access_key_is_refused_without_echoing_the_key() {
    let sim = Sim::start().await;
    let endpoint = Endpoint::parse(&sim.url()).unwrap();
    let unknown = "UNKNOWNACCESSKEY4242";
    let client = DcsClient::new(ClientConfig::new(endpoint, PROJECT, Credentials::new(unknown, SK))).unwrap();
    let err = client.list_migration_tasks(&ListQuery::default()).await.unwrap_err();
    assert_eq!(err.code(), Some("APIGW.0301"));
    let text = format!("{err} {err:?}");
    assert!(text.contains("ak not exist"), "the gateway's reason is kept: {text}");
    assert!(!text.contains(unknown), "the access key is not repeated: {text}");
}

#[tokio::test]
async fn temporary_credentials_sign_the_security_token() {
    let sim = Sim::start().await;
    let endpoint = Endpoint::parse(&sim.url()).unwrap();
    let creds = Credentials::new(AK, SK).with_security_token("TemporaryToken/with+chars==");
    let client = DcsClient::new(ClientConfig::new(endpoint, PROJECT, creds)).unwrap();
    client.list_migration_tasks(&ListQuery::default()).await.unwrap();
}

#[tokio::test]
async fn idempotent_calls_succeed_through_thirty_percent_faults() {
    let sim = Sim::start().await;
    let client = sim.client();
    let id = client.create_migration_task(&import_body("faulty")).await.unwrap().id.unwrap();
    sim.faults(json!({"errorRate": 0.1, "throttleRate": 0.1, "dropRate": 0.1})).await;
    for _ in 0..60 {
        client.show_migration_task(&id).await.expect("show succeeds within its retry budget");
        client.list_migration_tasks(&ListQuery::default()).await.expect("list succeeds within its retry budget");
        client.show_migration_task_stats(&id).await.expect("stats succeed within its retry budget");
    }
    let log = sim.admin(reqwest::Method::GET, "/_sim/log", None).await;
    let failed = log.as_array().unwrap().iter().filter(|c| c["status"].as_u64() != Some(200)).count();
    assert!(failed > 10, "faults were injected ({failed} failed calls) and retried");
}

#[tokio::test]
async fn a_create_that_fails_is_reported_not_retried() {
    let sim = Sim::start().await;
    let client = sim.client();
    sim.faults(json!({"errorRate": 1.0, "operations": ["CreateMigrationTask", "CreateOnlineMigrationTask"]})).await;
    let err = client.create_migration_task(&import_body("no-retry")).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Server);
    assert_eq!(err.code(), Some("DCS.5000"));
    assert!(client.create_online_migration_task(&online_body("no-retry-online")).await.is_err());
    assert_eq!(sim.calls("CreateMigrationTask").await, 1);
    assert_eq!(sim.calls("CreateOnlineMigrationTask").await, 1);

    sim.faults(json!({"lostReplyRate": 1.0, "operations": ["CreateMigrationTask"]})).await;
    let err = client.create_migration_task(&import_body("lost-reply")).await.unwrap_err();
    assert!(matches!(err, DcsError::Network { sent: true, .. }), "{err}");
    assert!(!err.certainly_not_applied());
    assert_eq!(sim.calls("CreateMigrationTask").await, 2, "a lost reply is not retried");
    let tasks = sim.state().await["tasks"].as_array().unwrap().len();
    assert_eq!(tasks, 1, "the lost-reply create took effect once, and only once");
}

#[tokio::test]
async fn the_rate_limit_caps_calls_per_second() {
    let sim = Sim::start().await;
    let client = sim.client_with(SK, |c| c.rate_limit = RateLimit { qps: 20.0, burst: 1 });
    let start = Instant::now();
    let query = ListQuery::default();
    let calls: Vec<_> = (0..30).map(|_| client.list_migration_tasks(&query)).collect();
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(1400), "30 calls at 20 qps took only {elapsed:?}");
}

#[tokio::test]
async fn a_slow_answer_times_out_and_a_read_is_retried() {
    let sim = Sim::start().await;
    let client = sim.client_with(SK, |c| c.timeout = Duration::from_millis(300));
    sim.faults(json!({"latencyMs": 1000, "operations": ["ListMigrationTask"]})).await;
    let start = Instant::now();
    let err = client.list_migration_tasks(&ListQuery::default()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Network, "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(start.elapsed() >= Duration::from_millis(900), "the timed-out read was retried: {:?}", start.elapsed());
}

#[tokio::test]
async fn calls_waiting_for_the_rate_budget_take_no_place_on_the_wire_and_a_slow_endpoint_answers_busy() {
    let sim = Sim::start().await;
    let bound = InFlight { calls: 1, wait: Duration::from_millis(200) };
    let paced = sim.client_with(SK, |c| {
        c.rate_limit = RateLimit { qps: 5.0, burst: 1 };
        c.in_flight = Some(bound);
    });
    // Ten calls at 5 per second: two seconds of waiting for budget, each far longer than the place's 200 ms.
    let start = Instant::now();
    let query = ListQuery::default();
    let all = futures::future::join_all((0..10).map(|_| paced.list_migration_tasks(&query))).await;
    assert!(all.iter().all(Result::is_ok), "{:?}", all.iter().find(|r| r.is_err()));
    assert!(start.elapsed() >= Duration::from_millis(1700), "paced by the rate limit: {:?}", start.elapsed());

    // An endpoint that holds its one place for a second: the next call gives up after 200 ms, unretried.
    let slow = sim.client_with(SK, |c| c.in_flight = Some(bound));
    sim.faults(json!({"latencyMs": 1000, "operations": ["ListMigrationTask"]})).await;
    let (held, refused) = tokio::join!(slow.list_migration_tasks(&query), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let start = Instant::now();
        (slow.list_migration_tasks(&query).await, start.elapsed())
    });
    held.unwrap();
    assert!(matches!(refused.0, Err(DcsError::Busy { in_flight: 1 })), "{:?}", refused.0);
    assert!(refused.1 < Duration::from_millis(600), "not retried: {:?}", refused.1);
}

#[tokio::test]
async fn dcs_cli_prints_tasks_as_json_without_passwords() {
    let sim = Sim::start().await;
    let client = sim.client();
    let id = client.create_migration_task(&import_body("cli-task")).await.unwrap().id.unwrap();

    let url = sim.url();
    let (list, show) =
        tokio::task::spawn_blocking(move || (run_cli(&url, SK, &["list"]), run_cli(&url, SK, &["show", &id])))
            .await
            .unwrap();
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    let listed: Value = serde_json::from_slice(&list.stdout).expect("list prints JSON");
    assert_eq!(listed["migration_tasks"][0]["task_name"], "cli-task");
    assert!(show.status.success());
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(!text.contains("TargetPassw0rd!"), "{text}");
    assert!(text.contains("\"***\""), "the password is shown as ***: {text}");
}

#[tokio::test]
async fn dcs_cli_prints_the_provisioning_job_of_an_online_task() {
    let sim = Sim::start().await;
    let created = sim.client().create_online_migration_task(&online_body("cli-job")).await.unwrap();
    let job_id = created.job_id.unwrap();
    let url = sim.url();
    let out = tokio::task::spawn_blocking(move || run_cli(&url, SK, &["job", &job_id])).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let job: Value = serde_json::from_slice(&out.stdout).expect("job prints JSON");
    assert!(matches!(job["status"].as_str(), Some("RUNNING" | "SUCCESS")), "{job}");
}

#[tokio::test]
async fn dcs_cli_with_a_wrong_key_prints_one_line_naming_apigw_0301_and_fails() {
    let sim = Sim::start().await;
    let url = sim.url();
    let out = tokio::task::spawn_blocking(move || run_cli(&url, "WrongSecretKey", &["list"])).await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("APIGW.0301"), "{stderr}");
    assert!(!stderr.contains("WrongSecretKey"), "{stderr}");
    assert!(out.stdout.is_empty());
    drop(sim);
}

/// Runs `dcs-migration-operator dcs ARGS` against the simulator at `url`.
fn run_cli(url: &str, sk: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_dcs-migration-operator"))
        .arg("dcs")
        .args(args)
        .args(["--region", "cn-north-4", "--endpoint", url])
        .env("HUAWEICLOUD_SDK_AK", AK)
        .env("HUAWEICLOUD_SDK_SK", sk)
        .env("HUAWEICLOUD_SDK_PROJECT_ID", PROJECT)
        .env_remove("HUAWEICLOUD_SDK_SECURITY_TOKEN")
        .output()
        .expect("the CLI runs")
}

#[tokio::test]
async fn the_provisioning_job_runs_while_the_task_is_creating_and_succeeds_with_it() {
    let sim = Sim::start().await;
    let client = sim.client();
    let created = client.create_online_migration_task(&online_body("job-ok")).await.unwrap();
    let (id, job_id) = (created.instance_id.unwrap(), created.job_id.expect("create-online answers job_id"));
    let job = client.show_job_info(&job_id).await.unwrap();
    assert_eq!((job.job_id.as_deref(), job.outcome()), (Some(job_id.as_str()), JobOutcome::Pending));
    assert_eq!(job.status.as_deref(), Some("RUNNING"));
    wait_for(&client, &id, TaskState::Running).await;
    let job = client.show_job_info(&job_id).await.unwrap();
    assert_eq!((job.outcome(), job.fail_reason.as_deref()), (JobOutcome::Succeeded, None));
    assert!(job.begin_time.is_some() && job.end_time.is_some(), "{job:?}");
    assert_eq!(sim.calls("ShowJobInfo").await, 2);
    let unknown = client.show_job_info("0123456789abcdef0123456789abcdef").await.unwrap_err();
    assert!(unknown.is_not_found(), "{unknown}");
}

#[tokio::test]
async fn a_failed_provisioning_job_fails_the_task_and_says_why() {
    let sim = Sim::start().await;
    let client = sim.client();
    sim.faults(json!({"provisionFailRate": 1.0})).await;
    let created = client.create_online_migration_task(&online_body("job-fail")).await.unwrap();
    let (id, job_id) = (created.instance_id.unwrap(), created.job_id.unwrap());
    wait_for(&client, &id, TaskState::Failed).await;
    let job = client.show_job_info(&job_id).await.unwrap();
    assert_eq!(job.outcome(), JobOutcome::Failed);
    let reason = job.fail_reason.expect("a failed job has a fail_reason");
    let errors = client.list_migration_task_logs(&id, &LogsQuery::newest_errors(10)).await.unwrap();
    assert_eq!(errors.migration_logs[0].message.as_deref(), Some(reason.as_str()));
}

#[tokio::test]
async fn a_failure_reason_is_on_list_rows_only_and_first_among_the_error_logs() {
    let sim = Sim::start().await;
    let client = sim.client();
    let id = client.create_online_migration_task(&online_body("fail-reason")).await.unwrap().instance_id.unwrap();
    wait_for(&client, &id, TaskState::Running).await;
    client.set_online_migration_task(&id, &configure_body(MigrationMethod::Incremental)).await.unwrap();
    wait_for(&client, &id, TaskState::IncrementalMigrating).await;
    for reason in ["first: source Redis unreachable", "second: target out of memory"] {
        sim.admin(
            reqwest::Method::PUT,
            &format!("/_sim/tasks/{id}"),
            Some(json!({"status": "FAILED", "errorMessage": reason})),
        )
        .await;
    }

    let shown = client.show_migration_task(&id).await.unwrap();
    assert_eq!((shown.status.state(), shown.error_message), (TaskState::Failed, None), "show has no error_message");
    let query = ListQuery { name: Some("fail-reason".into()), ..ListQuery::default() };
    let row = client.list_migration_tasks(&query).await.unwrap().migration_tasks.remove(0);
    assert_eq!(row.error_message.as_deref(), Some("second: target out of memory"));

    let errors = client.list_migration_task_logs(&id, &LogsQuery::newest_errors(10)).await.unwrap();
    assert_eq!(errors.log_num, Some(2));
    let levels: Vec<_> = errors.migration_logs.iter().map(|l| l.log_level.as_deref()).collect();
    assert_eq!(levels, [Some("ERROR"), Some("ERROR")], "errors only");
    let newest = errors.migration_logs[0].message.as_deref().unwrap();
    assert!(newest.contains("second: target out of memory"), "newest first: {newest}");
    let all = client.list_migration_task_logs(&id, &LogsQuery::default()).await.unwrap();
    assert!(all.log_num > errors.log_num, "the unfiltered log has the INFO lines too");
}
