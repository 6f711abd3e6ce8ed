use clap::Parser;
use dcs_migration_operator::cli::{self, Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(cli.worker_threads()).enable_all().build();
    match runtime {
        // The work runs on the runtime's workers, not on this thread: glibc gives every thread that allocates
        // an arena of its own, whose free memory the others cannot reuse. Run on this thread, the controller
        // filled the main arena and its spawned tasks a second one (28 + 18 MB of heap at 7,000 resources).
        Ok(runtime) => runtime.block_on(async { tokio::spawn(cli::run(cli)).await.unwrap_or(ExitCode::FAILURE) }),
        Err(e) => {
            eprintln!("dcs-migration-operator: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}
