//! The command line of `dcs-migration-operator` (design.md, "CLI").

pub mod dcs;
pub mod run;

use clap::{Parser, Subcommand};

/// Kubernetes operator for Huawei Cloud DCS data-migration tasks.
#[derive(Debug, Parser)]
#[command(name = "dcs-migration-operator", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller (kubeconfig as kubectl finds it, in-cluster config in a pod).
    Run(Box<run::RunArgs>),
    /// Call the DCS migration-task API directly: check credentials and reachability, inspect
    /// or stop tasks. Credentials come from HUAWEICLOUD_SDK_AK / _SK / _SECURITY_TOKEN.
    Dcs {
        #[command(subcommand)]
        op: dcs::DcsCommand,
    },
    /// Print the RedisMigration CustomResourceDefinition as YAML (what `crds/` holds).
    Crd,
    /// Print the version.
    Version,
}

impl Cli {
    /// Threads of the async runtime: `--worker-threads` for the controller, one for the short commands.
    pub fn worker_threads(&self) -> usize {
        match &self.command {
            Command::Run(args) => usize::from(args.timing.worker_threads),
            _ => 1,
        }
    }
}

/// Runs the command line and returns the process exit code.
pub async fn run(cli: Cli) -> std::process::ExitCode {
    match cli.command {
        Command::Run(args) => run::run(*args).await,
        Command::Dcs { op } => dcs::run(op).await,
        Command::Crd => {
            print!("{}", crate::crd::crd_yaml());
            std::process::ExitCode::SUCCESS
        }
        Command::Version => {
            println!("dcs-migration-operator {}", env!("CARGO_PKG_VERSION"));
            std::process::ExitCode::SUCCESS
        }
    }
}
