//! `dcs-migration-operator run`: the controller, with its flags (each also an env var).

use crate::controller::{self, RunConfig, account, context, credentials};
use crate::dcs::{Credentials, RateLimit, RetryPolicy};
use crate::telemetry::{self, LogFormat};
use clap::Args;
use std::process::ExitCode;
use std::time::Duration;

/// Flags of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// DCS calls per second, per account.
    #[arg(long, env = "DCS_QPS", default_value_t = 10.0)]
    pub qps: f64,
    /// DCS calls allowed at once after a quiet period, per account.
    #[arg(long, env = "DCS_BURST", default_value_t = 20)]
    pub burst: u32,
    /// Only this namespace (empty: all).
    #[arg(long, env = "WATCH_NAMESPACE", default_value = "")]
    pub watch_namespace: String,
    /// Only RedisMigrations matching this label selector (one shard per deployment).
    #[arg(long, env = "LABEL_SELECTOR", default_value = "")]
    pub label_selector: String,
    /// Observation interval of moving tasks, e.g. 2s, 500ms.
    #[arg(long, env = "TICK", default_value = "2s", value_parser = parse_duration)]
    pub tick: Duration,
    /// Stops (and restarts) due within this window are sent as one batch call per 50 tasks.
    #[arg(long, env = "STOP_BATCH_WINDOW", default_value = "1s", value_parser = parse_duration)]
    pub stop_batch_window: Duration,
    /// Resync interval of resources whose task ended (at least 10m).
    #[arg(long, env = "RESYNC", default_value = "10m", value_parser = parse_duration)]
    pub resync: Duration,
    /// How long a create with an unknown outcome gets to appear in the task list before it is
    /// sent again.
    #[arg(long, env = "CREATE_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub create_grace: Duration,
    /// Allowed endpoint host patterns, comma-separated (`dcs.*.myhuaweicloud.com`); empty: any.
    #[arg(long, env = "ALLOWED_ENDPOINTS", default_value = "", value_delimiter = ',')]
    pub allowed_endpoints: Vec<String>,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Parses `500ms`, `2s`, `10m`, `1h` or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).map_or((t, "s"), |i| t.split_at(i));
    let value: f64 = number.parse().map_err(|_| format!("{text:?} is not a duration such as 500ms, 2s or 10m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{text:?}: unit must be ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

/// Runs the controller until SIGTERM or Ctrl-C.
pub async fn run(args: RunArgs) -> ExitCode {
    telemetry::init(args.log_format, "info,kube=warn");
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot reach Kubernetes: {e}");
            return ExitCode::FAILURE;
        }
    };
    let non_empty = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let config = RunConfig {
        watch_namespace: non_empty(&args.watch_namespace),
        label_selector: non_empty(&args.label_selector),
        defaults: credentials::Defaults {
            credentials: Credentials::from_env(),
            project_id: std::env::var(crate::dcs::credentials::ENV_PROJECT_ID).ok().and_then(|p| non_empty(&p)),
            allowed_endpoints: args.allowed_endpoints.iter().filter_map(|p| non_empty(p)).collect(),
        },
        accounts: account::Settings {
            tick: args.tick,
            stats_interval: (args.tick * 5).max(Duration::from_secs(5)),
            rate_limit: RateLimit { qps: args.qps, burst: args.burst },
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            batch_window: args.stop_batch_window,
        },
        settings: context::Settings {
            tick: args.tick,
            create_grace: args.create_grace,
            active_resync: Duration::from_secs(60),
            resync: args.resync.max(Duration::from_secs(600)),
            stalled_retry: Duration::from_secs(300),
        },
    };
    tracing::info!(version = env!("CARGO_PKG_VERSION"), tick_ms = args.tick.as_millis() as u64, qps = args.qps, "starting the controller");
    controller::run(client, config, shutdown_signal()).await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("2 weeks").is_err());
    }
}
