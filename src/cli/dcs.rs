//! `dcs-migration-operator dcs <op>`: the API's answer as JSON on stdout (passwords as `"***"`),
//! or one line naming the DCS error code on stderr and a non-zero exit.

use crate::dcs::model::{BatchResult, ListQuery, LogsQuery};
use crate::dcs::{ClientConfig, Credentials, DcsClient, DcsError, Endpoint, client::MAX_BATCH, credentials};
use crate::telemetry::{self, LogFormat};
use clap::{Args, Subcommand};
use serde::Serialize;
use std::process::ExitCode;
use std::time::Duration;

/// Where and how to reach the API.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Region id, e.g. cn-north-4 (gives https://dcs.REGION.myhuaweicloud.com).
    #[arg(long)]
    pub region: String,
    /// Explicit API endpoint (Open Telekom Cloud, Huawei Cloud Stack, the simulator).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Project id (default: HUAWEICLOUD_SDK_PROJECT_ID).
    #[arg(long, env = credentials::ENV_PROJECT_ID)]
    pub project_id: Option<String>,
    /// Timeout of one HTTP call, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout_seconds: u64,
}

/// One API operation.
#[derive(Debug, Subcommand)]
pub enum DcsCommand {
    /// List migration tasks (ListMigrationTask).
    List {
        /// Only tasks whose name matches (the API's own matching).
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value_t = 0)]
        offset: u32,
        /// Page size, 1-1000.
        #[arg(long, default_value_t = 1000)]
        limit: u32,
        #[command(flatten)]
        conn: Connection,
    },
    /// Show one task (ShowMigrationTask).
    Show {
        id: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Progress counters of one task (ShowMigrationTaskStats).
    Stats {
        id: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// A DCS job, e.g. the one provisioning an online task: its status and `fail_reason` (ShowJobInfo).
    Job {
        id: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Log of one task, newest lines first (ListMigrationTaskLogs).
    Logs {
        id: String,
        /// INFO, WARN, ERROR or DEBUG (ERROR: the lines that say why a task failed).
        #[arg(long)]
        log_level: Option<String>,
        #[arg(long, default_value_t = 0)]
        offset: u32,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        conn: Connection,
    },
    /// Stop tasks: one id uses StopMigrationTask, several one BatchStopMigrationTasks call
    /// (per 50 ids).
    Stop {
        #[arg(required = true)]
        ids: Vec<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Delete task records (DeleteMigrationTask).
    Delete {
        #[arg(required = true)]
        ids: Vec<String>,
        #[command(flatten)]
        conn: Connection,
    },
}

/// Why the command failed; printed as one line.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}")]
    Dcs(#[from] DcsError),
    #[error("no credentials: set {} and {}", credentials::ENV_ACCESS_KEY, credentials::ENV_SECRET_KEY)]
    NoCredentials,
    #[error("no project id: pass --project-id or set {}", credentials::ENV_PROJECT_ID)]
    NoProjectId,
    #[error("{count} of {total} tasks were not accepted; first: {task} {code} {message}")]
    BatchItemsFailed { count: usize, total: usize, task: String, code: String, message: String },
}

/// Runs one `dcs` operation and returns the exit code.
pub async fn run(command: DcsCommand) -> ExitCode {
    telemetry::init(LogFormat::Text, "warn");
    match execute(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn client(conn: &Connection) -> Result<DcsClient, CliError> {
    let credentials = Credentials::from_env().ok_or(CliError::NoCredentials)?;
    let project_id = conn.project_id.clone().filter(|p| !p.is_empty()).ok_or(CliError::NoProjectId)?;
    let endpoint = Endpoint::resolve(&conn.region, conn.endpoint.as_deref())?;
    let mut config = ClientConfig::new(endpoint, project_id, credentials);
    config.timeout = Duration::from_secs(conn.timeout_seconds.max(1));
    // Someone is waiting at a terminal: a couple of quick retries, not the operator's patience.
    config.retry.max_retries = 2;
    config.retry.total_delay = Duration::from_secs(3);
    Ok(DcsClient::new(config)?)
}

fn print(value: &impl Serialize) {
    let text = serde_json::to_string_pretty(value).expect("API models always serialize");
    println!("{text}");
}

async fn execute(command: DcsCommand) -> Result<(), CliError> {
    match command {
        DcsCommand::List { name, offset, limit, conn } => {
            let query = ListQuery { offset: Some(offset), limit: Some(limit), name };
            print(&client(&conn)?.list_migration_tasks(&query).await?);
        }
        DcsCommand::Show { id, conn } => print(&client(&conn)?.show_migration_task(&id).await?),
        DcsCommand::Stats { id, conn } => print(&client(&conn)?.show_migration_task_stats(&id).await?),
        DcsCommand::Job { id, conn } => print(&client(&conn)?.show_job_info(&id).await?),
        DcsCommand::Logs { id, log_level, offset, limit, conn } => {
            let query = LogsQuery { offset: Some(offset), limit: Some(limit), log_level };
            print(&client(&conn)?.list_migration_task_logs(&id, &query).await?);
        }
        DcsCommand::Stop { ids, conn } => {
            let client = client(&conn)?;
            if let [id] = ids.as_slice() {
                print(&client.stop_migration_task(id).await?);
            } else {
                let mut all = BatchResult::default();
                for chunk in ids.chunks(MAX_BATCH) {
                    all.migration_tasks.extend(client.batch_stop_migration_tasks(chunk).await?.migration_tasks);
                }
                print(&all);
                check_batch(&all)?;
            }
        }
        DcsCommand::Delete { ids, conn } => {
            let deleted = client(&conn)?.delete_migration_tasks(&ids).await?;
            print(&serde_json::json!({ "task_id_list": deleted }));
        }
    }
    Ok(())
}

/// A batch answer is HTTP 200 even when items failed: those make the command fail.
fn check_batch(result: &BatchResult) -> Result<(), CliError> {
    let failed: Vec<_> = result.migration_tasks.iter().filter(|item| !item.succeeded()).collect();
    match failed.first() {
        None => Ok(()),
        Some(first) => Err(CliError::BatchItemsFailed {
            count: failed.len(),
            total: result.migration_tasks.len(),
            task: first.task_id.clone().unwrap_or_default(),
            code: first.error_code.clone().unwrap_or_default(),
            message: first.error_msg.clone().unwrap_or_default(),
        }),
    }
}
