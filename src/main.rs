use clap::Parser;
use dcs_migration_operator::cli::{self, Cli};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    cli::run(Cli::parse()).await
}
