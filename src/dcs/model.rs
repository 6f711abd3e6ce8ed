//! Typed request and response bodies of the 15 migration-task operations and ShowJobInfo (field
//! names as the official SDK's models, `dcs-api.md` §2–§3, §12). Responses decode tolerantly: unknown fields
//! are ignored, scalars accept string or number, and echoed passwords are discarded on decode.

use super::lenient::{self, RedactedPassword};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The remote task's lifecycle state, decoded from the API's status word. The word itself is
/// kept in [`TaskStatus`]; unknown words map to [`TaskState::Unknown`] and never fail decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// `CREATING`: the migration ECS of an online task is being provisioned.
    Creating,
    /// `RUNNING`: an online task that was created and awaits configuration.
    Running,
    /// `MIGRATING`: a backup import is running.
    Migrating,
    /// `FULLMIGRATING`: the full-sync phase of an online migration.
    FullMigrating,
    /// `INCRMIGEATING` (the API's spelling) or `INCRMIGRATING`: incremental sync, until stopped.
    IncrementalMigrating,
    /// `SUCCESS`.
    Success,
    /// `MIGRATION_SUCCESS`: finished, resources being cleaned up.
    MigrationSuccess,
    /// `FAILED`.
    Failed,
    /// `MIGRATION_FAILED`.
    MigrationFailed,
    /// `ERROR`.
    Error,
    /// `TERMINATING`: being stopped.
    Terminating,
    /// `TERMINATED`: stopped.
    Terminated,
    /// `RELEASED`: the migration ECS was released after the task ended.
    Released,
    /// `DELETED`.
    Deleted,
    /// Any other word (or none).
    Unknown,
}

impl TaskState {
    /// Maps a status word; case-insensitive, tolerant of the documented typo.
    pub fn from_word(word: &str) -> Self {
        match word.trim().to_ascii_uppercase().as_str() {
            "CREATING" => Self::Creating,
            "RUNNING" => Self::Running,
            "MIGRATING" => Self::Migrating,
            "FULLMIGRATING" => Self::FullMigrating,
            "INCRMIGEATING" | "INCRMIGRATING" => Self::IncrementalMigrating,
            "SUCCESS" => Self::Success,
            "MIGRATION_SUCCESS" => Self::MigrationSuccess,
            "FAILED" => Self::Failed,
            "MIGRATION_FAILED" => Self::MigrationFailed,
            "ERROR" => Self::Error,
            "TERMINATING" => Self::Terminating,
            "TERMINATED" => Self::Terminated,
            "RELEASED" => Self::Released,
            "DELETED" => Self::Deleted,
            _ => Self::Unknown,
        }
    }

    /// The task will not change again on its own and cannot be stopped (`dcs-api.md` §5).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Success
                | Self::Failed
                | Self::MigrationFailed
                | Self::Error
                | Self::Terminated
                | Self::Released
                | Self::Deleted
        )
    }
}

/// A status word exactly as the API sent it, with its decoded [`TaskState`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskStatus(String);

impl TaskStatus {
    /// Wraps a raw status word.
    pub fn new(word: impl Into<String>) -> Self {
        Self(word.into())
    }
    /// The word verbatim (e.g. `INCRMIGEATING`).
    pub fn word(&self) -> &str {
        &self.0
    }
    /// The decoded state.
    pub fn state(&self) -> TaskState {
        TaskState::from_word(&self.0)
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TaskStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self(lenient::string(d)?.unwrap_or_default()))
    }
}

impl Serialize for TaskStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Wire value of `migration_type`.
pub const MIGRATION_TYPE_BACKUP_IMPORT: &str = "backupfile_import";
/// Wire value of `migration_type` for online migration (shown by show/list).
pub const MIGRATION_TYPE_ONLINE: &str = "online_migration";

/// `migration_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MigrationMethod {
    #[serde(rename = "full_amount_migration")]
    Full,
    #[serde(rename = "incremental_migration")]
    Incremental,
}

/// `resume_mode`: whether the migration reconnects by itself after a break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResumeMode {
    Auto,
    Manual,
}

fn expose_password<S: Serializer>(p: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(secret) => s.serialize_str(secret.expose_secret()),
        None => s.serialize_none(),
    }
}

// ---------------------------------------------------------------- requests

/// Body of `CreateMigrationTask` (backup import).
#[derive(Debug, Clone, Serialize)]
pub struct CreateMigrationTaskBody {
    pub task_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Always [`MIGRATION_TYPE_BACKUP_IMPORT`] (online creation has its own operation).
    pub migration_type: String,
    pub migration_method: MigrationMethod,
    pub backup_files: BackupFilesBody,
    pub target_instance: TargetInstanceBody,
}

