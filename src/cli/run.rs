//! `dcs-migration-operator run`: the controller, with its flags (each also an env var).

use crate::controller::identity::{DEFAULT_AUDIENCE, Identities};
use crate::controller::{self, RunConfig, account, context, credentials};
use crate::dcs::chain::{self, Chain, Source};
use crate::dcs::{CredentialSource, RateLimit, RetryPolicy};
use crate::leader::{self, Elector};
use crate::metrics::Metrics;
use crate::server::{self, Health};
use crate::telemetry::{self, LogFormat};
use clap::{ArgAction, Args};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// How long in-flight reconciles get to finish after SIGTERM (Kubernetes' default grace period
/// is 30 s). Past it the process exits 1 without releasing the Lease, which then expires.
const DRAIN: Duration = Duration::from_secs(20);

/// Flags of `run`, in groups, each turned into its settings in one place.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub dcs: DcsArgs,
    #[command(flatten)]
    pub scope: ScopeArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
    #[command(flatten)]
    pub serving: ServingArgs,
    #[command(flatten)]
    pub election: ElectionArgs,
}

/// How the operator calls DCS.
#[derive(Debug, Args)]
pub struct DcsArgs {
    /// DCS calls per second, per account.
    #[arg(long, env = "DCS_QPS", default_value_t = 10.0)]
    pub qps: f64,
    /// DCS calls allowed at once after a quiet period, per account.
    #[arg(long, env = "DCS_BURST", default_value_t = 20)]
    pub burst: u32,
    /// Allowed endpoint host patterns, comma-separated (`dcs.*.myhuaweicloud.com`); empty: any.
    #[arg(long, env = "ALLOWED_ENDPOINTS", default_value = "", value_delimiter = ',')]
    pub allowed_endpoints: Vec<String>,
    /// Audience of the ServiceAccount tokens requested for `spec.identity` (what the cloud's identity
    /// provider is configured to accept).
    #[arg(long, env = "TOKEN_AUDIENCE", default_value = DEFAULT_AUDIENCE)]
    pub token_audience: String,
    /// ECS metadata endpoint, the default credential chain's link for an agency on the node (`none`: skip it).
    #[arg(long, env = "METADATA_ENDPOINT", default_value = chain::DEFAULT_METADATA_ENDPOINT)]
    pub metadata_endpoint: String,
}

/// Which RedisMigrations this process owns.
#[derive(Debug, Args)]
pub struct ScopeArgs {
    /// Only this namespace (empty: all).
    #[arg(long, env = "WATCH_NAMESPACE", default_value = "")]
    pub watch_namespace: String,
    /// Only RedisMigrations matching this label selector (one shard per deployment).
    #[arg(long, env = "LABEL_SELECTOR", default_value = "")]
    pub label_selector: String,
}

/// How often and how much at once.
#[derive(Debug, Args)]
pub struct TimingArgs {
    /// Observation interval of moving tasks, e.g. 2s, 500ms.
    #[arg(long, env = "TICK", default_value = "2s", value_parser = parse_duration)]
    pub tick: Duration,
    /// Stops (and restarts, deletes) due within this window are sent as one batch call per 50 tasks.
    #[arg(long, env = "STOP_BATCH_WINDOW", default_value = "1s", value_parser = parse_duration)]
    pub stop_batch_window: Duration,
    /// Resync interval of resources whose task ended (at least 10m).
    #[arg(long, env = "RESYNC", default_value = "10m", value_parser = parse_duration)]
    pub resync: Duration,
    /// How long a create with an unknown outcome gets to appear in the task list before it is
    /// sent again.
    #[arg(long, env = "CREATE_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub create_grace: Duration,
    /// Reconciles running at once; the others queue (each holds its object, its Kubernetes
    /// connection and its buffers, so this bounds memory and API server load).
    #[arg(long, env = "MAX_CONCURRENT_RECONCILES", default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_reconciles: u16,
    /// Threads that run the operator's work. It waits on the network far more than it computes (10,000
    /// resources took a sixth of one core), and each thread adds a malloc arena whose free memory the others
    /// cannot reuse: one thread peaked at 27.6 MiB with 1,000 resources where two peaked at 30.4.
    #[arg(long, env = "WORKER_THREADS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub worker_threads: u16,
    /// Progress counters (percent, offset, rates) are written to status at most this often while
    /// the phase holds; a phase change is written at once.
    #[arg(long, env = "PROGRESS_UPDATE_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub progress_update_interval: Duration,
    /// A streaming task's progress (offset and rates; its full copy is done) is read at most this
    /// often; a full migration's as often as status may show it (`--progress-update-interval`).
    /// Each state's first read comes one interval into it.
    #[arg(long, env = "STREAMING_PROGRESS_INTERVAL", default_value = "2m", value_parser = parse_duration)]
    pub streaming_progress_interval: Duration,
}

/// What the process serves and how it logs.
#[derive(Debug, Args)]
pub struct ServingArgs {
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Address of the Prometheus endpoint `/metrics`.
    #[arg(long, env = "METRICS_ADDR", default_value = "127.0.0.1:8080")]
    pub metrics_addr: SocketAddr,
    /// Address of the probes `/healthz` and `/readyz`.
    #[arg(long, env = "PROBE_ADDR", default_value = "127.0.0.1:8081")]
    pub probe_addr: SocketAddr,
}

