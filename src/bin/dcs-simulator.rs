//! `dcs-simulator`: serves the DCS migration-task API (see `dcs_migration_operator::simulator`).
//! Prints its URL as the first line of stdout, serves until SIGTERM/SIGINT, then exits 0.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use dcs_migration_operator::simulator::{self, Config};

/// Simulates the Huawei Cloud DCS data-migration API on plain HTTP.
#[derive(Debug, Parser)]
#[command(name = "dcs-simulator", version)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, env = "DCS_SIM_LISTEN", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The access key accepted.
    #[arg(long, env = "DCS_SIM_ACCESS_KEY")]
    access_key: String,
    /// Its secret key.
    #[arg(long, env = "DCS_SIM_SECRET_KEY", hide_env_values = true)]
    secret_key: String,
    /// The project id every path must carry.
    #[arg(long, env = "DCS_SIM_PROJECT_ID")]
    project_id: String,
    /// How long each transitional state lasts, in seconds (fractions allowed).
    #[arg(long, env = "DCS_SIM_PHASE_SECONDS", default_value_t = 2.0, value_parser = parse_seconds)]
    phase_seconds: f64,
    /// Seconds after which an ended online task becomes RELEASED (default: never).
    #[arg(long, env = "DCS_SIM_RELEASE_AFTER", value_parser = parse_seconds)]
    release_after: Option<f64>,
    /// Whether source and target report each other's IP after an IP exchange (`false`: they keep
    /// their own; the switch's outcome is then only in the top-level `task_status`).
    #[arg(long, env = "DCS_SIM_SWAP_IPS", default_value_t = true, action = clap::ArgAction::Set)]
    swap_ips: bool,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if v.is_finite() && (0.0..=86_400.0 * 365.0).contains(&v) {
        Ok(v)
    } else {
        Err("must be a number of seconds between 0 and one year".to_owned())
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = Config::new(args.access_key, args.secret_key, args.project_id)
        .with_phase(Duration::from_secs_f64(args.phase_seconds))
        .with_release_after(args.release_after.map(Duration::from_secs_f64))
        .with_swap_ips(args.swap_ips);
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("dcs-simulator: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("dcs-simulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "http://{addr}");
        let _ = out.flush();
    }
    tracing::info!(%addr, phase_seconds = args.phase_seconds, "dcs-simulator listening");
    match simulator::serve_with_shutdown(config, listener, shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("dcs-simulator stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dcs-simulator: {e}");
            ExitCode::FAILURE
        }
    }
}