/// Where the backup files come from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct BackupFilesBody {
    /// `self_build_obs` or `backup_record`.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub file_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub bucket_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::list")]
    pub files: Vec<BackupFile>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub backup_id: Option<String>,
}

/// One backup file in an OBS bucket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct BackupFile {
    #[serde(default, deserialize_with = "lenient::string")]
    pub file_name: Option<String>,
    /// Size as the API takes it (a string; "754.0MB" and plain byte counts both occur).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub size: Option<String>,
    /// `YYYY-MM-DD HH:MM:SS`.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub update_at: Option<String>,
}

/// The target DCS instance of a backup import.
#[derive(Debug, Clone, Serialize)]
pub struct TargetInstanceBody {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_password")]
    pub password: Option<SecretString>,
}

/// Body of `CreateOnlineMigrationTask`: where the migration ECS is placed.
#[derive(Debug, Clone, Serialize)]
pub struct CreateOnlineMigrationTaskBody {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub vpc_id: String,
    pub subnet_id: String,
    pub security_group_id: String,
}

/// Body of `SetOnlineMigrationTask` (configure an online task).
#[derive(Debug, Clone, Serialize)]
pub struct SetOnlineMigrationTaskBody {
    pub migration_method: MigrationMethod,
    pub resume_mode: ResumeMode,
    /// MB/s, 1–10240; a string on the wire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth_limit_mb: Option<String>,
    pub source_instance: ConfigMigrationInstanceBody,
    pub target_instance: ConfigMigrationInstanceBody,
}

/// Source or target of an online migration: a DCS instance `id` or self-hosted `addrs`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ConfigMigrationInstanceBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `ip:port[,ip:port...]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addrs: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_password")]
    pub password: Option<SecretString>,
}

/// Body of `BatchStopMigrationTasks` and `BatchRestartOnlineMigrationTasks`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TaskIdsBody<'a> {
    pub migration_tasks: &'a [String],
}

/// Body of `DeleteMigrationTask`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DeleteTasksBody {
    #[serde(default, deserialize_with = "lenient::list")]
    pub task_id_list: Vec<String>,
}

/// Body of `UpdateMigrationTask`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct UpdateMigrationTaskBody {
    pub resume_mode: ResumeMode,
}

/// Body of `ExchangeInstanceIp`.
#[derive(Debug, Clone, Serialize)]
pub struct ExchangeInstanceIpBody {
    /// The IPs to exchange between source and target; left out when empty (as terraform does).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exchanged_ip: Vec<String>,
    /// Also exchange the instances' domain names; sent only when true.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_exchange_domain: bool,
}

/// Query of `ListMigrationTask`.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub offset: Option<u32>,
    /// 1–1000.
    pub limit: Option<u32>,
    /// Name filter (match semantics undocumented: match exactly client-side).
    pub name: Option<String>,
}

/// Query of `ListMigrationTaskLogs`. The API answers the newest lines first.
#[derive(Debug, Clone, Default)]
pub struct LogsQuery {
    pub offset: Option<u32>,
    pub limit: Option<u32>,
    /// `INFO`, `ERROR`, `WARN` or `DEBUG`.
    pub log_level: Option<String>,
}

/// The `log_level` of the lines that say why a task failed (`dcs-api.md` §12.3).
pub const LOG_LEVEL_ERROR: &str = "ERROR";

impl LogsQuery {
    /// The newest `limit` `ERROR` lines of a task: where the detailed reason of a failure is.
    pub fn newest_errors(limit: u32) -> Self {
        Self { offset: Some(0), limit: Some(limit), log_level: Some(LOG_LEVEL_ERROR.to_owned()) }
    }
}

// ---------------------------------------------------------------- responses

/// Answer of `CreateMigrationTask` and `SetOnlineMigrationTask`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct TaskAccepted {
    #[serde(default, deserialize_with = "lenient::string")]
    pub id: Option<String>,
    /// Not always the task name: backup import answers with the target instance's name.
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: Option<String>,
    #[serde(default)]
    pub status: TaskStatus,
    #[serde(default, deserialize_with = "lenient::string")]
    pub error: Option<String>,
}

/// Answer of `CreateOnlineMigrationTask`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct OnlineTaskCreated {
    /// The new task's id.
    #[serde(default, deserialize_with = "lenient::string")]
    pub instance_id: Option<String>,
    /// The job provisioning the migration ECS (not in the SDK model; read it with `ShowJobInfo`).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub job_id: Option<String>,
}

