//! The task state machine (`dcs-api.md` §4). A task's status is computed lazily from
//! `(status, entered_at)` whenever the task is read: no timers run, so idle tasks cost nothing.
//!
//! - backup import: `MIGRATING` → `SUCCESS`
//! - online: `CREATING` (its provisioning job runs, see [`super::job`]) → `RUNNING` (awaits
//!   configuration) → configure → `FULLMIGRATING` → `SUCCESS` (full) or `INCRMIGEATING`
//!   (incremental; stays until stopped); a doomed provisioning job ends `CREATING` in `FAILED`
//! - stop: `TERMINATING` → `TERMINATED`; sync-stop: `TERMINATED` at once
//! - restart (online, from `TERMINATED`/`FAILED`): `FULLMIGRATING` → …
//! - release (online, when configured): an ended task becomes `RELEASED` with `released_at`
//!
//! Each transitional state lasts one phase, and so does an IP switch-over (see [`super::switchover`]).

use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use super::job::{FAIL_REASON, Job};
use super::switchover::Switchover;
use super::wire_time::{list_time, release_time};

/// How long the transitional states last, and what a switch-over does.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Duration of each transitional state (`CREATING`, `MIGRATING`, `FULLMIGRATING`,
    /// `TERMINATING`, `EXCHANGING`).
    pub phase: Duration,
    /// Time after which an ended online task becomes `RELEASED`; `None`: never.
    pub release_after: Option<Duration>,
    /// Whether source and target report each other's IP after an exchange.
    pub swap_ips: bool,
}

/// The task's `status` word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Migrating,
    Creating,
    Running,
    FullMigrating,
    IncrMigrating,
    Success,
    Failed,
    Terminating,
    Terminated,
    Released,
    /// Any other word, set through the admin API; it never changes on its own.
    Other(String),
}

impl Status {
    /// The wire word (note the real API's typo `INCRMIGEATING`).
    pub fn as_str(&self) -> &str {
        match self {
            Status::Migrating => "MIGRATING",
            Status::Creating => "CREATING",
            Status::Running => "RUNNING",
            Status::FullMigrating => "FULLMIGRATING",
            Status::IncrMigrating => "INCRMIGEATING",
            Status::Success => "SUCCESS",
            Status::Failed => "FAILED",
            Status::Terminating => "TERMINATING",
            Status::Terminated => "TERMINATED",
            Status::Released => "RELEASED",
            Status::Other(word) => word,
        }
    }

    /// Parses a wire word; unknown words become [`Status::Other`].
    pub fn from_word(word: &str) -> Self {
        match word {
            "MIGRATING" => Status::Migrating,
            "CREATING" => Status::Creating,
            "RUNNING" => Status::Running,
            "FULLMIGRATING" => Status::FullMigrating,
            "INCRMIGEATING" => Status::IncrMigrating,
            "SUCCESS" => Status::Success,
            "FAILED" => Status::Failed,
            "TERMINATING" => Status::Terminating,
            "TERMINATED" => Status::Terminated,
            "RELEASED" => Status::Released,
            other => Status::Other(other.to_owned()),
        }
    }

    /// True for states from which a task does not move on its own (except release).
    pub fn has_ended(&self) -> bool {
        matches!(self, Status::Success | Status::Failed | Status::Terminated | Status::Released)
    }

    fn is_migrating(&self) -> bool {
        matches!(self, Status::Migrating | Status::FullMigrating | Status::IncrMigrating)
    }
}

/// Backup import or online migration (`migration_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BackupImport,
    Online,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::BackupImport => "backupfile_import",
            Kind::Online => "online_migration",
        }
    }
}

/// Full or full + incremental (`migration_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Full,
    Incremental,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Full => "full_amount_migration",
            Method::Incremental => "incremental_migration",
        }
    }

    pub fn from_word(word: &str) -> Option<Self> {
        match word {
            "full_amount_migration" => Some(Method::Full),
            "incremental_migration" => Some(Method::Incremental),
            _ => None,
        }
    }
}

/// One file of a backup import (`Files`).
#[derive(Debug, Clone, Serialize)]
pub struct BackupFile {
    pub file_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_at: Option<String>,
}

/// `BackupFilesBody` as given at creation.
#[derive(Debug, Clone, Serialize)]
pub struct BackupFiles {
    pub file_source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_name: Option<String>,
    pub files: Vec<BackupFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
}

