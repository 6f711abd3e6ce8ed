//! The operator's own HTTP endpoints: `/metrics` on `--metrics-addr`, `/healthz` and `/readyz` on
//! `--probe-addr` (both on one listener when the two addresses are the same).
//!
//! - `/healthz`: 200 while the process runs (its runtime answers requests).
//! - `/readyz`: 200 once this replica does its job; 503 with the reason otherwise:
//!   - leader election off, or this replica leads: ready once the RedisMigration cache has synced
//!     (the initial list of the watch is complete), never before;
//!   - standby (leader election on, another replica holds the Lease): ready once this replica has
//!     reached the API server and read the Lease, i.e. it is able to take over. A standby takes no
//!     traffic (the operator serves none but scrapes), and an unready standby would stall the
//!     rolling update of a two-replica Deployment (maxUnavailable rounds down to 0) and count as
//!     a disruption for the PodDisruptionBudget. Which replica leads shows in
//!     `dcs_migration_leader` and in the Lease's `holderIdentity`.

use crate::metrics::{CONTENT_TYPE, Metrics};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;

/// What `/readyz` answers from.
#[derive(Debug)]
pub struct Health {
    leader_election: bool,
    leading: AtomicBool,
    standby_ok: AtomicBool,
    synced: AtomicBool,
}

impl Health {
    /// Starts unready.
    pub fn new(leader_election: bool) -> Self {
        Self {
            leader_election,
            leading: AtomicBool::new(false),
            standby_ok: AtomicBool::new(false),
            synced: AtomicBool::new(false),
        }
    }

    /// The RedisMigration cache holds the complete initial list.
    pub fn set_synced(&self) {
        self.synced.store(true, Ordering::Release);
    }

    /// This replica holds the Lease (or stopped holding it).
    pub fn set_leading(&self, leading: bool) {
        self.leading.store(leading, Ordering::Release);
    }

    /// As a standby, this replica has read the Lease: it can take over.
    pub fn set_standby_ok(&self) {
        self.standby_ok.store(true, Ordering::Release);
    }

    /// Whether the replica is ready, and why (or why not).
    pub fn readiness(&self) -> (bool, &'static str) {
        let synced = self.synced.load(Ordering::Acquire);
        if self.leader_election && !self.leading.load(Ordering::Acquire) {
            return if self.standby_ok.load(Ordering::Acquire) {
                (true, "ready: standby, another replica holds the lease\n")
            } else {
                (false, "not ready: waiting to read the lease\n")
            };
        }
        if synced {
            (true, "ready: watches synced, reconciling\n")
        } else {
            (false, "not ready: waiting for the RedisMigration watch to sync\n")
        }
    }
}

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// The routes: `/metrics`, `/healthz` and `/readyz` (served on both listeners when they differ,
/// which is harmless and makes a wrong port in a probe or scrape config still work).
pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(serve_readyz))
        .with_state(Shared { metrics, health })
}

async fn serve_metrics(State(shared): State<Shared>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], shared.metrics.encode())
}

async fn serve_readyz(State(shared): State<Shared>) -> impl IntoResponse {
    match shared.health.readiness() {
        (true, why) => (StatusCode::OK, why),
        (false, why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

/// Binds the metrics and probe listeners (one when the addresses are equal). Fails with a
/// message naming the flag when an address cannot be bound.
pub async fn bind(metrics_addr: SocketAddr, probe_addr: SocketAddr) -> Result<Vec<TcpListener>, String> {
    let metrics = TcpListener::bind(metrics_addr).await.map_err(|e| format!("--metrics-addr {metrics_addr}: {e}"))?;
    if probe_addr == metrics_addr {
        return Ok(vec![metrics]);
    }
    let probes = TcpListener::bind(probe_addr).await.map_err(|e| format!("--probe-addr {probe_addr}: {e}"))?;
    Ok(vec![metrics, probes])
}

/// Serves the routes on the listeners until the process ends.
pub fn spawn(listeners: Vec<TcpListener>, routes: Router) {
    for listener in listeners {
        let routes = routes.clone();
        let addr = listener.local_addr().ok();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, routes).await {
                tracing::error!(?addr, error = %e, "the metrics/probe server stopped");
            }
        });
    }
}

/// The address a listener is bound to (useful with port 0).
pub fn local_addrs(listeners: &[TcpListener]) -> Vec<SocketAddr> {
    listeners.iter().filter_map(|l| l.local_addr().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_election_ready_only_once_synced() {
        let h = Health::new(false);
        assert!(!h.readiness().0);
        h.set_synced();
        assert!(h.readiness().0);
    }

    #[test]
    fn with_election_the_leader_is_ready_once_synced_and_a_standby_once_it_read_the_lease() {
        let h = Health::new(true);
        assert!(!h.readiness().0, "nothing known yet");
        h.set_standby_ok();
        assert_eq!(h.readiness(), (true, "ready: standby, another replica holds the lease\n"));
        h.set_leading(true);
        assert!(!h.readiness().0, "a new leader is unready until its watch synced");
        h.set_synced();
        assert!(h.readiness().0);
    }
}
