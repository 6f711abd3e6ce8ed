//! The DCS simulator: the migration-task API of `dcs-api.md` on real HTTP, for tests and demos.
//!
//! It serves the 15 operations and ShowJobInfo on their real paths (`/v2/{project_id}/…`) with the real bodies and
//! status codes, checks SDK-HMAC-SHA256 signatures for one configured key, runs each task through
//! the real lifecycle (see [`lifecycle`]) on configurable timings and keeps everything in memory.
//!
//! Quirks reproduced on purpose, because clients must cope with them:
//! - a well-formed id that matches no task is 400 `DCS.4133` ("Instance job is not found."), not 404;
//! - CreateOnlineMigrationTask answers only `{"instance_id", "job_id"}`; the job (ShowJobInfo,
//!   `GET /v2/{project_id}/jobs/{job_id}`) reads `RUNNING` while the task is `CREATING`, then
//!   `SUCCESS`, or `FAIL` with a `fail_reason` (see [`job`]); CreateMigrationTask answers
//!   `{"id", "name", "status": "MIGRATING", "error": ""}` where `name` is the *target instance's* name;
//! - after DeleteMigrationTask the task leaves the list at once, but show keeps answering its last
//!   status (bounded tombstones);
//! - show and stop echo the Redis passwords given at creation/configuration in clear;
//! - batch-stop/batch-restart answer 200 with per-item `{"result": "failed", …}` for missing tasks or
//!   tasks in the wrong state (`DCS.4957`); a malformed id fails the whole batch call (`DCS.4855`),
//!   elsewhere a malformed id is `DCS.4070`; more than 50 ids is `DCS.4800`;
//! - the list's `name` filter matches substrings (clients must match exact names themselves);
//! - exchange-ip, rollback-ip and sync-stop answer 204 with no body; during a switch-over the
//!   top-level `task_status` reads `EXCHANGING`, then `EXCHANGE_SUCCESS` / `ROLLBACK_SUCCESS` (or
//!   `…_FAILED`) until the next switch; the instances swap IPs after an exchange only with
//!   `swap_ips` (the default; `--swap-ips false` keeps them; see [`switchover`]);
//! - `error_message` (the failure reason) is on ListMigrationTask rows only, never on show; a
//!   failure also writes an `ERROR` line to the task's log (ListMigrationTaskLogs, newest first,
//!   `log_level` filter);
//! - the incremental state is spelled `INCRMIGEATING`; timestamps come in three formats;
//! - stats counters are strings, except `target_ops`/`target_input_kbps` (numbers), and every
//!   counter is a number for backup imports.
//!
//! Admin API (unsigned, same listener): `GET /_sim/state`, `GET|PUT|DELETE /_sim/faults`,
//! `GET /_sim/log[?sinceMs=N]`, `PUT /_sim/tasks/{id}` (force a status), `DELETE /_sim/tasks/{id}`
//! (the task vanishes out of band, no tombstone), `DELETE /_sim/tasks` (every task vanishes: the
//! state of a simulator restarted with its memory lost), `PUT /_sim/credentials` (replace the key),
//! `PUT /_sim/trust` (replace the keyless identities' trust lists, see [`identity`]).
//!
//! Keyless identities (dcs-api.md §13, [`exchange`]) on the same listener: IAM federation
//! (`/v3.0/OS-AUTH/id-token/tokens`, `/v3.0/OS-CREDENTIAL/securitytokens`), STS
//! (`/v5/agencies/assume-with-oidc`), ECS metadata and CCE pod identity (`/_sim/pod-identity`). Id tokens
//! are verified ([`jwt`]: RS256 against the issuer's JWKS, issuer, audience, expiry) and their subject
//! checked against the trust lists ([`trust`]); the temporary credentials issued are accepted by the DCS
//! paths with their `X-Security-Token` until they expire. `/_sim/state` adds `identities` (DCS calls
//! per access key) and `refusals` (`expired`, `signature`, `untrusted`).
//! Faults include hostile answers (`garbageRate`, `garbage`: see [`faults::Garbage`]) and doomed
//! effects: `switchFailRate` (an accepted exchange/rollback ends `EXCHANGE_FAILED` /
//! `ROLLBACK_FAILED`) and `provisionFailRate` (a created online task's job ends `FAIL` and the
//! task `FAILED`). `PUT /_sim/tasks/{id}` with `{"status": "FAILED", "errorMessage": "…"}` also
//! logs the message at `ERROR` level. `/_sim/log`
//! entries carry `receivedAtMs` (arrival, before injected latency) besides `atMs` (answer), and for a
//! call whose signature verified, `accessKey` and (temporary credentials) the `subject` they were issued to.
//!
//! Use it in-process with [`spawn`], or serve a listener with [`serve`] / [`serve_with_shutdown`]
//! (what the `dcs-simulator` binary does).