/// A source or target Redis: a DCS instance (`id`) or self-hosted addresses (`addrs`).
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    pub id: Option<String>,
    pub name: Option<String>,
    pub addrs: Option<String>,
    pub password: Option<String>,
}

impl Endpoint {
    /// The instance's IP: the first address's host, or one derived from the instance id.
    fn ip(&self) -> String {
        if let Some(addrs) = &self.addrs
            && let Some((host, _)) = addrs.split(',').next().and_then(|a| a.rsplit_once(':'))
        {
            return host.to_owned();
        }
        let h = fnv(self.id.as_deref().unwrap_or(""));
        format!("192.168.{}.{}", (h >> 8) % 250 + 1, h % 250 + 2)
    }

    fn port(&self) -> String {
        self.addrs
            .as_deref()
            .and_then(|a| a.split(',').next())
            .and_then(|a| a.rsplit_once(':'))
            .map(|(_, p)| p.to_owned())
            .unwrap_or_else(|| "6379".to_owned())
    }

    fn display_name(&self) -> Option<String> {
        self.name.clone().or_else(|| self.id.as_ref().map(|id| instance_name_for(id)))
    }

    fn addrs_or_derived(&self) -> String {
        self.addrs.clone().unwrap_or_else(|| format!("{}:{}", self.ip(), self.port()))
    }

    /// The `SourceInstanceBody`/`TargetInstanceBody` view, password echoed in clear as the real API
    /// does; `task_status` is the instance's (`RUNNING`, or `EXCHANGING` during a switch-over).
    fn view(&self, task_status: &'static str, exchanged_ip: Option<String>) -> InstanceView {
        InstanceView {
            addrs: Some(self.addrs_or_derived()),
            password: self.password.clone(),
            task_status,
            id: self.id.clone(),
            ip: exchanged_ip.unwrap_or_else(|| self.ip()),
            port: self.port(),
            name: self.display_name(),
            proxy_multi_db: false,
            db: "0",
        }
    }
}

/// The migration ECS's network (online tasks).
#[derive(Debug, Clone)]
pub struct Network {
    pub vpc_id: String,
    pub subnet_id: String,
    pub security_group_id: String,
}

/// One entry of a task's log.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    pub created_at: String,
    pub log_level: &'static str,
    pub message: String,
    pub log_code: &'static str,
    pub keyword: Vec<String>,
}

const MAX_LOGS_PER_TASK: usize = 100;

/// One migration task.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub kind: Kind,
    pub method: Option<Method>,
    pub status: Status,
    /// When the current status began (the basis of the lazy transitions).
    pub entered_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub released_at: Option<Timestamp>,
    pub error_message: Option<String>,
    pub backup_files: Option<BackupFiles>,
    pub network: Option<Network>,
    pub source: Option<Endpoint>,
    pub target: Option<Endpoint>,
    pub resume_mode: Option<String>,
    pub bandwidth_limit_mb: Option<String>,
    pub ecs_private_ip: Option<String>,
    pub switchover: Switchover,
    /// The provisioning job of an online task.
    pub job: Option<Job>,
    /// Full-sync progress (percent) frozen when the task stopped or failed mid-way.
    pub frozen_progress: Option<u32>,
    /// Number of keys in the source (grows slowly during incremental sync).
    pub source_keys: u64,
    pub logs: Vec<LogEntry>,
}

/// The name the simulator gives a DCS instance known only by id: `dcs-` and its first 4 characters.
pub fn instance_name_for(id: &str) -> String {
    format!("dcs-{}", id.chars().take(4).collect::<String>())
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
}

