//! The `RedisMigration` custom resource (`dcs.migration.io/v1alpha1`): its spec, status and the
//! admission rules (OpenAPI + CEL) that refuse bad manifests with the field named.
//! `dcs-migration-operator crd` prints the CRD generated from these types.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

/// A rule on the whole object for a spec field that cannot change once the remote task exists
/// (`status.taskId` is set). Presence is compared first (`has()` short-circuits under `&&`), so a
/// field cannot be added or removed either. Only `online.resumeMode` (applied remotely with
/// UpdateMigrationTask) and the local fields (`deletionPolicy`, `stopped`, `switchover`,
/// `progressDeadlineSeconds`, `credentialsSecretRef`, password Secret references) stay mutable.
macro_rules! immutable_once_created {
    ($field:literal) => {
        immutable_once_created!(@rule $field,
            concat!("has(self.spec.", $field, ")"),
            concat!("has(oldSelf.spec.", $field, ")"))
    };
    ($parent:literal . $field:literal) => {
        immutable_once_created!(@rule concat!($parent, ".", $field),
            concat!("(has(self.spec.", $parent, ") && has(self.spec.", $parent, ".", $field, "))"),
            concat!("(has(oldSelf.spec.", $parent, ") && has(oldSelf.spec.", $parent, ".", $field, "))"))
    };
    (@rule $path:expr, $present:expr, $was_present:expr) => {
        Rule::new(concat!(
            "!has(oldSelf.status) || !has(oldSelf.status.taskId) || (",
            $present, " == ", $was_present, " && (!", $present, " || self.spec.", $path, " == oldSelf.spec.", $path, "))"
        ))
        .message(concat!(
            "spec.", $path, " cannot change once the remote task exists (status.taskId is set); ",
            "delete and recreate the RedisMigration to change it"
        ))
        .field_path(concat!(".spec.", $path))
    };
}

/// Specification of a Redis data migration on Huawei Cloud DCS.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "dcs.migration.io",
    version = "v1alpha1",
    kind = "RedisMigration",
    plural = "redismigrations",
    shortname = "rmig",
    category = "dcs",
    namespaced,
    status = "RedisMigrationStatus",
    doc = "RedisMigration runs one Huawei Cloud DCS data-migration task (backup import or online migration) and mirrors its status.",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"Method","type":"string","jsonPath":".spec.method"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Progress","type":"integer","jsonPath":".status.progress.percent"}"#,
    printcolumn = r#"{"name":"Task ID","type":"string","jsonPath":".status.taskId"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Message","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    validation = immutable_once_created!("region"),
    validation = immutable_once_created!("endpoint"),
    validation = immutable_once_created!("projectId"),
    validation = immutable_once_created!("taskName"),
    validation = immutable_once_created!("description"),
    validation = immutable_once_created!("method"),
    validation = immutable_once_created!("backupImport"),
    validation = immutable_once_created!("online"."taskId"),
    validation = immutable_once_created!("online"."network"),
    validation = immutable_once_created!("online"."bandwidthLimitMB"),
    validation = immutable_once_created!("source"."instanceId"),
    validation = immutable_once_created!("source"."address"),
    validation = immutable_once_created!("target"."instanceId"),
    validation = immutable_once_created!("target"."address"),
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.type != 'BackupImport' || has(self.backupImport)").message("spec.backupImport is required when type is BackupImport").field_path(".backupImport"),
    validation = Rule::new("self.type != 'BackupImport' || self.method == 'Full'").message("spec.method must be Full when type is BackupImport (a backup import is a full migration)").field_path(".method"),
    validation = Rule::new("self.type != 'BackupImport' || !has(self.online)").message("spec.online is only for type Online").field_path(".online"),
    validation = Rule::new("self.type != 'BackupImport' || !has(self.source)").message("spec.source is only for type Online (a backup import reads its backup files)").field_path(".source"),
    validation = Rule::new("self.type != 'BackupImport' || has(self.target.instanceId)").message("spec.target.instanceId is required when type is BackupImport (the import target is a DCS instance)").field_path(".target"),
    validation = Rule::new("self.type != 'Online' || has(self.online)").message("spec.online is required when type is Online").field_path(".online"),
    validation = Rule::new("self.type != 'Online' || has(self.source) || (has(self.online) && has(self.online.taskId))").message("spec.source is required when type is Online and the operator creates the task (online.network)").field_path(".source"),
    validation = Rule::new("self.type != 'Online' || !has(self.backupImport)").message("spec.backupImport is only for type BackupImport").field_path(".backupImport"),
    validation = Rule::new("!has(self.switchover) || self.type == 'Online'").message("spec.switchover is only for type Online").field_path(".switchover"),
    validation = Rule::new("self.type == oldSelf.type").message("spec.type is immutable").field_path(".type"),
    validation = Rule::new("!has(self.identity) || !has(self.credentialsSecretRef)").message("at most one of spec.credentialsSecretRef and spec.identity may be set").field_path(".identity"),
    validation = Rule::new("!has(self.identity) || has(self.projectId)").message("spec.projectId is required with spec.identity (temporary credentials carry no project)").field_path(".projectId"),
)]
// Short texts every resource repeats (region, endpoint, Secret names and keys) are `SmolStr`s: inline up to 23
// bytes, so that the 10,000 objects of the cache do not each hold their own small allocations of them.
pub struct RedisMigrationSpec {
    /// Region of the DCS service, e.g. `cn-north-4` (Huawei Cloud) or `eu-de` (Open Telekom Cloud).
    /// Without `endpoint` the API is `https://dcs.{region}.myhuaweicloud.com`.
    #[schemars(length(min = 2, max = 64), regex(pattern = r"^[a-z][a-z0-9-]*[a-z0-9]$"))]
    pub region: SmolStr,

