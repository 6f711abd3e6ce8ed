use clap::Parser;
use dcs_migration_operator::cli::{self, Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(cli.worker_threads()).enable_all().build();
    match runtime {
        Ok(runtime) => runtime.block_on(cli::run(cli)),
        Err(e) => {
            eprintln!("dcs-migration-operator: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}