fn after(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

fn elapsed_secs(from: Timestamp, now: Timestamp) -> f64 {
    now.duration_since(from).as_secs_f64().max(0.0)
}

/// `2019/10/22 14:44:30` — the detail API's time format.
pub fn detail_time(t: Timestamp) -> String {
    t.strftime("%Y/%m/%d %H:%M:%S").to_string()
}

impl Task {
    /// A new backup-import task in `MIGRATING`.
    pub fn backup_import(
        id: String,
        name: String,
        description: Option<String>,
        backup_files: BackupFiles,
        target: Endpoint,
        now: Timestamp,
    ) -> Self {
        let mut task = Self::blank(id, name, description, Kind::BackupImport, Status::Migrating, now);
        task.method = Some(Method::Full);
        task.backup_files = Some(backup_files);
        task.target = Some(target);
        task.log(now, "INFO", "MIGRATION_TASK_CREATED", "The backup import task has been created.");
        task.log(now, "INFO", "MIGRATION_IMPORT_STARTED", "Started importing backup files.");
        task
    }

    /// A new online task in `CREATING` (its migration ECS is being provisioned by `job`).
    pub fn online(
        id: String,
        name: String,
        description: Option<String>,
        network: Network,
        job: Job,
        now: Timestamp,
    ) -> Self {
        let mut task = Self::blank(id, name, description, Kind::Online, Status::Creating, now);
        task.network = Some(network);
        task.job = Some(job);
        task.log(now, "INFO", "MIGRATION_TASK_CREATED", "The online migration task has been created.");
        task.log(now, "INFO", "MIGRATION_ECS_CREATING", "Creating the migration ECS.");
        task
    }

    fn blank(
        id: String,
        name: String,
        description: Option<String>,
        kind: Kind,
        status: Status,
        now: Timestamp,
    ) -> Self {
        let source_keys = 1_000 + fnv(&id) % 200_000;
        Self {
            id,
            name,
            description,
            kind,
            method: None,
            status,
            entered_at: now,
            created_at: now,
            updated_at: now,
            released_at: None,
            error_message: None,
            backup_files: None,
            network: None,
            source: None,
            target: None,
            resume_mode: None,
            bandwidth_limit_mb: None,
            ecs_private_ip: None,
            switchover: Switchover::default(),
            job: None,
            frozen_progress: None,
            source_keys,
            logs: Vec::new(),
        }
    }

    /// Appends a log entry (the oldest are dropped beyond a bound).
    pub fn log(&mut self, at: Timestamp, level: &'static str, code: &'static str, message: &str) {
        if self.logs.len() >= MAX_LOGS_PER_TASK {
            self.logs.remove(0);
        }
        self.logs.push(LogEntry {
            created_at: list_time(at),
            log_level: level,
            message: message.to_owned(),
            log_code: code,
            keyword: vec![self.name.clone()],
        });
    }

    /// Moves to `status` at time `at`.
    pub fn enter(&mut self, status: Status, at: Timestamp) {
        self.status = status;
        self.entered_at = at;
        self.updated_at = at;
    }

    /// Applies every transition due by `now`, each at the time it was due.
    pub fn advance(&mut self, now: Timestamp, timing: &Timing) {
        if let Some((at, (level, code, message))) = self.switchover.finish_due(now) {
            self.log(at, level, code, message);
        }
        loop {
            let due = after(self.entered_at, timing.phase);
            match self.status {
                Status::Creating if due <= now => self.end_provisioning(due),
                Status::Migrating if due <= now => {
                    self.enter(Status::Success, due);
                    self.log(due, "INFO", "MIGRATION_SUCCESS", "The backup files have been imported.");
                }
                Status::FullMigrating if due <= now => match self.method {
                    Some(Method::Incremental) => {
                        self.enter(Status::IncrMigrating, due);
                        self.log(due, "INFO", "MIGRATION_FULL_DONE", "Full synchronization finished.");
                        self.log(due, "INFO", "MIGRATION_INCR_STARTED", "Incremental synchronization started.");
                    }
                    _ => {
                        self.enter(Status::Success, due);
                        self.log(due, "INFO", "MIGRATION_SUCCESS", "Full migration finished.");
                    }
                },
                Status::Terminating if due <= now => {
                    self.enter(Status::Terminated, due);
                    self.log(due, "INFO", "MIGRATION_TERMINATED", "The migration task has been stopped.");
                }
                Status::Success | Status::Terminated | Status::Failed
                    if self.kind == Kind::Online && self.ecs_private_ip.is_some() =>
                {
                    let Some(release_after) = timing.release_after else {
                        break;
                    };
                    let due = after(self.entered_at, release_after);
                    if due > now {
                        break;
                    }
                    self.enter(Status::Released, due);
                    self.released_at = Some(due);
                    self.log(due, "INFO", "MIGRATION_ECS_RELEASED", "The migration ECS has been released.");
                }
                _ => break,
            }
        }
    }

    /// The provisioning job ends: the task awaits configuration, or fails with the job's reason.
    fn end_provisioning(&mut self, due: Timestamp) {
        let fails = self.job.as_ref().is_some_and(|j| j.fails);
        if let Some(job) = &mut self.job {
            job.end = Some(due);
        }
        if fails {
            self.error_message = Some(FAIL_REASON.to_owned());
            self.enter(Status::Failed, due);
            self.log(due, "ERROR", "MIGRATION_ECS_CREATE_FAILED", FAIL_REASON);
        } else {
            self.ecs_private_ip = Some(self.derived_ecs_ip());
            self.enter(Status::Running, due);
            self.log(due, "INFO", "MIGRATION_ECS_CREATED", "The migration ECS is ready; configure the task.");
        }
    }

    fn derived_ecs_ip(&self) -> String {
        let h = fnv(&self.id);
        format!("10.{}.{}.{}", (h >> 16) % 250 + 1, (h >> 8) % 250, h % 250 + 2)
    }

    /// Full-sync progress in percent at `now`.
    pub fn progress(&self, now: Timestamp, timing: &Timing) -> u32 {
        match &self.status {
            Status::Migrating | Status::FullMigrating => {
                let phase = timing.phase.as_secs_f64();
                if phase <= 0.0 {
                    return 99;
                }
                ((elapsed_secs(self.entered_at, now) / phase * 100.0) as u32).min(99)
            }
            Status::Success | Status::IncrMigrating => 100,
            Status::Released => self.frozen_progress.unwrap_or(100),
            Status::Creating | Status::Running => 0,
            _ => self.frozen_progress.unwrap_or(0),
        }
    }

    /// Freezes the current progress (when a task stops or fails).
    pub fn freeze_progress(&mut self, now: Timestamp, timing: &Timing) {
        self.frozen_progress = Some(self.progress(now, timing));
    }

    /// After an IP exchange each instance carries the other's IP (until a rollback), when the
    /// simulator swaps IPs.
    fn exchanged_ip(&self, other: &Option<Endpoint>) -> Option<String> {
        self.switchover.ips_swapped().then(|| other.as_ref().map(Endpoint::ip)).flatten()
    }

    /// The detail view (ShowMigrationTask, StopMigrationTask), passwords included.
    pub fn show_view(&self) -> ShowView<'_> {
        let network = self.network.as_ref();
        let instance_status = self.switchover.instance_status();
        ShowView {
            task_id: &self.id,
            task_name: &self.name,
            description: self.description.as_deref(),
            status: self.status.as_str(),
            migration_type: self.kind.as_str(),
            migration_method: self.method.map(Method::as_str),
            ecs_tenant_private_ip: self.ecs_private_ip.as_deref(),
            backup_files: self.backup_files.as_ref(),
            network_type: network.map(|_| "vpc"),
            source_instance: self.source.as_ref().map(|e| e.view(instance_status, self.exchanged_ip(&self.target))),
            target_instance: self.target.as_ref().map(|e| e.view(instance_status, self.exchanged_ip(&self.source))),
            created_at: detail_time(self.created_at),
            updated_at: detail_time(self.updated_at),
            released_at: self.released_at.map(release_time),
            version: "v2",
            resume_mode: self.resume_mode.as_deref(),
            supported_features: SUPPORTED_FEATURES,
            tenant_vpc_id: network.map(|n| n.vpc_id.as_str()),
            tenant_subnet_id: network.map(|n| n.subnet_id.as_str()),
            tenant_security_group_id: network.map(|n| n.security_group_id.as_str()),
            bandwidth_limit_mb: self.bandwidth_limit_mb.as_deref(),
            task_status: self.switchover.task_status(),
        }
    }

    /// The list view (`MigrationTaskList`): no passwords, no `updated_at`.
    pub fn list_view(&self) -> ListView<'_> {
        let source = self.source.as_ref();
        let target = self.target.as_ref();
        let data_source = match self.kind {
            Kind::BackupImport => {
                self.backup_files.as_ref().and_then(|b| b.bucket_name.clone().or(b.backup_id.clone()))
            }
            Kind::Online => source.map(Endpoint::addrs_or_derived),
        };
        let subnet = self.network.as_ref().map(|n| n.subnet_id.as_str());
        ListView {
            task_id: &self.id,
            task_name: &self.name,
            status: self.status.as_str(),
            migration_type: self.kind.as_str(),
            migration_method: self.method.map(Method::as_str),
            ecs_tenant_private_ip: self.ecs_private_ip.as_deref(),
            data_source,
            source_instance_name: source.and_then(Endpoint::display_name),
            source_instance_id: source.and_then(|s| s.id.as_deref()),
            target_instance_addrs: target.map(Endpoint::addrs_or_derived),
            target_instance_name: target.and_then(Endpoint::display_name),
            target_instance_id: target.and_then(|t| t.id.as_deref()),
            created_at: list_time(self.created_at),
            description: self.description.as_deref(),
            source_instance_status: source.and_then(|s| s.id.as_ref()).map(|_| "RUNNING"),
            target_instance_status: target.and_then(|t| t.id.as_ref()).map(|_| "RUNNING"),
            source_instance_subnet_id: source.and(subnet),
            target_instance_subnet_id: target.and(subnet),
            source_instance_spec_code: source.and_then(|s| s.id.as_ref()).map(|_| "redis.ha.xu1.large.r2.2"),
            target_instance_spec_code: target.and_then(|t| t.id.as_ref()).map(|_| "redis.ha.xu1.large.r2.2"),
            error_message: self.error_message.as_deref(),
            released_at: self.released_at.map(release_time),
            version: "v2",
            resume_mode: self.resume_mode.as_deref(),
            supported_features: SUPPORTED_FEATURES,
        }
    }

    /// The stats view (ShowMigrationTaskStats). Counters are strings as in the SDK schema, except
    /// `target_ops` and `target_input_kbps`, which come as numbers (as in the OTC example); for a
    /// backup import every counter is a number.
    pub fn stats_view(&self, now: Timestamp, timing: &Timing) -> serde_json::Value {
        let progress = self.progress(now, timing);
        let migrating = self.status.is_migrating();
        let since = elapsed_secs(self.entered_at, now);
        let incremental = self.status == Status::IncrMigrating;
        let source = self.source_keys + if incremental { (since * 3.0) as u64 } else { 0 };
        let target = if incremental {
            source.saturating_sub((since as u64 * 7) % 5)
        } else {
            source * u64::from(progress) / 100
        };
        let offset = if incremental { (now.as_millisecond() as u64 / 37) % 500 } else { 0 };
        let wobble = (now.as_millisecond() as u64 / 100) % 97;
        let seed = fnv(&self.id) % 1000;
        let (ops, kbps) = match &self.status {
            Status::Migrating | Status::FullMigrating => {
                (5_000 + seed * 7 + wobble * 13, 20_000 + seed * 11 + wobble * 50)
            }
            Status::IncrMigrating => (100 + seed / 5 + wobble, 40 + wobble),
            _ => (0, 0),
        };
        if self.kind == Kind::BackupImport {
            serde_json::json!({
                "full_migration_progress": progress,
                "offset": offset,
                "source_dbsize": source,
                "target_dbsize": target,
                "target_input_kbps": kbps,
                "target_ops": ops,
                "is_migrating": migrating,
            })
        } else {
            serde_json::json!({
                "full_migration_progress": progress.to_string(),
                "offset": offset.to_string(),
                "source_dbsize": source.to_string(),
                "target_dbsize": target.to_string(),
                "target_input_kbps": kbps,
                "target_ops": ops,
                "is_migrating": migrating,
            })
        }
    }
}