    /// API endpoint override, e.g. `https://dcs.eu-de.otc.t-systems.com` (Open Telekom Cloud), a
    /// Huawei Cloud Stack endpoint, or the simulator. Must be `https://`, except on loopback
    /// addresses (`http://127.0.0.1:PORT`). The operator may restrict endpoints to an allow-list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    #[x_kube(validation = Rule::new("isURL(self) && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && (url(self).getHostname() == 'localhost' || url(self).getHostname() == '::1' || url(self).getHostname().startsWith('127.'))))").message("spec.endpoint must be an https:// URL (plain http:// only on loopback addresses)"))]
    pub endpoint: Option<SmolStr>,

    /// Project id (32 hex characters on Huawei Cloud). Default: the `projectId` key of the
    /// credentials Secret, else the operator's `HUAWEICLOUD_SDK_PROJECT_ID`. Required with `identity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 8, max = 64), regex(pattern = r"^[A-Za-z0-9-]+$"))]
    pub project_id: Option<String>,

    /// Secret in this namespace with the keys `accessKey`, `secretKey`, optional `securityToken`
    /// (temporary credentials) and optional `projectId`. Absent: the operator's default
    /// credentials (`HUAWEICLOUD_SDK_AK`/`_SK`), which exist only if the installer set them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,

    /// Keyless credentials (instead of `credentialsSecretRef`): the operator requests a short-lived
    /// token for a ServiceAccount of this namespace and exchanges it for temporary credentials, at
    /// IAM (`idpId`: OIDC federation) or at STS (`providerUrn` + `agencyUrn`: assume an agency). No
    /// key is stored anywhere; the cloud side decides which ServiceAccounts it trusts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Box<IdentitySpec>>,

    /// `BackupImport` (import backup files into a DCS instance) or `Online` (migrate from a
    /// running Redis). Immutable.
    #[serde(rename = "type")]
    pub migration_type: MigrationType,

    /// `Full` (copy once, then the task ends) or `Incremental` (copy, then keep streaming
    /// changes until stopped; online only).
    #[serde(default)]
    pub method: Method,

    /// Remote task name: a letter first, then 3–63 of `[A-Za-z0-9_-]`. Default:
    /// `rmig-<namespace>-<name>-<first 8 hex of sha256(uid)>`, cut to 64 characters. The
    /// operator finds its task by this name after a crash, so it must be unique in the project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z][A-Za-z0-9_-]{3,63}$"))]
    pub task_name: Option<String>,

    /// Description of the remote task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,

    /// Backup files to import (type `BackupImport` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_import: Option<Box<BackupImportSpec>>,

    /// Online migration settings (type `Online` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<Box<OnlineSpec>>,

    /// The Redis to migrate from (type `Online` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Box<RedisEndpoint>>,

