//! What the operator sends to create and configure a task: the request bodies, built from the
//! spec and the Redis passwords read from their Secrets just now. A body that cannot be built
//! (a Secret or key missing, a spec part absent) is a [`Problem`] and nothing is sent; whatever
//! kind of migration it is, a missing Secret reads `CredentialsMissing`.

use super::conditions::Problem;
use super::credentials;
use super::secret_cache::NamespaceSecrets;
use crate::crd::{BackupSource, Method, MigrationType, RedisEndpoint, RedisMigrationSpec, ResumeMode, SecretKeyRef};
use crate::dcs::model::*;
use secrecy::SecretString;

/// Where the passwords of one resource are read from.
pub struct Passwords<'a> {
    pub namespace: &'a str,
    pub secrets: &'a NamespaceSecrets<'a>,
}

impl Passwords<'_> {
    async fn read(&self, reference: Option<&SecretKeyRef>) -> Result<Option<SecretString>, Problem> {
        match reference {
            Some(r) => credentials::password(r, self.namespace, self.secrets)
                .await
                .map(Some)
                .map_err(|e| Problem::from_credentials(&e)),
            None => Ok(None),
        }
    }
}

/// The Redis passwords the spec references, as far as they can be read: to scrub them from text
/// the API gives back.
pub async fn password_values(spec: &RedisMigrationSpec, passwords: &Passwords<'_>) -> Vec<SecretString> {
    let mut values = Vec::new();
    for endpoint in [spec.source.as_deref(), Some(&spec.target)].into_iter().flatten() {
        if let Ok(Some(value)) = passwords.read(endpoint.password_secret_ref.as_ref()).await {
            values.push(value);
        }
    }
    values
}

/// A create request of either kind.
pub enum CreateBody {
    BackupImport(CreateMigrationTaskBody),
    Online(CreateOnlineMigrationTaskBody),
}

/// Builds the create request.
pub async fn create_body(
    spec: &RedisMigrationSpec,
    task_name: &str,
    description: &str,
    passwords: &Passwords<'_>,
) -> Result<CreateBody, Problem> {
    match spec.migration_type {
        MigrationType::BackupImport => {
            let import = spec.backup_import.as_ref().ok_or_else(|| missing("spec.backupImport"))?;
            let target_password = passwords.read(spec.target.password_secret_ref.as_ref()).await?;
            let source = match import.source {
                BackupSource::ObsBucket => "self_build_obs",
                BackupSource::BackupRecord => "backup_record",
            };
            let files = import
                .files
                .iter()
                .map(|f| BackupFile {
                    file_name: Some(f.name.clone()),
                    size: f.size.clone(),
                    update_at: f.updated_at.clone(),
                })
                .collect();
            Ok(CreateBody::BackupImport(CreateMigrationTaskBody {
                task_name: task_name.to_owned(),
                description: Some(description.to_owned()),
                migration_type: MIGRATION_TYPE_BACKUP_IMPORT.to_owned(),
                migration_method: MigrationMethod::Full,
                backup_files: BackupFilesBody {
                    file_source: Some(source.to_owned()),
                    bucket_name: import.bucket.clone(),
                    files,
                    backup_id: import.backup_id.clone(),
                },
                target_instance: TargetInstanceBody {
                    id: spec.target.instance_id.clone().unwrap_or_default(),
                    password: target_password,
                },
            }))
        }
        MigrationType::Online => {
            let network =
                spec.online.as_ref().and_then(|o| o.network.as_ref()).ok_or_else(|| missing("spec.online.network"))?;
            Ok(CreateBody::Online(CreateOnlineMigrationTaskBody {
                name: task_name.to_owned(),
                description: Some(description.to_owned()),
                vpc_id: network.vpc_id.clone(),
                subnet_id: network.subnet_id.clone(),
                security_group_id: network.security_group_id.clone(),
            }))
        }
    }
}

/// Builds the configure request of an online task that awaits configuration.
pub async fn configure_body(
    spec: &RedisMigrationSpec,
    passwords: &Passwords<'_>,
) -> Result<SetOnlineMigrationTaskBody, Problem> {
    let Some(source) = &spec.source else {
        return Err(Problem::InvalidSpec("the adopted task awaits configuration but spec.source is not set".into()));
    };
    let source_password = passwords.read(source.password_secret_ref.as_ref()).await?;
    let target_password = passwords.read(spec.target.password_secret_ref.as_ref()).await?;
    let online = spec.online.as_ref();
    Ok(SetOnlineMigrationTaskBody {
        migration_method: match spec.method {
            Method::Full => MigrationMethod::Full,
            Method::Incremental => MigrationMethod::Incremental,
        },
        resume_mode: wire_resume_mode(online.map(|o| o.resume_mode).unwrap_or_default()),
        bandwidth_limit_mb: online.and_then(|o| o.bandwidth_limit_mb).map(|b| b.to_string()),
        source_instance: instance(source, source_password),
        target_instance: instance(&spec.target, target_password),
    })
}

fn instance(endpoint: &RedisEndpoint, password: Option<SecretString>) -> ConfigMigrationInstanceBody {
    ConfigMigrationInstanceBody { id: endpoint.instance_id.clone(), addrs: endpoint.address.clone(), password }
}

fn missing(field: &str) -> Problem {
    Problem::InvalidSpec(format!("{field} is missing"))
}

/// The wire value of a resume mode.
pub fn wire_resume_mode(mode: ResumeMode) -> crate::dcs::model::ResumeMode {
    match mode {
        ResumeMode::Auto => crate::dcs::model::ResumeMode::Auto,
        ResumeMode::Manual => crate::dcs::model::ResumeMode::Manual,
    }
}