const SUPPORTED_FEATURES: &[&str] = &["supported_ssl", "supported_bandwidth_limit"];

/// `SourceInstanceBody` / `TargetInstanceBody` as the detail API returns them.
#[derive(Debug, Serialize)]
pub struct InstanceView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addrs: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    pub task_status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub ip: String,
    pub port: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub proxy_multi_db: bool,
    pub db: &'static str,
}

/// The detail view of a task (ShowMigrationTaskResponse / StopMigrationTaskResponse).
#[derive(Debug, Serialize)]
pub struct ShowView<'a> {
    pub task_id: &'a str,
    pub task_name: &'a str,
    pub description: Option<&'a str>,
    pub status: &'a str,
    pub migration_type: &'static str,
    pub migration_method: Option<&'static str>,
    pub ecs_tenant_private_ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_files: Option<&'a BackupFiles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_instance: Option<InstanceView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_instance: Option<InstanceView>,
    pub created_at: String,
    pub updated_at: String,
    pub released_at: Option<String>,
    pub version: &'static str,
    pub resume_mode: Option<&'a str>,
    pub supported_features: &'static [&'static str],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_vpc_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_subnet_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_security_group_id: Option<&'a str>,
    pub bandwidth_limit_mb: Option<&'a str>,
    pub task_status: Option<&'static str>,
}