pub mod admin;
pub mod auth;
pub mod body;
pub mod error;
pub mod exchange;
pub mod faults;
pub mod handlers;
pub mod identity;
pub mod job;
pub mod jwt;
pub mod lifecycle;
pub mod routes;
pub mod server;
pub mod shared;
pub mod store;
pub mod switchover;
pub mod trust;
pub mod wire_time;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use error::ApiError;
pub use faults::Faults;
pub use identity::IdentityConfig;
pub use jwt::{Jwks, OidcIssuer};
pub use routes::Operation;
pub use server::BODY_LIMIT;
pub use trust::Trust;

/// What the simulator accepts and how fast tasks move.
#[derive(Clone)]
pub struct Config {
    /// The one access key accepted.
    pub access_key: String,
    /// Its secret key.
    pub secret_key: String,
    /// The project id every path must carry.
    pub project_id: String,
    /// How long each transitional state lasts (default 2 s).
    pub phase: Duration,
    /// How long after ending an online task becomes `RELEASED` (default: never).
    pub release_after: Option<Duration>,
    /// Whether source and target report each other's IP after an exchange (default: true).
    pub swap_ips: bool,
    /// Keyless identities (dcs-api.md §13): OIDC issuer, trust lists, metadata, pod identity.
    pub identity: IdentityConfig,
}

impl Config {
    /// A configuration with the default timings (2 s phases, no release).
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>, project_id: impl Into<String>) -> Self {
        Self {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            project_id: project_id.into(),
            phase: Duration::from_secs(2),
            release_after: None,
            swap_ips: true,
            identity: IdentityConfig::default(),
        }
    }

    /// Sets the phase duration.
    pub fn with_phase(mut self, phase: Duration) -> Self {
        self.phase = phase;
        self
    }

    /// Sets the release delay of ended online tasks.
    pub fn with_release_after(mut self, release_after: Option<Duration>) -> Self {
        self.release_after = release_after;
        self
    }

    /// Sets whether the instances swap IPs after an exchange.
    pub fn with_swap_ips(mut self, swap_ips: bool) -> Self {
        self.swap_ips = swap_ips;
        self
    }

    /// Sets the keyless identities served.
    pub fn with_identity(mut self, identity: IdentityConfig) -> Self {
        self.identity = identity;
        self
    }

    fn shared(&self) -> Arc<shared::Shared> {
        let timing =
            lifecycle::Timing { phase: self.phase, release_after: self.release_after, swap_ips: self.swap_ips };
        let credentials =
            auth::Credentials { access_key: self.access_key.clone(), secret_key: self.secret_key.clone() };
        Arc::new(shared::Shared::new(
            store::TaskStore::new(timing),
            credentials,
            self.project_id.clone(),
            identity::Registry::new(self.identity.clone()),
        ))
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("access_key", &self.access_key)
            .field("secret_key", &"***")
            .field("project_id", &self.project_id)
            .field("phase", &self.phase)
            .field("release_after", &self.release_after)
            .field("swap_ips", &self.swap_ips)
            .field("identity", &self.identity)
            .finish()
    }
}

/// Serves the simulator on `listener` until the process ends.
pub async fn serve(config: Config, listener: TcpListener) -> io::Result<()> {
    serve_with_shutdown(config, listener, std::future::pending()).await
}

/// Serves the simulator on `listener` until `shutdown` completes, then closes its connections
/// (waiting up to two seconds for calls in flight).
pub async fn serve_with_shutdown(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    server::run(config.shared(), listener, shutdown).await
}

/// A simulator running on its own thread and runtime, on `127.0.0.1` and a free port. Dropping it
/// (or calling [`RunningSimulator::shutdown`]) stops it.
pub struct RunningSimulator {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Starts a simulator on `127.0.0.1:0` in a background thread. Callable from sync and async code.
pub fn spawn(config: Config) -> io::Result<RunningSimulator> {
    spawn_at(config, SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// Starts a simulator on `addr` in a background thread: with the address of one that was shut
/// down, a restart on the same port with its state lost (clients see refused connections
/// between the two). Callable from sync and async code.
pub fn spawn_at(config: Config, addr: SocketAddr) -> io::Result<RunningSimulator> {
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("dcs-simulator")
        .enable_all()
        .build()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new().name("dcs-simulator".into()).spawn(move || {
        runtime.block_on(async move {
            match TcpListener::from_std(std_listener) {
                Ok(listener) => {
                    let shutdown = async {
                        let _ = stopped.await;
                    };
                    if let Err(e) = serve_with_shutdown(config, listener, shutdown).await {
                        tracing::error!(error = %e, "simulator stopped");
                    }
                }
                Err(e) => tracing::error!(error = %e, "simulator could not listen"),
            }
        });
        runtime.shutdown_timeout(Duration::from_secs(1));
    })?;
    Ok(RunningSimulator { addr, stop: Some(stop), thread: Some(thread) })
}

impl RunningSimulator {
    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the simulator and waits for its thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