/// Answer of `ShowJobInfo`: a DCS job, e.g. the one provisioning an online task (`dcs-api.md` §12.1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct JobInfo {
    #[serde(default, deserialize_with = "lenient::string")]
    pub job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub job_type: Option<String>,
    /// `SUCCESS`, `FAIL`; any other word means still running.
    #[serde(default, deserialize_with = "lenient::string")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub begin_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub end_time: Option<String>,
    /// Why the job failed: the only place that says why provisioning failed.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub fail_reason: Option<String>,
}

/// How a [`JobInfo`] ended, read from its status word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// `SUCCESS`.
    Succeeded,
    /// `FAIL` (or `FAILED`): see `fail_reason`.
    Failed,
    /// Any other word, or none: not ended yet.
    Pending,
}

impl JobInfo {
    /// The outcome, case-insensitively from `status`.
    pub fn outcome(&self) -> JobOutcome {
        match self.status.as_deref().map(|s| s.trim().to_ascii_uppercase()).as_deref() {
            Some("SUCCESS") => JobOutcome::Succeeded,
            Some("FAIL" | "FAILED") => JobOutcome::Failed,
            _ => JobOutcome::Pending,
        }
    }
}

/// A source or target instance as show/stop describe it. The password is never kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct InstanceInfo {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub addrs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::password")]
    pub password: Option<RedactedPassword>,
    /// Instance-side state, e.g. `EXCHANGING` while IPs are switched (not the task status).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub task_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::boolean")]
    pub proxy_multi_db: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub db: Option<String>,
}

/// `backup_files` as show describes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct BackupFilesInfo {
    #[serde(flatten)]
    pub body: BackupFilesBody,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_record: Option<BackupRecord>,
}

/// `backup_files.backup_record` (undocumented; read by Terraform).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct BackupRecord {
    #[serde(default, deserialize_with = "lenient::string")]
    pub backup_id: Option<String>,
}

/// A task as `ShowMigrationTask` and `StopMigrationTask` return it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct MigrationTask {
    #[serde(default, deserialize_with = "lenient::string")]
    pub task_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub task_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub description: Option<String>,
    #[serde(default)]
    pub status: TaskStatus,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub migration_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub migration_method: Option<String>,
    /// The migration ECS's IP: whitelist it on source and target.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub ecs_tenant_private_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_files: Option<BackupFilesInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub network_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_instance: Option<InstanceInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_instance: Option<InstanceInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub released_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub resume_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::list")]
    pub supported_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub tenant_vpc_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub tenant_subnet_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub tenant_security_group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub bandwidth_limit_mb: Option<String>,
    /// `EXCHANGING` while IP addresses are being switched.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub task_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub error_message: Option<String>,
}

/// One row of `ListMigrationTask` (no passwords, no `updated_at`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct MigrationTaskSummary {
    #[serde(default, deserialize_with = "lenient::string")]
    pub task_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub task_name: Option<String>,
    #[serde(default)]
    pub status: TaskStatus,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub migration_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub migration_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub ecs_tenant_private_ip: Option<String>,
    /// `ip:port` or bucket name.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub data_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub source_instance_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub source_instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub target_instance_addrs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub target_instance_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub target_instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub source_instance_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub target_instance_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub released_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub resume_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "lenient::list")]
    pub supported_features: Vec<String>,
}

/// One page of `ListMigrationTask`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct MigrationTaskPage {
    /// Total number of tasks that match, over all pages.
    #[serde(default, deserialize_with = "lenient::count")]
    pub count: Option<u64>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub migration_tasks: Vec<MigrationTaskSummary>,
}

/// Answer of `ShowMigrationTaskStats`; every counter accepts a string or a number.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct MigrationStats {
    /// Full-sync progress, percent.
    #[serde(default, deserialize_with = "lenient::number")]
    pub full_migration_progress: Option<f64>,
    /// Incremental offset (0 = no difference).
    #[serde(default, deserialize_with = "lenient::number")]
    pub offset: Option<f64>,
    #[serde(default, deserialize_with = "lenient::number")]
    pub source_dbsize: Option<f64>,
    #[serde(default, deserialize_with = "lenient::number")]
    pub target_dbsize: Option<f64>,
    /// KB/s written to the target.
    #[serde(default, deserialize_with = "lenient::number")]
    pub target_input_kbps: Option<f64>,
    /// Operations per second on the target.
    #[serde(default, deserialize_with = "lenient::number")]
    pub target_ops: Option<f64>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub is_migrating: Option<bool>,
}

/// One log line of a task.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct MigrationLog {
    #[serde(default, deserialize_with = "lenient::string")]
    pub created_at: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub log_level: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub log_code: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub keyword: Vec<String>,
}