/// One item of ListMigrationTask (`MigrationTaskList`).
#[derive(Debug, Serialize)]
pub struct ListView<'a> {
    pub task_id: &'a str,
    pub task_name: &'a str,
    pub status: &'a str,
    pub migration_type: &'static str,
    pub migration_method: Option<&'static str>,
    pub ecs_tenant_private_ip: Option<&'a str>,
    pub data_source: Option<String>,
    pub source_instance_name: Option<String>,
    pub source_instance_id: Option<&'a str>,
    pub target_instance_addrs: Option<String>,
    pub target_instance_name: Option<String>,
    pub target_instance_id: Option<&'a str>,
    pub created_at: String,
    pub description: Option<&'a str>,
    pub source_instance_status: Option<&'static str>,
    pub target_instance_status: Option<&'static str>,
    pub source_instance_subnet_id: Option<&'a str>,
    pub target_instance_subnet_id: Option<&'a str>,
    pub source_instance_spec_code: Option<&'static str>,
    pub target_instance_spec_code: Option<&'static str>,
    pub error_message: Option<&'a str>,
    pub released_at: Option<String>,
    pub version: &'static str,
    pub resume_mode: Option<&'a str>,
    pub supported_features: &'static [&'static str],
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> Timing {
        Timing { phase: Duration::from_secs(2), release_after: Some(Duration::from_secs(10)), swap_ips: true }
    }

    fn network() -> Network {
        Network { vpc_id: "v".into(), subnet_id: "s".into(), security_group_id: "g".into() }
    }

    #[test]
    fn online_task_waits_for_configuration_after_creating() {
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let mut task = Task::online("a".repeat(32), "t1".into(), None, network(), Job::new("j".into(), t0, false), t0);
        task.advance(after(t0, Duration::from_secs(1)), &timing());
        assert_eq!(task.status, Status::Creating);
        assert!(task.ecs_private_ip.is_none());
        task.advance(after(t0, Duration::from_secs(100)), &timing());
        assert_eq!(task.status, Status::Running);
        assert!(task.ecs_private_ip.is_some());
        assert_eq!(task.entered_at, after(t0, Duration::from_secs(2)));
    }

    #[test]
    fn incremental_task_streams_until_stopped_and_full_task_is_released_after_success() {
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let mut inc = Task::online("b".repeat(32), "t".into(), None, network(), Job::new("j".into(), t0, false), t0);
        inc.advance(after(t0, Duration::from_secs(3)), &timing());
        inc.method = Some(Method::Incremental);
        inc.enter(Status::FullMigrating, after(t0, Duration::from_secs(3)));
        inc.advance(after(t0, Duration::from_secs(1000)), &timing());
        assert_eq!(inc.status, Status::IncrMigrating);

        let mut full = inc.clone();
        full.method = Some(Method::Full);
        full.enter(Status::FullMigrating, after(t0, Duration::from_secs(3)));
        full.advance(after(t0, Duration::from_secs(6)), &timing());
        assert_eq!(full.status, Status::Success);
        full.advance(after(t0, Duration::from_secs(100)), &timing());
        assert_eq!(full.status, Status::Released);
        assert_eq!(full.released_at, Some(after(t0, Duration::from_secs(15))));
    }

    #[test]
    fn a_doomed_provisioning_job_fails_the_task_with_its_reason() {
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let mut task = Task::online("d".repeat(32), "t".into(), None, network(), Job::new("j".into(), t0, true), t0);
        task.advance(after(t0, Duration::from_secs(1)), &timing());
        assert_eq!((&task.status, task.job.as_ref().unwrap().view().status), (&Status::Creating, "RUNNING"));
        task.advance(after(t0, Duration::from_secs(3)), &timing());
        assert_eq!(task.status, Status::Failed);
        assert_eq!(task.job.as_ref().unwrap().view().status, "FAIL");
        assert_eq!(task.error_message.as_deref(), Some(FAIL_REASON));
        assert!(task.logs.iter().any(|l| l.log_level == "ERROR" && l.message == FAIL_REASON));
        assert!(task.ecs_private_ip.is_none(), "a failed job released nothing to release");
    }

    #[test]
    fn instance_names_cut_ids_on_character_boundaries() {
        assert_eq!(instance_name_for("aéüxyz"), "dcs-aéüx");
        assert_eq!(instance_name_for("ab"), "dcs-ab");
    }

    #[test]
    fn progress_rises_during_full_sync() {
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let task = Task::backup_import(
            "c".repeat(32),
            "t".into(),
            None,
            BackupFiles { file_source: "self_build_obs".into(), bucket_name: None, files: vec![], backup_id: None },
            Endpoint::default(),
            t0,
        );
        let p1 = task.progress(after(t0, Duration::from_millis(500)), &timing());
        let p2 = task.progress(after(t0, Duration::from_millis(1500)), &timing());
        assert!(p1 < p2 && p2 < 100, "{p1} {p2}");
    }
}
