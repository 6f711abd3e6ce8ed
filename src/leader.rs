//! Leader election on a `coordination.k8s.io/v1` Lease (`--leader-elect`, `--lease-name`, in
//! `POD_NAMESPACE`), so that two replicas never act at once.
//!
//! The same protocol as client-go's `leaderelection` with a `LeaseLock`:
//! - every write is a `replace` carrying the `resourceVersion` that was read, so of two replicas
//!   racing for the Lease exactly one wins (the other gets 409 Conflict);
//! - a standby takes the Lease when its holder is empty, or when the Lease record has not changed
//!   for `duration` **as measured by the standby's own clock** since it first saw that record (no
//!   comparison of clocks across machines);
//! - the leader renews every `renew_every`; if no renewal succeeded within `renew_deadline`
//!   (shorter than `duration`) of the last one, or the Lease names another holder, leadership is
//!   lost and the caller must stop acting at once (the operator exits; Kubernetes restarts it as
//!   a standby). The leader stops `duration - renew_deadline` before any standby may take over;
//! - on shutdown the leader releases the Lease (empty holder, 1 s duration), so a standby takes
//!   over at its next retry instead of waiting for the Lease to expire.
//!
//! API calls (for RBAC): `get`, `create`, `update` on `leases` (group `coordination.k8s.io`) in
//! `POD_NAMESPACE`.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, ResourceExt};
use std::time::Duration;
use tokio::time::Instant;

/// Timings and names of the election.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Lease name (`--lease-name`).
    pub name: String,
    /// Lease namespace (`POD_NAMESPACE`).
    pub namespace: String,
    /// This replica's identity (`POD_NAME`, else host name and a random suffix).
    pub identity: String,
    /// `leaseDurationSeconds`: how long a standby waits on an unchanged Lease before taking it.
    pub duration: Duration,
    /// How often the leader renews.
    pub renew_every: Duration,
    /// The leader gives up when no renewal succeeded for this long.
    pub renew_deadline: Duration,
    /// How often a standby looks at the Lease (and a failed renewal is tried again).
    pub retry_every: Duration,
}

impl Settings {
    /// Lease duration 15 s, renewal every 5 s, renew deadline 10 s, standby retry 2 s.
    pub fn new(name: impl Into<String>, namespace: impl Into<String>, identity: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            renew_deadline: Duration::from_secs(10),
            retry_every: Duration::from_secs(2),
        }
    }
}

/// This replica's identity: `POD_NAME`, else the host name, with a random suffix when neither
/// is a pod name (two processes on one host must differ).
pub fn identity() -> String {
    match std::env::var("POD_NAME").ok().filter(|n| !n.trim().is_empty()) {
        Some(pod) => pod.trim().to_owned(),
        None => {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            let host = if host.trim().is_empty() { "dcs-migration-operator" } else { host.trim() };
            format!("{host}-{:08x}", rand::random::<u32>())
        }
    }
}

/// Why leadership ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lost {
    /// The Lease names another holder.
    TakenBy(String),
    /// No renewal succeeded within the renew deadline.
    RenewDeadline(String),
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TakenBy(holder) => write!(f, "the Lease is now held by {holder:?}"),
            Self::RenewDeadline(e) => write!(f, "the Lease could not be renewed in time: {e}"),
        }
    }
}

/// What one look at the Lease ended in.
#[derive(Debug)]
enum Attempt {
    /// This replica holds the Lease (taken or renewed now).
    Holding,
    /// Another replica holds it and it has not expired.
    HeldBy(String),
    /// Another write came first (409); look again.
    Conflict,
}

/// The Lease record as last seen, and when (by this process's clock) it was first seen so.
#[derive(Debug, Clone, PartialEq)]
struct Observed {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    duration_s: Option<i32>,
    transitions: Option<i32>,
}

/// A participant in the election.
pub struct Elector {
    api: Api<Lease>,
    settings: Settings,
    observed: Option<(Observed, Instant)>,
    /// When the request of the last successful take or renewal was sent.
    last_renewed: Option<Instant>,
}