    /// The Redis to migrate into. For `BackupImport` it must be a DCS instance (`instanceId`).
    pub target: RedisEndpoint,

    /// `true` stops the remote task and keeps the resource (phase `Terminated`); setting it back
    /// to `false` restarts a stopped online task.
    #[serde(default)]
    pub stopped: bool,

    /// IP switch-over after an online migration (type `Online` only): once the migration is
    /// Ready, the source and target IPs are exchanged once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switchover: Option<Box<SwitchoverSpec>>,

    /// Seconds a task may stay in a transitional state (creating, migrating, stopping) before
    /// the resource is marked Stalled with reason `ProgressDeadlineExceeded`. Default 1800.
    #[serde(default = "default_progress_deadline")]
    #[schemars(range(min = 60, max = 604800))]
    pub progress_deadline_seconds: i32,

    /// What deletion does to the remote task: `Stop` (default; stop it unless it already
    /// ended), `Delete` (stop, then delete the task record) or `Orphan` (leave it running).
    /// Setting `Orphan` on a resource stuck in deletion releases it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn default_progress_deadline() -> i32 {
    1800
}

/// Reference to a Secret in the resource's namespace.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub name: SmolStr,
}

/// A ServiceAccount of the resource's namespace acting as a cloud identity.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.idpId) != has(self.providerUrn)").message("exactly one of identity.idpId (IAM federation) and identity.providerUrn with identity.agencyUrn (STS agency) must be set"))]
#[x_kube(validation = Rule::new("has(self.providerUrn) == has(self.agencyUrn)").message("identity.providerUrn and identity.agencyUrn go together").field_path(".agencyUrn"))]
pub struct IdentitySpec {
    /// ServiceAccount in this namespace whose token (audience `dcs-migration-operator` unless the
    /// operator is configured otherwise, 10 minutes) the cloud side trusts.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub service_account_name: String,
    /// IAM identity provider id (OIDC federation): the token is exchanged at IAM for temporary
    /// credentials of the user the provider maps it to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_.-]+$"))]
    pub idp_id: Option<String>,
    /// URN of the identity provider STS trusts, e.g. `iam::<account id>:identity-provider:<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^iam::[^\s]+$"))]
    pub provider_urn: Option<String>,
    /// URN of the agency to assume, e.g. `iam::<account id>:agency:<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^iam::[^\s]+$"))]
    pub agency_urn: Option<String>,
    /// IAM endpoint (with `idpId`). Default: `endpoint` when set, else the public IAM endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    #[x_kube(validation = Rule::new("isURL(self) && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && (url(self).getHostname() == 'localhost' || url(self).getHostname() == '::1' || url(self).getHostname().startsWith('127.'))))").message("identity.iamEndpoint must be an https:// URL (plain http:// only on loopback addresses)"))]
    pub iam_endpoint: Option<String>,
    /// STS endpoint (with `providerUrn`). Default: `endpoint` when set, else the region's public STS
    /// endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    #[x_kube(validation = Rule::new("isURL(self) && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && (url(self).getHostname() == 'localhost' || url(self).getHostname() == '::1' || url(self).getHostname().startsWith('127.'))))").message("identity.stsEndpoint must be an https:// URL (plain http:// only on loopback addresses)"))]
    pub sts_endpoint: Option<String>,
}

/// Reference to one key of a Secret in the resource's namespace.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub name: SmolStr,
    /// Key in the Secret's data.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: SmolStr,
}

/// Kind of migration.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationType {
    /// Import backup files (from OBS or a DCS backup record) into a DCS instance.
    BackupImport,
    /// Migrate from a running Redis (DCS instance or self-hosted) into another.
    Online,
}

/// Migration method.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Method {
    /// Copy the data once.
    #[default]
    Full,
    /// Copy, then stream changes until stopped.
    Incremental,
}

/// What deletion does to the remote task.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    /// Stop the task unless it already ended, then release the resource.
    #[default]
    Stop,
    /// Stop the task, then delete the task record.
    Delete,
    /// Leave the task as it is.
    Orphan,
}

/// Where backup files come from.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackupSource {
    /// Files in an OBS bucket (`bucket` and `files`).
    ObsBucket,
    /// A DCS backup record (`backupId`).
    BackupRecord,
}

