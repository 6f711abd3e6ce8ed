//! The 15 migration-task operations and ShowJobInfo: request validation, the state changes and the
//! answers, with the real API's quirks (see the module docs of [`crate::simulator`]).

use std::sync::Mutex;

use hyper::StatusCode;
use jiff::Timestamp;
use rand::Rng;
use serde_json::{Value, json};

use super::body::{Fields, is_valid_task_name, parse_object, parse_optional_object};
use super::error::ApiError;
use super::job::Job;
use super::lifecycle::{BackupFile, BackupFiles, Endpoint, Kind, Method, Network, Status, Task, instance_name_for};
use super::routes::{ApiRoute, Operation, is_well_formed_task_id};
use super::store::TaskStore;
use super::switchover::SwitchKind;

/// Batch calls take at most this many ids.
pub const MAX_BATCH: usize = 50;

/// A successful answer: status and JSON body (none for 204).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Option<Vec<u8>>,
}

impl Reply {
    fn ok<T: serde::Serialize + ?Sized>(value: &T) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        Self { status: StatusCode::OK, body: Some(body) }
    }

    fn no_content() -> Self {
        Self { status: StatusCode::NO_CONTENT, body: None }
    }
}

/// A new random task (or job) id: 32 lower-case hex characters.
pub fn new_id() -> String {
    hex::encode(rand::rng().random::<[u8; 16]>())
}

/// Locks a mutex, recovering the data if a previous holder panicked.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs one authenticated API call. `doomed`: the switch-over or provisioning job the call starts
/// will fail (a `switchFailRate` / `provisionFailRate` fault); other calls ignore it.
pub fn handle(
    store: &Mutex<TaskStore>,
    route: &ApiRoute,
    query: &[(String, String)],
    body: &[u8],
    now: Timestamp,
    doomed: bool,
) -> Result<Reply, ApiError> {
    let task_id = match &route.task_id {
        Some(id) if is_well_formed_task_id(id) => id.as_str(),
        Some(_) => return Err(ApiError::invalid_task_id()),
        None => "",
    };
    use Operation::*;
    match route.operation {
        CreateMigrationTask => create_backup_import(store, body, now),
        CreateOnlineMigrationTask => create_online(store, body, now, doomed),
        SetOnlineMigrationTask => configure(store, task_id, body, now),
        ShowMigrationTask => show(store, task_id, now),
        ShowMigrationTaskStats => stats(store, task_id, now),
        ListMigrationTask => list(store, query, now),
        ListMigrationTaskLogs => logs(store, task_id, query, now),
        StopMigrationTask => stop(store, task_id, now),
        StopMigrationTaskSync => sync_stop(store, task_id, now),
        BatchStopMigrationTasks => batch_stop(store, body, now),
        BatchRestartOnlineMigrationTasks => batch_restart(store, body, now),
        UpdateMigrationTask => update(store, task_id, body, now),
        DeleteMigrationTask => delete(store, body, now),
        ExchangeInstanceIp => exchange_ip(store, task_id, body, now, doomed),
        RollbackExchangeInstanceIp => rollback_ip(store, task_id, now, doomed),
        ShowJobInfo => show_job(store, task_id, now),
    }
}

fn valid_task_name<'a>(f: &Fields<'a>, key: &str) -> Result<&'a str, ApiError> {
    let name = f.required_str(key)?;
    if is_valid_task_name(name) { Ok(name) } else { Err(ApiError::invalid_parameter(key)) }
}

/// `ip:port[,ip:port…]` with numeric ports.
fn valid_addrs(addrs: &str) -> bool {
    !addrs.is_empty()
        && addrs.split(',').all(|a| {
            a.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
        })
}