/// Leader election.
#[derive(Debug, Args)]
pub struct ElectionArgs {
    /// Reconcile only while holding the Lease `--lease-name` in POD_NAMESPACE (required then);
    /// `--leader-elect` alone means true.
    #[arg(long, env = "LEADER_ELECT", action = ArgAction::Set, num_args = 0..=1, default_value_t = false, default_missing_value = "true")]
    pub leader_elect: bool,
    /// Name of the leader-election Lease (one per shard: see --label-selector).
    #[arg(long, env = "LEASE_NAME", default_value = "dcs-migration-operator")]
    pub lease_name: String,
}

fn non_empty(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl DcsArgs {
    /// The operator's default credentials (from its environment, in the SDK's chain order: keys, or a
    /// keyless identity resolved on first use) and the endpoint allow-list.
    fn defaults(&self) -> Result<credentials::Defaults, String> {
        let metadata = Some(self.metadata_endpoint.trim()).filter(|m| !m.is_empty() && *m != "none");
        let sources = chain::sources(|name| std::env::var(name).ok(), metadata);
        let credentials = match sources.first() {
            None => None,
            Some(Source::Environment(keys)) => Some(CredentialSource::Fixed(keys.clone())),
            Some(_) => {
                let chain =
                    Chain::new(sources).map_err(|e| format!("cannot build the credential chain's client: {e}"))?;
                Some(CredentialSource::Provided(Arc::new(chain)))
            }
        };
        Ok(credentials::Defaults {
            credentials,
            project_id: std::env::var(crate::dcs::credentials::ENV_PROJECT_ID).ok().and_then(|p| non_empty(&p)),
            allowed_endpoints: self.allowed_endpoints.iter().filter_map(|p| non_empty(p)).collect(),
            tenancy: Default::default(),
        })
    }

    /// How each account calls and observes, at this timing.
    fn accounts(&self, timing: &TimingArgs) -> account::Settings {
        account::Settings {
            tick: timing.tick,
            stats_interval: timing.progress_update_interval.max(timing.tick),
            streaming_stats_interval: timing.streaming_progress_interval,
            rate_limit: RateLimit { qps: self.qps, burst: self.burst },
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            batch_window: timing.stop_batch_window,
        }
    }
}

impl TimingArgs {
    fn settings(&self) -> context::Settings {
        context::Settings {
            tick: self.tick,
            create_grace: self.create_grace,
            active_resync: Duration::from_secs(60),
            resync: self.resync.max(Duration::from_secs(600)),
            stalled_retry: Duration::from_secs(300),
            identity_retry: Duration::from_secs(30),
            concurrency: self.max_concurrent_reconciles,
            progress_update_interval: self.progress_update_interval,
        }
    }
}

impl ElectionArgs {
    /// The Lease's settings when leader election is on; an error when its namespace is unknown.
    fn lease(&self) -> Result<Option<leader::Settings>, &'static str> {
        if !self.leader_elect {
            return Ok(None);
        }
        let namespace = std::env::var("POD_NAMESPACE").ok().and_then(|s| non_empty(&s));
        let namespace = namespace.ok_or("--leader-elect needs POD_NAMESPACE (the namespace of the Lease) to be set")?;
        Ok(Some(leader::Settings::new(&self.lease_name, namespace, leader::identity())))
    }
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

/// Runs the controller until SIGTERM or Ctrl-C: serves metrics and probes, waits for the Lease
/// when `--leader-elect` is on, and on SIGTERM stops taking reconciles, lets the ones in flight
/// finish, releases the Lease and exits 0.
pub async fn run(args: RunArgs) -> ExitCode {
    telemetry::init(args.serving.log_format, "info,kube=warn");
    match start(&args).await {
        Ok(started) => serve(args, started).await,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What `run` sets up before it may lead.
struct Started {
    client: kube::Client,
    defaults: credentials::Defaults,
    identities: Arc<Identities>,
    lease: Option<leader::Settings>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    stopping: watch::Receiver<bool>,
}

/// Checks the flags, binds the listeners, connects to Kubernetes (as `dcs-migration-operator/<version>`)
/// and starts serving metrics and probes and listening for signals.
async fn start(args: &RunArgs) -> Result<Started, String> {
    let lease = args.election.lease()?;
    let listeners = server::bind(args.serving.metrics_addr, args.serving.probe_addr)
        .await
        .map_err(|e| format!("cannot listen on {e}"))?;
    let client = kube_client().await.map_err(|e| format!("cannot reach Kubernetes: {e}"))?;
    let defaults = args.dcs.defaults()?;
    let identities = Identities::new(client.clone(), args.dcs.token_audience.clone())
        .map_err(|e| format!("cannot build the identity exchange's client: {e}"))?;
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::new(lease.is_some()));
    tracing::info!(listening = ?server::local_addrs(&listeners), "serving /metrics, /healthz and /readyz");
    server::spawn(listeners, server::router(metrics.clone(), health.clone()));
    let (stop, stopping) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: no new reconciles; letting those in flight finish");
        let _ = stop.send(true);
        shutdown_signal().await;
        tracing::warn!("second signal: exiting at once");
        std::process::exit(1);
    });
    Ok(Started { client, defaults, identities: Arc::new(identities), lease, metrics, health, stopping })
}