/// Answer of `ListMigrationTaskLogs`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct MigrationLogPage {
    #[serde(default, deserialize_with = "lenient::count")]
    pub log_num: Option<u64>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub migration_logs: Vec<MigrationLog>,
}

/// Per-task outcome of a batch stop or restart. HTTP 200 only means "delivered".
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct BatchItemResult {
    /// `success` or `failed`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub result: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient::string")]
    pub error_msg: Option<String>,
}

impl BatchItemResult {
    /// True when the API accepted this item.
    pub fn succeeded(&self) -> bool {
        self.result.as_deref().is_some_and(|r| r.eq_ignore_ascii_case("success"))
    }
}

/// Answer of a batch stop or restart.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct BatchResult {
    #[serde(default, deserialize_with = "lenient::list")]
    pub migration_tasks: Vec<BatchItemResult>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_of_the_incremental_state_are_one_state() {
        assert_eq!(TaskState::from_word("INCRMIGEATING"), TaskState::IncrementalMigrating);
        assert_eq!(TaskState::from_word("INCRMIGRATING"), TaskState::IncrementalMigrating);
    }

    #[test]
    fn unknown_status_words_decode_and_keep_the_raw_word() {
        let t: MigrationTask = serde_json::from_str(r#"{"status": "WARPING", "whatever": 1}"#).unwrap();
        assert_eq!(t.status.word(), "WARPING");
        assert_eq!(t.status.state(), TaskState::Unknown);
    }

    #[test]
    fn show_answer_from_the_api_page_decodes_without_its_passwords() {
        let body = r#"{"task_id":"a0d12b5d","task_name":"dcs-migration-1db7","status":"TERMINATING",
          "migration_type":"incremental_migration","migration_method":"incremental_migration",
          "source_instance":{"addrs":"192.168.1.1:6379","password":"DCStest123","port":"6379",
            "proxy_multi_db":false,"db":"0","task_status":"RUNNING"},
          "target_instance":{"id":"x","password":"DCStest123","port":6379},
          "created_at":"2019/10/22 14:44:30","supported_features":null,"bandwidth_limit_mb":123}"#;
        let t: MigrationTask = serde_json::from_str(body).unwrap();
        assert_eq!(t.status.state(), TaskState::Terminating);
        assert_eq!(t.target_instance.as_ref().unwrap().port.as_deref(), Some("6379"));
        assert_eq!(t.bandwidth_limit_mb.as_deref(), Some("123"));
        let shown = format!("{t:?}{}", serde_json::to_string(&t).unwrap());
        assert!(!shown.contains("DCStest123"), "{shown}");
    }

    #[test]
    fn request_passwords_go_on_the_wire_but_not_into_debug() {
        let body = ConfigMigrationInstanceBody {
            addrs: Some("10.0.0.1:6379".into()),
            password: Some(SecretString::from("hunter2")),
            ..Default::default()
        };
        assert!(serde_json::to_string(&body).unwrap().contains("hunter2"));
        assert!(!format!("{body:?}").contains("hunter2"));
    }

    #[test]
    fn job_info_decodes_leniently_and_tells_its_outcome() {
        let job: JobInfo = serde_json::from_str(
            r#"{"job_id": 7, "job_type": "createMigrationTask", "status": "FAIL", "begin_time": "2024-01-01T00:00:00.000Z",
                "end_time": null, "fail_reason": "The network ip insufficient.", "entities": {}}"#,
        )
        .unwrap();
        assert_eq!(job.job_id.as_deref(), Some("7"));
        assert_eq!(job.outcome(), JobOutcome::Failed);
        assert_eq!(job.fail_reason.as_deref(), Some("The network ip insufficient."));
        let running: JobInfo = serde_json::from_str(r#"{"status": "RUNNING"}"#).unwrap();
        assert_eq!(running.outcome(), JobOutcome::Pending);
        assert_eq!(
            serde_json::from_str::<JobInfo>(r#"{"status": "success"}"#).unwrap().outcome(),
            JobOutcome::Succeeded
        );
    }

    #[test]
    fn stats_counters_decode_from_numbers_or_strings() {
        let s: MigrationStats = serde_json::from_str(
            r#"{"full_migration_progress": 100, "offset": "0", "target_ops": "12", "is_migrating": "false"}"#,
        )
        .unwrap();
        assert_eq!(s.full_migration_progress, Some(100.0));
        assert_eq!(s.offset, Some(0.0));
        assert_eq!(s.target_ops, Some(12.0));
        assert_eq!(s.is_migrating, Some(false));
    }
}