fn create_backup_import(store: &Mutex<TaskStore>, body: &[u8], now: Timestamp) -> Result<Reply, ApiError> {
    let map = parse_object(body)?;
    let f = Fields::new(&map);
    let name = valid_task_name(&f, "task_name")?;
    let description = f.optional_str("description")?;
    let migration_type = f.required_enum("migration_type", &["backupfile_import", "online_migration"])?;
    if migration_type != "backupfile_import" {
        // "Online migration through this API is no longer supported; use CreateOnlineMigrationTask."
        return Err(ApiError::invalid_parameter("migration_type"));
    }
    let method = f.required_enum("migration_method", &["full_amount_migration", "incremental_migration"])?;
    if method != "full_amount_migration" {
        return Err(ApiError::invalid_parameter("migration_method"));
    }
    f.optional_enum("network_type", &["vpc", "vpn"])?;
    let bf = f.required_object("backup_files")?;
    let file_source =
        bf.optional_enum("file_source", &["self_build_obs", "backup_record"])?.unwrap_or("self_build_obs");
    let mut files = Vec::new();
    let backup_files = if file_source == "self_build_obs" {
        let bucket = bf.required_str("bucket_name")?;
        let items = bf.required_objects("files")?;
        if items.is_empty() {
            return Err(ApiError::invalid_parameter("backup_files.files"));
        }
        for item in &items {
            files.push(BackupFile {
                file_name: item.required_str("file_name")?.to_owned(),
                size: file_size(item)?,
                update_at: item.optional_str("update_at")?.map(str::to_owned),
            });
        }
        BackupFiles {
            file_source: file_source.to_owned(),
            bucket_name: Some(bucket.to_owned()),
            files,
            backup_id: bf.optional_str("backup_id")?.map(str::to_owned),
        }
    } else {
        let backup_id = bf.required_str("backup_id")?;
        BackupFiles {
            file_source: file_source.to_owned(),
            bucket_name: bf.optional_str("bucket_name")?.map(str::to_owned),
            files,
            backup_id: Some(backup_id.to_owned()),
        }
    };
    let t = f.required_object("target_instance")?;
    let target = Endpoint {
        id: Some(t.required_str("id")?.to_owned()),
        name: t.optional_str("name")?.filter(|n| !n.is_empty()).map(str::to_owned),
        addrs: None,
        password: t.optional_str("password")?.map(str::to_owned),
    };
    let target_name = target.name.clone().unwrap_or_else(|| instance_name_for(target.id.as_deref().unwrap_or("")));
    let id = new_id();
    let task =
        Task::backup_import(id.clone(), name.to_owned(), description.map(str::to_owned), backup_files, target, now);
    lock(store).insert(task);
    // Quirk: `name` is the target instance's name, not the task's.
    Ok(Reply::ok(&json!({"id": id, "name": target_name, "status": "MIGRATING", "error": ""})))
}

fn file_size(item: &Fields<'_>) -> Result<Option<String>, ApiError> {
    match item.optional_str("size") {
        Ok(s) => Ok(s.map(str::to_owned)),
        Err(_) => item.optional_int_or_string("size").map(|n| n.map(|n| n.to_string())),
    }
}

fn create_online(store: &Mutex<TaskStore>, body: &[u8], now: Timestamp, doomed: bool) -> Result<Reply, ApiError> {
    let map = parse_object(body)?;
    let f = Fields::new(&map);
    let name = valid_task_name(&f, "name")?;
    let description = f.optional_str("description")?;
    let network = Network {
        vpc_id: f.required_str("vpc_id")?.to_owned(),
        subnet_id: f.required_str("subnet_id")?.to_owned(),
        security_group_id: f.required_str("security_group_id")?.to_owned(),
    };
    let (id, job_id) = (new_id(), new_id());
    let job = Job::new(job_id.clone(), now, doomed);
    let task = Task::online(id.clone(), name.to_owned(), description.map(str::to_owned), network, job, now);
    lock(store).insert(task);
    // Quirk: only the task id (as `instance_id`) and an undocumented job id.
    Ok(Reply::ok(&json!({"instance_id": id, "job_id": job_id})))
}

fn show_job(store: &Mutex<TaskStore>, job_id: &str, now: Timestamp) -> Result<Reply, ApiError> {
    let mut store = lock(store);
    let job = store.job(job_id, now).ok_or_else(ApiError::task_not_found)?;
    Ok(Reply::ok(&job))
}

fn config_endpoint(f: &Fields<'_>, key: &str) -> Result<Endpoint, ApiError> {
    let o = f.required_object(key)?;
    let id = o.optional_str("id")?.filter(|s| !s.is_empty());
    let addrs = o.optional_str("addrs")?.filter(|s| !s.is_empty());
    if let Some(a) = addrs
        && !valid_addrs(a)
    {
        return Err(ApiError::invalid_parameter(&format!("{key}.addrs")));
    }
    if id.is_none() && addrs.is_none() {
        return Err(ApiError::missing_parameter(&format!("{key}.id")));
    }
    Ok(Endpoint {
        id: id.map(str::to_owned),
        name: None,
        addrs: addrs.map(str::to_owned),
        password: o.optional_str("password")?.map(str::to_owned),
    })
}