/// The Kubernetes client, as kubectl finds its config (in-cluster in a Pod), naming itself in the
/// user agent so that the API server's audit log tells its requests apart.
async fn kube_client() -> Result<kube::Client, kube::Error> {
    let mut config = kube::Config::infer().await.map_err(kube::Error::InferConfig)?;
    let agent = concat!("dcs-migration-operator/", env!("CARGO_PKG_VERSION"));
    config.headers.push((hyper::header::USER_AGENT, hyper::header::HeaderValue::from_static(agent)));
    kube::Client::try_from(config)
}

/// Waits for the Lease (when asked), runs the controller, drains and lets go.
async fn serve(args: RunArgs, started: Started) -> ExitCode {
    let Started { client, defaults, identities, lease, metrics, health, stopping } = started;
    let mut leadership = None;
    if let Some(settings) = lease {
        match Leadership::acquire(client.clone(), settings, &health, stopping.clone()).await {
            Some(held) => leadership = Some(held),
            None => return ExitCode::SUCCESS,
        }
    }
    metrics.set_leader(true);
    health.set_leading(true);
    let config = RunConfig {
        watch_namespace: non_empty(&args.scope.watch_namespace),
        label_selector: non_empty(&args.scope.label_selector),
        defaults,
        identities,
        accounts: args.dcs.accounts(&args.timing),
        settings: args.timing.settings(),
        metrics: metrics.clone(),
        health,
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        tick_ms = args.timing.tick.as_millis() as u64,
        qps = args.dcs.qps,
        "starting the controller"
    );
    let drained = tokio::select! {
        () = controller::run(client, config, stopped(stopping.clone())) => true,
        () = async {
            stopped(stopping.clone()).await;
            tokio::time::sleep(DRAIN).await;
        } => false,
    };
    metrics.set_leader(false);
    if !drained {
        tracing::warn!(
            drain_s = DRAIN.as_secs(),
            "reconciles still in flight after the drain period; exiting without releasing the lease (it expires)"
        );
        return ExitCode::FAILURE;
    }
    if let Some(leadership) = leadership {
        leadership.release().await;
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Resolves once shutdown was asked for.
async fn stopped(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// The Lease held by this replica: renewed in the background; losing it ends the process at once.
struct Leadership {
    release: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Leadership {
    /// Waits for the Lease; `None` when shutdown came first.
    async fn acquire(
        client: kube::Client,
        settings: leader::Settings,
        health: &Arc<Health>,
        stopping: watch::Receiver<bool>,
    ) -> Option<Self> {
        tracing::info!(
            lease = settings.name,
            namespace = settings.namespace,
            identity = settings.identity,
            "waiting for the lease"
        );
        let mut elector = Elector::new(client, settings);
        let standby = health.clone();
        tokio::select! {
            () = elector.acquire(|_| standby.set_standby_ok()) => Some(Self::hold(elector)),
            () = stopped(stopping) => {
                tracing::info!("stopped while standing by");
                None
            }
        }
    }

    fn hold(mut elector: Elector) -> Self {
        let (release, released) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            tokio::select! {
                lost = elector.hold() => {
                    // Exiting is the one way to be sure nothing of this replica acts any more
                    // (reconciles, observation loops, batched stops); Kubernetes restarts it as a standby.
                    tracing::error!(lease = elector.settings().name, reason = %lost, "lost the lease: exiting at once");
                    std::process::exit(1);
                }
                _ = released => {}
            }
            match tokio::time::timeout(Duration::from_secs(5), elector.release()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "could not release the lease; it expires by itself"),
                Err(_) => tracing::warn!("releasing the lease timed out; it expires by itself"),
            }
        });
        Self { release, task }
    }

    /// Stops renewing and gives the Lease up, so that a standby takes over at once.
    async fn release(self) {
        let _ = self.release.send(());
        let _ = self.task.await;
    }
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

    #[derive(Debug, clap::Parser)]
    struct Probe {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn runtime_flags_have_the_documented_defaults_and_leader_elect_takes_an_optional_value() {
        use clap::Parser;
        let defaults = Probe::try_parse_from(["x"]).unwrap().run;
        assert_eq!(defaults.serving.metrics_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(defaults.serving.probe_addr.to_string(), "127.0.0.1:8081");
        assert!(!defaults.election.leader_elect);
        assert_eq!(defaults.election.lease_name, "dcs-migration-operator");
        assert!(Probe::try_parse_from(["x", "--leader-elect"]).unwrap().run.election.leader_elect);
        assert!(Probe::try_parse_from(["x", "--leader-elect=true"]).unwrap().run.election.leader_elect);
        assert!(!Probe::try_parse_from(["x", "--leader-elect=false"]).unwrap().run.election.leader_elect);
    }
}
