//! `dcs-simulator`: serves the DCS migration-task API (see `dcs_migration_operator::simulator`).
//! Prints its URL as the first line of stdout, serves until SIGTERM/SIGINT, then exits 0.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use dcs_migration_operator::simulator::{self, Config, IdentityConfig, Jwks, OidcIssuer, Trust, trust};

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
    /// The OIDC issuer id tokens must name (`iss`), e.g. the test API server's service-account issuer.
    #[arg(long, env = "DCS_SIM_OIDC_ISSUER", requires_all = ["oidc_jwks", "oidc_audience"])]
    oidc_issuer: Option<String>,
    /// A file with the issuer's keys (JWKS, e.g. the API server's `/openid/v1/jwks`).
    #[arg(long, env = "DCS_SIM_OIDC_JWKS", requires = "oidc_issuer")]
    oidc_jwks: Option<PathBuf>,
    /// The audience id tokens must carry (`aud`).
    #[arg(long, env = "DCS_SIM_OIDC_AUDIENCE", requires = "oidc_issuer")]
    oidc_audience: Option<String>,
    /// `IDP_ID=SUBJECT`: the identity provider trusts this subject (a trailing `*` matches a prefix). Repeatable.
    #[arg(long = "trust-idp", value_parser = trust_entry)]
    trust_idp: Vec<(String, String)>,
    /// `AGENCY_URN=SUBJECT`: the agency trusts this subject (a trailing `*` matches a prefix). Repeatable.
    #[arg(long = "trust-agency", value_parser = trust_entry)]
    trust_agency: Vec<(String, String)>,
    /// The token `POST /_sim/pod-identity` expects in `Authorization` (default: pod identity off).
    #[arg(long, env = "DCS_SIM_POD_IDENTITY_TOKEN", hide_env_values = true)]
    pod_identity_token: Option<String>,
    /// Serve an agency's credentials on the ECS metadata paths.
    #[arg(long)]
    metadata_credentials: bool,
    /// How long issued temporary credentials live (`3600`, `20s`, `1h`, `1m30s`).
    #[arg(long, env = "DCS_SIM_CREDENTIAL_LIFETIME", default_value = "1h", value_parser = parse_duration)]
    credential_lifetime: Duration,
}

fn trust_entry(s: &str) -> Result<(String, String), String> {
    trust::parse_entry(s).map_err(|e| e.to_string())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let parsed = match s.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let friendly: jiff::SignedDuration = s.parse().map_err(|e| format!("{e}"))?;
            Duration::try_from(friendly).map_err(|e| format!("{e}"))?
        }
    };
    if parsed.is_zero() { Err("must be longer than zero".to_owned()) } else { Ok(parsed) }
}

fn identity(args: &Args) -> Result<IdentityConfig, String> {
    let oidc = match (&args.oidc_issuer, &args.oidc_jwks, &args.oidc_audience) {
        (Some(issuer), Some(jwks), Some(audience)) => {
            let document = std::fs::read(jwks).map_err(|e| format!("cannot read {}: {e}", jwks.display()))?;
            let jwks = Jwks::parse(&document).map_err(|e| format!("{}: {e}", jwks.display()))?;
            Some(OidcIssuer { issuer: issuer.clone(), audience: audience.clone(), jwks })
        }
        _ => None,
    };
    let mut trust = Trust::default();
    for (id, subject) in &args.trust_idp {
        trust.add_idp(id.clone(), subject.clone());
    }
    for (urn, subject) in &args.trust_agency {
        trust.add_agency(urn.clone(), subject.clone());
    }
    Ok(IdentityConfig {
        oidc,
        trust,
        pod_identity_token: args.pod_identity_token.clone(),
        metadata_credentials: args.metadata_credentials,
        credential_lifetime: args.credential_lifetime,
    })
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
    let identity = match identity(&args) {
        Ok(identity) => identity,
        Err(e) => {
            eprintln!("dcs-simulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = Config::new(args.access_key, args.secret_key, args.project_id)
        .with_phase(Duration::from_secs_f64(args.phase_seconds))
        .with_release_after(args.release_after.map(Duration::from_secs_f64))
        .with_swap_ips(args.swap_ips)
        .with_identity(identity);
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