fn configure(store: &Mutex<TaskStore>, id: &str, body: &[u8], now: Timestamp) -> Result<Reply, ApiError> {
    let map = parse_object(body)?;
    let f = Fields::new(&map);
    let method = f.required_enum("migration_method", &["full_amount_migration", "incremental_migration"])?;
    let resume_mode = f.required_enum("resume_mode", &["auto", "manual"])?;
    let bandwidth = match f.optional_int_or_string("bandwidth_limit_mb")? {
        Some(mb) if (1..=10_240).contains(&mb) => Some(mb.to_string()),
        Some(_) => return Err(ApiError::invalid_parameter("bandwidth_limit_mb")),
        None => None,
    };
    let source = config_endpoint(&f, "source_instance")?;
    let target = config_endpoint(&f, "target_instance")?;
    let mut store = lock(store);
    let task = store.get_mut(id, now).ok_or_else(ApiError::task_not_found)?;
    if task.kind != Kind::Online || task.status != Status::Running {
        return Err(ApiError::wrong_state());
    }
    task.method = Method::from_word(method);
    task.resume_mode = Some(resume_mode.to_owned());
    task.bandwidth_limit_mb = bandwidth;
    task.source = Some(source);
    task.target = Some(target);
    task.enter(Status::FullMigrating, now);
    task.log(now, "INFO", "MIGRATION_TASK_CONFIGURED", "The migration task has been configured.");
    task.log(now, "INFO", "MIGRATION_FULL_STARTED", "Full synchronization started.");
    Ok(Reply::ok(&json!({"id": task.id, "name": task.name, "status": "FULLMIGRATING", "error": ""})))
}

fn show(store: &Mutex<TaskStore>, id: &str, now: Timestamp) -> Result<Reply, ApiError> {
    let mut store = lock(store);
    if let Some(task) = store.get_mut(id, now) {
        return Ok(Reply::ok(&task.show_view()));
    }
    // Quirk: a deleted task keeps answering its last status.
    match store.tombstone(id) {
        Some(task) => Ok(Reply::ok(&task.show_view())),
        None => Err(ApiError::task_not_found()),
    }
}

fn stats(store: &Mutex<TaskStore>, id: &str, now: Timestamp) -> Result<Reply, ApiError> {
    let mut store = lock(store);
    let timing = *store.timing();
    let task = store.get_mut(id, now).ok_or_else(ApiError::task_not_found)?;
    Ok(Reply::ok(&task.stats_view(now, &timing)))
}

fn query_value<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// `offset` (≥ 0, default 0) and `limit` (1–1000, default 10).
fn paging(query: &[(String, String)]) -> Result<(usize, usize), ApiError> {
    let offset = match query_value(query, "offset") {
        None => 0,
        Some(v) => v.parse::<usize>().map_err(|_| ApiError::invalid_parameter("offset"))?,
    };
    let limit = match query_value(query, "limit") {
        None => 10,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => return Err(ApiError::invalid_parameter("limit")),
        },
    };
    Ok((offset, limit))
}

fn list(store: &Mutex<TaskStore>, query: &[(String, String)], now: Timestamp) -> Result<Reply, ApiError> {
    let (offset, limit) = paging(query)?;
    let name = query_value(query, "name").filter(|n| !n.is_empty());
    let mut store = lock(store);
    // Substring match: clients must match exact names themselves.
    let matching = store.newest_first(now, |t| name.is_none_or(|n| t.name.contains(n)));
    let page: Vec<_> = matching.iter().skip(offset).take(limit).map(|t| t.list_view()).collect();
    Ok(Reply::ok(&json!({"count": matching.len(), "migration_tasks": page})))
}

