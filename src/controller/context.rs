//! What every reconcile shares: the Kubernetes client, the accounts and their observation
//! loops, the operator's defaults, the Event publisher, timings and per-object backoff.

use super::account::Accounts;
use super::credentials::Defaults;
use super::events::Events;
use super::identity::Identities;
use super::resync::Resyncs;
use super::secrets::Guard;
use super::written::Written;
use crate::crd::RedisMigration;
use kube::runtime::reflector::ObjectRef;
use rand::Rng;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Timings of the reconcile loop.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Observation interval of moving tasks (`--tick`).
    pub tick: Duration,
    /// How long a create with an unknown outcome gets to appear in the list before it is sent
    /// again.
    pub create_grace: Duration,
    /// Safety requeue of resources whose task moves (the account loop wakes them on change).
    pub active_resync: Duration,
    /// Resync of resources whose task ended (at least 10 minutes).
    pub resync: Duration,
    /// Retry of a Stalled resource (a Secret or spec change wakes it sooner).
    pub stalled_retry: Duration,
    /// Retry of a resource whose keyless identity was refused (no event in the cluster tells when the
    /// cloud side trusts it again).
    pub identity_retry: Duration,
    /// Reconciles running at once (`--max-concurrent-reconciles`); the rest wait their turn.
    pub concurrency: u16,
    /// Progress counters are written at most this often while the phase holds
    /// (`--progress-update-interval`).
    pub progress_update_interval: Duration,
}

/// Shared state of the controller.
pub struct Context {
    pub client: kube::Client,
    pub accounts: Accounts,
    pub defaults: Defaults,
    pub identities: Arc<Identities>,
    pub events: Events,
    pub settings: Settings,
    /// The in-use finalizer on referenced Secrets.
    pub guard: Guard,
    /// Statuses written that the cache may not show yet.
    pub written: Arc<Written>,
    failures: Mutex<HashMap<ObjectRef<RedisMigration>, u32>>,
    /// When each resource whose task ended is next due for a look.
    pub resyncs: Resyncs,
    /// When each provisioning task's job was last read.
    job_polls: Mutex<HashMap<ObjectRef<RedisMigration>, Instant>>,
}

impl Context {
    pub fn new(
        client: kube::Client,
        accounts: Accounts,
        defaults: Defaults,
        identities: Arc<Identities>,
        events: Events,
        settings: Settings,
        guard: Guard,
    ) -> Self {
        let resyncs = Resyncs::new(settings.resync);
        Self {
            client,
            accounts,
            defaults,
            identities,
            events,
            settings,
            guard,
            written: Arc::new(Written::default()),
            failures: Mutex::new(HashMap::new()),
            resyncs,
            job_polls: Mutex::new(HashMap::new()),
        }
    }

    /// Next delay for an object whose reconcile failed: exponential from 1 s to 5 min, ±20 %
    /// jitter, so that many failing objects do not retry in step.
    pub fn backoff(&self, key: &ObjectRef<RedisMigration>) -> Duration {
        let mut failures = self.failures.lock().expect("failures lock");
        let n = failures.entry(key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        let base = Duration::from_secs(1).saturating_mul(1 << (*n - 1).min(9)).min(Duration::from_secs(300));
        base.mul_f64(rand::rng().random_range(0.8..1.2))
    }

    /// The resource is going: forget it.
    pub fn forget_ended(&self, key: &ObjectRef<RedisMigration>) {
        self.resyncs.forget(key);
        self.job_polls.lock().expect("job polls lock").remove(key);
    }

    /// The resource's provisioning job is being read now.
    pub fn job_polled(&self, key: &ObjectRef<RedisMigration>) {
        let mut polls = self.job_polls.lock().expect("job polls lock");
        let now = Instant::now();
        // Provisioning takes minutes: what was read long ago is of no use any more.
        polls.retain(|_, at| now.duration_since(*at) < Duration::from_secs(3600));
        polls.insert(key.clone(), now);
    }

    /// True when the resource's provisioning job was read less than `within` ago.
    pub fn job_polled_within(&self, key: &ObjectRef<RedisMigration>, within: Duration) -> bool {
        self.job_polls.lock().expect("job polls lock").get(key).is_some_and(|at| at.elapsed() < within)
    }

    /// A successful reconcile resets the object's backoff.
    pub fn forget_failures(&self, key: &ObjectRef<RedisMigration>) {
        self.failures.lock().expect("failures lock").remove(key);
    }
}