impl Elector {
    pub fn new(client: kube::Client, settings: Settings) -> Self {
        Self { api: Api::namespaced(client, &settings.namespace), settings, observed: None, last_renewed: None }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Waits until this replica holds the Lease. `on_standby` is called after each successful
    /// look at a Lease held by another replica.
    pub async fn acquire(&mut self, mut on_standby: impl FnMut(&str)) {
        let mut last_holder = None;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Holding) => {
                    tracing::info!(
                        lease = self.settings.name,
                        identity = self.settings.identity,
                        "acquired the lease: this replica leads"
                    );
                    return;
                }
                Ok(Attempt::HeldBy(holder)) => {
                    if last_holder.as_ref() != Some(&holder) {
                        tracing::info!(lease = self.settings.name, %holder, "another replica leads; standing by");
                    }
                    on_standby(&holder);
                    last_holder = Some(holder);
                }
                Ok(Attempt::Conflict) => continue,
                Err(e) => {
                    tracing::warn!(lease = self.settings.name, error = %e, "cannot read or take the lease; retrying")
                }
            }
            tokio::time::sleep(jittered(self.settings.retry_every)).await;
        }
    }

    /// Keeps renewing the Lease; returns when leadership is lost (the caller must stop acting at
    /// once). Never returns while renewals succeed.
    pub async fn hold(&mut self) -> Lost {
        loop {
            let next = self.last_renewed.map_or_else(Instant::now, |t| t + self.settings.renew_every);
            tokio::time::sleep_until(next).await;
            loop {
                let deadline = self.last_renewed.map_or_else(Instant::now, |t| t + self.settings.renew_deadline);
                let outcome = tokio::time::timeout_at(deadline, self.try_acquire_or_renew()).await;
                match outcome {
                    Ok(Ok(Attempt::Holding)) => break,
                    Ok(Ok(Attempt::HeldBy(holder))) => return Lost::TakenBy(holder),
                    Ok(Ok(Attempt::Conflict)) => continue,
                    Ok(Err(e)) => {
                        tracing::warn!(lease = self.settings.name, error = %e, "renewing the lease failed; retrying");
                        if Instant::now() + self.settings.retry_every.min(Duration::from_millis(500)) >= deadline {
                            return Lost::RenewDeadline(e.to_string());
                        }
                        let retry =
                            (Instant::now() + self.settings.retry_every.min(Duration::from_millis(500))).min(deadline);
                        tokio::time::sleep_until(retry).await;
                    }
                    Err(_) => return Lost::RenewDeadline("the renewal timed out".into()),
                }
            }
        }
    }

    /// Gives the Lease up if this replica holds it (empty holder, so that a standby takes it at
    /// its next look).
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else { return Ok(()) };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return Ok(());
        }
        let now = MicroTime(jiff::Timestamp::now());
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now.clone());
        spec.acquire_time = Some(now);
        self.api.replace(&self.settings.name, &PostParams::default(), &lease).await?;
        self.last_renewed = None;
        tracing::info!(lease = self.settings.name, "released the lease");
        Ok(())
    }

    /// One step of the protocol: create the Lease, take it (empty or expired), or renew it.
    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, kube::Error> {
        let sent = Instant::now();
        let now = MicroTime(jiff::Timestamp::now());
        let duration_s = i32::try_from(self.settings.duration.as_secs()).unwrap_or(i32::MAX);
        let me = self.settings.identity.clone();
        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.settings.name.clone()), ..ObjectMeta::default() },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me),
                    lease_duration_seconds: Some(duration_s),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(&created);
                    self.last_renewed = Some(sent);
                    Ok(Attempt::Holding)
                }
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Conflict),
                Err(e) => Err(e),
            };
        };
        self.observe(&lease);
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let mine = holder.as_deref() == Some(me.as_str());
        if let Some(other) = holder.as_ref().filter(|_| !mine) {
            let lease_for =
                Duration::from_secs(spec.lease_duration_seconds.unwrap_or(duration_s).max(1).unsigned_abs().into());
            let unchanged_since = self.observed.as_ref().map_or(sent, |(_, at)| *at);
            if unchanged_since + lease_for > sent {
                return Ok(Attempt::HeldBy(other.clone()));
            }
            tracing::info!(lease = self.settings.name, holder = other, "the lease expired; taking it over");
        }
        if !mine {
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(me);
        spec.lease_duration_seconds = Some(duration_s);
        spec.renew_time = Some(now);
        // `replace` sends the resourceVersion read above: a concurrent write makes this a 409.
        match self.api.replace(&lease.name_any(), &PostParams::default(), &lease).await {
            Ok(written) => {
                self.observe(&written);
                self.last_renewed = Some(sent);
                Ok(Attempt::Holding)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Conflict),
            Err(e) => Err(e),
        }
    }

    fn observe(&mut self, lease: &Lease) {
        let spec = lease.spec.clone().unwrap_or_default();
        let record = Observed {
            holder: spec.holder_identity,
            renew_time: spec.renew_time,
            duration_s: spec.lease_duration_seconds,
            transitions: spec.lease_transitions,
        };
        if self.observed.as_ref().is_none_or(|(seen, _)| *seen != record) {
            self.observed = Some((record, Instant::now()));
        }
    }
}

/// `d` plus up to 20 % (replicas do not look in step).
fn jittered(d: Duration) -> Duration {
    d.mul_f64(1.0 + rand::random::<f64>() * 0.2)
}