fn logs(store: &Mutex<TaskStore>, id: &str, query: &[(String, String)], now: Timestamp) -> Result<Reply, ApiError> {
    let (offset, limit) = paging(query)?;
    let level = match query_value(query, "log_level").filter(|l| !l.is_empty()) {
        None => None,
        Some(l @ ("INFO" | "ERROR" | "WARN" | "DEBUG")) => Some(l),
        Some(_) => return Err(ApiError::invalid_parameter("log_level")),
    };
    let mut store = lock(store);
    let task = store.get_mut(id, now).ok_or_else(ApiError::task_not_found)?;
    let matching: Vec<_> = task.logs.iter().rev().filter(|l| level.is_none_or(|lv| l.log_level == lv)).collect();
    let page: Vec<_> = matching.iter().skip(offset).take(limit).collect();
    Ok(Reply::ok(&json!({"log_num": matching.len(), "migration_logs": page})))
}

fn stoppable(status: &Status) -> bool {
    matches!(
        status,
        Status::Creating | Status::Running | Status::Migrating | Status::FullMigrating | Status::IncrMigrating
    )
}

/// Moves a stoppable task to `TERMINATING`.
fn begin_stop(task: &mut Task, now: Timestamp, timing: &super::lifecycle::Timing) -> Result<(), ApiError> {
    if !stoppable(&task.status) {
        return Err(ApiError::wrong_state());
    }
    task.freeze_progress(now, timing);
    task.enter(Status::Terminating, now);
    task.log(now, "INFO", "MIGRATION_TERMINATING", "Stopping the migration task.");
    Ok(())
}

fn stop(store: &Mutex<TaskStore>, id: &str, now: Timestamp) -> Result<Reply, ApiError> {
    let mut store = lock(store);
    let timing = *store.timing();
    let task = store.get_mut(id, now).ok_or_else(ApiError::task_not_found)?;
    begin_stop(task, now, &timing)?;
    Ok(Reply::ok(&task.show_view()))
}

fn sync_stop(store: &Mutex<TaskStore>, id: &str, now: Timestamp) -> Result<Reply, ApiError> {
    let mut store = lock(store);
    let timing = *store.timing();
    let task = store.get_mut(id, now).ok_or_else(ApiError::task_not_found)?;
    begin_stop(task, now, &timing)?;
    task.enter(Status::Terminated, now);
    task.log(now, "INFO", "MIGRATION_TERMINATED", "The migration task has been stopped.");
    Ok(Reply::no_content())
}

/// The ids of a batch call: at most 50, each well-formed (`DCS.4800`, `DCS.4855`).
fn batch_ids<'a>(f: &Fields<'a>, key: &str) -> Result<Vec<&'a str>, ApiError> {
    let ids = f.required_strings(key)?;
    if ids.is_empty() || ids.len() > MAX_BATCH {
        return Err(ApiError::invalid_batch_size(key));
    }
    if !ids.iter().all(|id| is_well_formed_task_id(id)) {
        return Err(ApiError::invalid_batch_task_id());
    }
    Ok(ids)
}

fn item_result(id: &str, outcome: Result<(), ApiError>) -> Value {
    match outcome {
        Ok(()) => json!({"result": "success", "task_id": id}),
        Err(e) => {
            json!({"result": "failed", "task_id": id, "error_code": e.code, "error_msg": e.message})
        }
    }
}

fn batch_stop(store: &Mutex<TaskStore>, body: &[u8], now: Timestamp) -> Result<Reply, ApiError> {
    let map = parse_object(body)?;
    let ids = batch_ids(&Fields::new(&map), "migration_tasks")?;
    let mut store = lock(store);
    let timing = *store.timing();
    let results: Vec<Value> = ids
        .iter()
        .map(|id| {
            let outcome = match store.get_mut(id, now) {
                Some(task) => begin_stop(task, now, &timing),
                None => Err(ApiError::task_not_found()),
            };
            item_result(id, outcome)
        })
        .collect();
    Ok(Reply::ok(&json!({"migration_tasks": results})))
}

fn batch_restart(store: &Mutex<TaskStore>, body: &[u8], now: Timestamp) -> Result<Reply, ApiError> {
    let map = parse_object(body)?;
    let ids = batch_ids(&Fields::new(&map), "migration_tasks")?;
    let mut store = lock(store);
    let results: Vec<Value> = ids
        .iter()
        .map(|id| {
            let outcome = match store.get_mut(id, now) {
                None => Err(ApiError::task_not_found()),
                Some(task) => {
                    let restartable = task.kind == Kind::Online
                        && task.method.is_some()
                        && matches!(task.status, Status::Terminated | Status::Failed);
                    if restartable {
                        task.error_message = None;
                        task.frozen_progress = None;
                        task.enter(Status::FullMigrating, now);
                        task.log(now, "INFO", "MIGRATION_RESTARTED", "The migration task has been restarted.");
                        Ok(())
                    } else {
                        Err(ApiError::wrong_state())
                    }
                }
            };
            item_result(id, outcome)
        })
        .collect();
    Ok(Reply::ok(&json!({"migration_tasks": results})))
}