/// Backup files to import.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.source != 'ObsBucket' || (has(self.bucket) && has(self.files) && size(self.files) > 0)").message("backupImport.bucket and at least one of backupImport.files are required when source is ObsBucket"),
    validation = Rule::new("self.source != 'BackupRecord' || has(self.backupId)").message("backupImport.backupId is required when source is BackupRecord").field_path(".backupId"),
)]
pub struct BackupImportSpec {
    /// `ObsBucket` or `BackupRecord`.
    pub source: BackupSource,
    /// OBS bucket holding the files (source `ObsBucket`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 63), regex(pattern = r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$"))]
    pub bucket: Option<String>,
    /// Files to import from the bucket (source `ObsBucket`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub files: Vec<BackupFileSpec>,
    /// Id of the DCS backup record to import (source `BackupRecord`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9-]+$"))]
    pub backup_id: Option<String>,
}

/// One backup file in the bucket.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupFileSpec {
    /// Object name of the file, e.g. `backup/dump.rdb`.
    #[schemars(length(min = 1, max = 1024))]
    pub name: String,
    /// File size as the API takes it (bytes, or e.g. `754.0MB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub size: Option<String>,
    /// Last modification time, `YYYY-MM-DD HH:MM:SS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"))]
    pub updated_at: Option<String>,
}

/// Online migration settings: adopt a task (`taskId`) or let the operator create one (`network`).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.taskId) != has(self.network)").message("exactly one of online.taskId (adopt an existing task) and online.network (the operator creates the task) must be set"))]
pub struct OnlineSpec {
    /// Id of an online migration task created elsewhere, to adopt (and configure if it awaits
    /// configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"))]
    pub task_id: Option<String>,
    /// Where the operator places the migration ECS when it creates the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkSpec>,
    /// `Auto` (reconnect by itself after a break, possibly with a new full sync) or `Manual`.
    /// The only field applied to an existing task (UpdateMigrationTask).
    #[serde(default)]
    pub resume_mode: ResumeMode,
    /// Bandwidth limit in MB/s, 1–10240. Default: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "bandwidthLimitMB")]
    #[schemars(range(min = 1, max = 10240))]
    pub bandwidth_limit_mb: Option<i32>,
}

/// Reconnect behaviour of an online migration.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ResumeMode {
    /// Reconnect by itself.
    #[default]
    Auto,
    /// Wait for a manual restart.
    Manual,
}

/// VPC placement of the migration ECS.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSpec {
    /// VPC id.
    #[schemars(regex(pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"))]
    pub vpc_id: String,
    /// Subnet (network) id in that VPC.
    #[schemars(regex(pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"))]
    pub subnet_id: String,
    /// Security group id; it must allow the ECS to reach source and target.
    #[schemars(regex(pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"))]
    pub security_group_id: String,
}

/// A Redis: a DCS instance (`instanceId`) or self-hosted addresses (`address`).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.instanceId) != has(self.address)").message("exactly one of instanceId (a DCS instance) and address (self-hosted Redis, ip:port[,ip:port...]) must be set"))]
pub struct RedisEndpoint {
    /// DCS instance id (UUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"))]
    pub instance_id: Option<String>,
    /// Self-hosted Redis as `ip:port[,ip:port...]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 1024),
        regex(pattern = r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}(,[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5})*$")
    )]
    pub address: Option<String>,
    /// Key of a Secret holding the Redis password. Read when the task is created or
    /// configured; never copied into status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,
}

/// IP switch-over request.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SwitchoverSpec {
    /// IPs to exchange between source and target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.all(ip, isIP(ip))").message("switchover.exchangeIps must be IP addresses"))]
    pub exchange_ips: Vec<String>,
    /// Also exchange the instances' domain names.
    #[serde(default)]
    pub exchange_domain: bool,
    /// `true` reverts the switch-over once; back to `false` switches over again.
    #[serde(default)]
    pub rollback: bool,
    /// Each switch-over request is sent at most once, and never again by itself when it failed
    /// or when the operator cannot tell whether it reached the API (`SwitchedOver` reason
    /// `SwitchFailed` / `SwitchUnconfirmed`). Raise this number to send that request again; it
    /// changes nothing once the request succeeded.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub attempt: i32,
}