fn update(store: &Mutex<TaskStore>, id: &str, body: &[u8], now: Timestamp) -> Result<Reply, ApiError> {
    let map = parse_object(body)?;
    let resume_mode = Fields::new(&map).optional_enum("resume_mode", &["auto", "manual"])?;
    let mut store = lock(store);
    let task = store.get_mut(id, now).ok_or_else(ApiError::task_not_found)?;
    if task.kind != Kind::Online || matches!(task.status, Status::Released | Status::Other(_)) {
        return Err(ApiError::wrong_state());
    }
    if let Some(mode) = resume_mode {
        task.resume_mode = Some(mode.to_owned());
        task.updated_at = now;
        task.log(now, "INFO", "MIGRATION_TASK_UPDATED", "The reconnection mode has been updated.");
    }
    Ok(Reply::ok(&json!({})))
}

fn deletable(status: &Status) -> bool {
    status.has_ended() || matches!(status, Status::Running | Status::Other(_))
}

fn delete(store: &Mutex<TaskStore>, body: &[u8], now: Timestamp) -> Result<Reply, ApiError> {
    let map = parse_object(body)?;
    let ids = batch_ids(&Fields::new(&map), "task_id_list")?;
    let mut store = lock(store);
    let mut found = Vec::new();
    for id in &ids {
        if let Some(task) = store.get_mut(id, now) {
            if !deletable(&task.status) {
                return Err(ApiError::wrong_state());
            }
            if !found.contains(id) {
                found.push(*id);
            }
        }
    }
    if found.is_empty() {
        return Err(ApiError::task_not_found());
    }
    for id in &found {
        store.remove(id, true);
    }
    Ok(Reply::ok(&json!({"task_id_list": found})))
}

fn exchange_ip(
    store: &Mutex<TaskStore>,
    id: &str,
    body: &[u8],
    now: Timestamp,
    doomed: bool,
) -> Result<Reply, ApiError> {
    let map = parse_optional_object(body)?;
    let f = Fields::new(&map);
    let ips: Vec<String> = if map.get("exchanged_ip").is_none_or(Value::is_null) {
        Vec::new()
    } else {
        f.required_strings("exchanged_ip")?.into_iter().map(str::to_owned).collect()
    };
    let domain = f.optional_bool("is_exchange_domain")?.unwrap_or(false);
    let mut store = lock(store);
    let timing = *store.timing();
    let task = store.get_mut(id, now).ok_or_else(ApiError::task_not_found)?;
    let ready = matches!(task.status, Status::IncrMigrating | Status::Success);
    if task.kind != Kind::Online || !ready || task.switchover.is_running() {
        return Err(ApiError::wrong_state());
    }
    let s = &mut task.switchover;
    s.exchanged_ips = ips;
    s.exchange_domain = domain;
    s.begin(SwitchKind::Exchange, now.checked_add(timing.phase).unwrap_or(Timestamp::MAX), doomed);
    task.log(now, "INFO", "MIGRATION_IP_SWITCH_STARTED", "Exchanging the source and target IP addresses.");
    Ok(Reply::no_content())
}

fn rollback_ip(store: &Mutex<TaskStore>, id: &str, now: Timestamp, doomed: bool) -> Result<Reply, ApiError> {
    let mut store = lock(store);
    let timing = *store.timing();
    let task = store.get_mut(id, now).ok_or_else(ApiError::task_not_found)?;
    if !task.switchover.exchanged || task.switchover.is_running() {
        return Err(ApiError::wrong_state());
    }
    task.switchover.begin(SwitchKind::Rollback, now.checked_add(timing.phase).unwrap_or(Timestamp::MAX), doomed);
    task.log(now, "INFO", "MIGRATION_IP_ROLLBACK_STARTED", "Rolling back the IP address exchange.");
    Ok(Reply::no_content())
}