/// Observed state, mirrored from the remote task.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RedisMigrationStatus {
    /// Id of the remote task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Name of the remote task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_name: Option<String>,
    /// The remote task's status word, verbatim (e.g. `INCRMIGEATING`, the API's spelling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_status: Option<String>,
    /// Phase: Pending, Creating, Provisioning, AwaitingConfiguration, FullMigrating,
    /// IncrementalMigrating, Succeeded, Failed, Terminating, Terminated, Paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// When `phase` last changed (RFC 3339); the progress deadline counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_phase_transition_time: Option<String>,
    /// Human-readable detail, including the task's remote error message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Progress counters from the task's statistics, while it moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Box<Progress>>,
    /// Private IP of the migration ECS: whitelist it on source and target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecs_private_ip: Option<String>,
    /// Creation time of the remote task, as the API gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Completion time of the remote task, as the API gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// When the migration ECS was released, as the API gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<String>,
    /// What the switch-over did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switchover: Option<Box<SwitchoverStatus>>,
    /// The provisioning job of an online task (from the create answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Why the task or its provisioning failed: code, message (bounded), time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<Box<LastError>>,
    /// The last `dcs.migration.io/reconcile-requested-at` value acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Synced`, `Reconciling`, `Stalled` and `SwitchedOver`, with reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        with = "Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>",
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"])
    )]
    pub conditions: Vec<Condition>,
}

/// A status condition: metav1 `Condition` on the wire and in the schema. Its type, status and reason come from
/// the small vocabulary of `controller::conditions` and are kept without an allocation of their own (as are
/// messages of up to 23 bytes): with four conditions on each of 10,000 cached resources, metav1's `String`s were
/// 12 small allocations an object, ~0.4 KB of the ~2.6 KB it takes in the cache.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// When the status last changed (required, as in metav1).
    pub last_transition_time: Time,
    /// Human-readable details.
    #[serde(default)]
    pub message: SmolStr,
    /// The generation this condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// CamelCase reason.
    #[serde(default)]
    pub reason: SmolStr,
    /// `True`, `False` or `Unknown`.
    #[serde(default)]
    pub status: SmolStr,
    /// The condition type.
    #[serde(rename = "type", default)]
    pub type_: SmolStr,
}

/// Lifecycle phase of a RedisMigration.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Nothing created yet.
    Pending,
    /// The remote task is being created.
    Creating,
    /// The online task's migration ECS is being provisioned.
    Provisioning,
    /// The online task exists and awaits configuration.
    AwaitingConfiguration,
    /// Full copy (or backup import) in progress.
    FullMigrating,
    /// Streaming changes (incremental, until stopped).
    IncrementalMigrating,
    /// Finished successfully.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Being stopped.
    Terminating,
    /// Stopped, or gone remotely.
    Terminated,
    /// `dcs.migration.io/paused` is set: no remote calls except deletion.
    Paused,
}

/// Progress counters of a moving task.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Full-sync progress, 0–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<i32>,
    /// Keys in the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_keys: Option<i64>,
    /// Keys in the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_keys: Option<i64>,
    /// Incremental replication offset (0 = no difference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// Operations per second on the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_per_second: Option<i64>,
    /// KB/s written to the target.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "inputKBps")]
    pub input_kbps: Option<i64>,
    /// When these counters were written (RFC 3339). While the phase holds they are written at
    /// most once per `--progress-update-interval` (default 30 s), so that a moving task does not
    /// write its resource on every sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// Which side serves the exchanged addresses.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServingSide {
    /// The original source still serves its address.
    Source,
    /// The target serves the source's address (switched over).
    Target,
}

/// An IP switch-over action.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwitchAction {
    /// `exchange-ip`: the target takes over the source's addresses.
    Exchange,
    /// `rollback-ip`: the source gets its addresses back.
    Rollback,
}

/// Where the last switch-over request stands.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwitchState {
    /// Recorded; its call is about to go out (found after a restart: it may or may not have).
    Sending,
    /// Certainly not received by the API (refused before reaching it): sent again.
    NotSent,
    /// Accepted by the API; waiting for the task's `task_status` to report the outcome.
    Sent,
    /// Nobody can tell whether the API received it; never resent by itself.
    Unconfirmed,
    /// The task reported success (`EXCHANGE_SUCCESS` / `ROLLBACK_SUCCESS`).
    Succeeded,
    /// The API refused it, or the task reported a failure word.
    Failed,
}

/// What the switch-over did. The request is recorded here before its call goes out.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SwitchoverStatus {
    /// Which side serves the exchanged addresses, as the last confirmed switch left them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<ServingSide>,
    /// Number of exchange and rollback requests recorded.
    #[serde(default)]
    pub actions: i32,
    /// The last request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_action: Option<SwitchAction>,
    /// When the last request was recorded, just before its call (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_action_at: Option<String>,
    /// The `spec.switchover.attempt` the last request answered.
    #[serde(default)]
    pub attempt: i32,
    /// Where the last request stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<SwitchState>,
    /// The task's top-level `task_status` when the request was recorded: an outcome word read
    /// later counts only once it differs from this, or after `EXCHANGING` was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    /// True once `EXCHANGING` was read for the last request.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub under_way_seen: bool,
    /// The task's top-level `task_status` as last read, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_status: Option<String>,
    /// Why the last request failed or could not be confirmed (DCS code or the task's word).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Why the task or its provisioning failed, as the API reported it.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    /// The API's code (a task log's `log_code`, `JOB_FAILED` for a provisioning job), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The reason, bounded and with secrets removed.
    pub message: String,
    /// When the API recorded it (RFC 3339), if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// The CRD as YAML, as `dcs-migration-operator crd` prints it and `crds/` holds it.
pub fn crd_yaml() -> String {
    let crd = RedisMigration::crd();
    let json = serde_json::to_value(&crd).expect("the CRD serializes");
    serde_saphyr::to_string(&json).expect("the CRD serializes to YAML")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_reads_and_writes_as_metav1_condition() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition as MetaCondition;
        let full = serde_json::json!({"lastTransitionTime": "2026-12-01T10:00:00Z", "message": "the migration succeeded",
            "observedGeneration": 3, "reason": "Succeeded", "status": "True", "type": "Ready"});
        let sparse = serde_json::json!({"lastTransitionTime": "2026-12-01T10:00:00Z", "type": "Ready"});
        for wire in [full, sparse] {
            let ours: Condition = serde_json::from_value(wire.clone()).unwrap();
            let meta: MetaCondition = serde_json::from_value(wire).unwrap();
            assert_eq!(serde_json::to_value(&ours).unwrap(), serde_json::to_value(&meta).unwrap());
        }
        let untimed = serde_json::json!({"type": "Ready", "status": "True"});
        assert!(serde_json::from_value::<MetaCondition>(untimed.clone()).is_err());
        assert!(serde_json::from_value::<Condition>(untimed).is_err(), "lastTransitionTime is required, as in metav1");
    }

    #[test]
    fn committed_crd_yaml_matches_the_types() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/dcs.migration.io_redismigrations.yaml");
        let committed = std::fs::read_to_string(path).expect("crds/ holds the CRD");
        assert!(
            committed == crd_yaml(),
            "crds/dcs.migration.io_redismigrations.yaml is stale: run `make crds` and commit the result"
        );
    }

    #[test]
    fn every_spec_and_status_field_is_documented() {
        let crd = serde_json::to_value(RedisMigration::crd()).unwrap();
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let mut undocumented = Vec::new();
        fn walk(path: &str, node: &serde_json::Value, out: &mut Vec<String>) {
            if let Some(props) = node.get("properties").and_then(|p| p.as_object()) {
                for (name, child) in props {
                    let child_path = format!("{path}.{name}");
                    let documented = child.get("description").and_then(|d| d.as_str()).is_some_and(|d| !d.is_empty());
                    if !documented
                        && !child_path.starts_with(".status.conditions")
                        && child_path != ".metadata"
                        && child_path != ".apiVersion"
                        && child_path != ".kind"
                    {
                        out.push(child_path.clone());
                    }
                    walk(&child_path, child, out);
                }
            }
            if let Some(items) = node.get("items") {
                walk(&format!("{path}[]"), items, out);
            }
        }
        walk("", schema, &mut undocumented);
        assert!(
            undocumented.is_empty(),
            "fields without a description (kubectl explain shows nothing): {undocumented:?}"
        );
    }
}
