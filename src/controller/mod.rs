//! The RedisMigration controller: a kube-runtime `Controller` over RedisMigrations, woken by
//! changes of the Secrets they reference and by the accounts' observation loops.

pub mod account;
pub mod conditions;
pub mod context;
pub mod credentials;
pub mod decision;
pub mod deletion;
pub mod events;
pub mod identity;
pub mod listwatch;
pub mod names;
pub mod naming;
pub mod observed;
pub mod pass;
pub mod reconcile;
pub mod requests;
pub mod resync;
pub mod secret_cache;
pub mod secrets;
pub mod status;
pub mod switchover;
pub mod tenancy;
pub mod written;

pub use names::{
    ANNOTATION_CREATE_PENDING, ANNOTATION_PAUSED, ANNOTATION_RECONCILE_REQUESTED, FIELD_MANAGER, FINALIZER,
};

use crate::crd::RedisMigration;
use crate::metrics::Metrics;
use crate::server::Health;
use context::{Context, Settings};
use events::Events;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What `run` needs besides the Kubernetes client.
pub struct RunConfig {
    /// Only this namespace (`None`: all).
    pub watch_namespace: Option<String>,
    /// Only resources matching this label selector (shards).
    pub label_selector: Option<String>,
    pub defaults: credentials::Defaults,
    /// The keyless identities of `spec.identity`.
    pub identities: Arc<identity::Identities>,
    pub accounts: account::Settings,
    pub settings: Settings,
    /// Reconciles, DCS calls, resources by phase and queue depth are reported here.
    pub metrics: Arc<Metrics>,
    /// Told when the RedisMigration cache has synced (`/readyz`).
    pub health: Arc<Health>,
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(client: kube::Client, config: RunConfig, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let (triggers, woken) = mpsc::unbounded_channel::<ObjectRef<RedisMigration>>();
    let events = Events::new(client.clone(), FIELD_MANAGER, std::env::var("POD_NAME").ok());
    let (sweeps, swept) = mpsc::unbounded_channel();
    let secret_cache = Arc::new(secret_cache::SecretCache::default());
    let concurrency = config.settings.concurrency;
    let tenancy = config.defaults.tenancy.clone();
    let namespace_wakes = triggers.clone();
    let resync_wakes = triggers.clone();
    let ctx = Arc::new(Context::new(
        client.clone(),
        account::Accounts::new(config.accounts, triggers).with_observer(config.metrics.clone()),
        config.defaults,
        config.identities,
        events,
        config.settings,
        secrets::Guard::new(sweeps.clone(), secret_cache.clone()),
    ));
    let (store, objects) =
        redis_migrations(&client, config.watch_namespace.as_deref(), config.label_selector.as_deref());
    let written = ctx.written.clone();
    let objects = objects.inspect_ok(move |rm| written.observe(rm));
    let controller = Controller::for_stream(objects, store.clone())
        .with_config(controller::Config::default().concurrency(concurrency));
    config.metrics.watch_store(store.clone());
    tokio::spawn(report_synced(store.clone(), config.health.clone()));
    let resync_ctx = ctx.clone();
    let resync_store = store.clone();
    tokio::spawn(async move { resync_ctx.resyncs.wake_due(resync_store, resync_wakes).await });
    let watch_namespace = config.watch_namespace.clone();
    tokio::spawn(tenancy::watch(client.clone(), watch_namespace, tenancy, store.clone(), namespace_wakes));
    // Secrets are watched by metadata only (no data) and mapped to the resources that reference
    // them by name, so a fixed or rotated Secret wakes exactly those; their versions tell the
    // Secret cache when what it read is out of date.
    let guard_ctx = ctx.clone();
    let versions = secret_cache.clone();
    let secret_events = watcher(
        scoped::<PartialObjectMeta<Secret>>(&client, config.watch_namespace.as_deref()),
        watcher::Config::default(),
    )
    .inspect(move |event| match event {
        Ok(event) => versions.observe(event),
        Err(_) => versions.lost(),
    })
    .touched_objects()
    .inspect_ok(move |secret| guard_ctx.guard.observe(secret));
    let sweep_ctx = ctx.clone();
    let sweep_store = store.clone();
    tokio::spawn(async move { sweep_ctx.guard.sweep(client, sweep_store, swept).await });
    controller
        .watches_stream(secret_events, move |secret: PartialObjectMeta<Secret>| referencing(&store, &secret))
        .reconcile_on(backlogged(woken, config.metrics.clone()))
        .graceful_shutdown_on(shutdown)
        .run(measured(config.metrics), error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::trace!(%object, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "reconcile failed"),
            }
        })
        .await;
}

/// An API for `K` in the watched namespace, or in all.
fn scoped<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The RedisMigration cache and its stream of changes. The cache keeps what reconciles read: managedFields, labels
/// and every annotation but the operator's own (kubectl's last-applied copy of the spec, GitOps tools' tracking
/// marks) are dropped on the way in: they are much of an object's size, and read by nobody here (writes are patches
/// of the operator's own fields). A list is decoded one object at a time and each is trimmed as it arrives
/// (`listwatch`): the first list of a restart was the operator's peak of memory when pages were parsed whole.
fn redis_migrations(
    client: &kube::Client,
    namespace: Option<&str>,
    selector: Option<&str>,
) -> (Store<RedisMigration>, impl futures::Stream<Item = Result<RedisMigration, watcher::Error>> + use<>) {
    let (store, writer) = reflector::store();
    let events = reflector(
        writer,
        listwatch::watch(scoped::<RedisMigration>(client, namespace), selector, trim).default_backoff().modify(trim),
    );
    (store.clone(), listwatch::changed_objects(store, events))
}

/// Drops what no reconcile reads from a cached RedisMigration.
fn trim(rm: &mut RedisMigration) {
    rm.managed_fields_mut().clear();
    rm.labels_mut().clear();
    rm.annotations_mut().retain(|key, _| key.starts_with(names::ANNOTATION_PREFIX));
}

/// The resources the accounts' loops wake, reporting how many wait.
fn backlogged(
    woken: mpsc::UnboundedReceiver<ObjectRef<RedisMigration>>,
    metrics: Arc<Metrics>,
) -> impl futures::Stream<Item = ObjectRef<RedisMigration>> {
    futures::stream::unfold(woken, move |mut rx| {
        let backlog = metrics.clone();
        async move {
            let next = rx.recv().await;
            backlog.set_backlog(rx.len());
            next.map(|r| (r, rx))
        }
    })
}

/// `reconcile`, counted and timed.
fn measured(
    metrics: Arc<Metrics>,
) -> impl FnMut(Arc<RedisMigration>, Arc<Context>) -> futures::future::BoxFuture<'static, Result<Action, pass::Error>> {
    move |rm, ctx| {
        let metrics = metrics.clone();
        Box::pin(async move {
            let _in_flight = metrics.reconcile_started();
            let started = Instant::now();
            let result = reconcile::reconcile(rm, ctx).await;
            metrics.reconciled(result.is_ok(), started.elapsed());
            result
        })
    }
}

/// Marks the replica ready once the RedisMigration cache holds the complete initial list.
/// Store readiness wakes only one of its waiters (the controller and the Secret sweep wait on it
/// too), so it is polled rather than awaited once.
async fn report_synced(store: Store<RedisMigration>, health: Arc<Health>) {
    loop {
        match tokio::time::timeout(Duration::from_millis(250), store.wait_until_ready()).await {
            Ok(Ok(())) => break,
            Ok(Err(_)) => return,
            Err(_) => {}
        }
    }
    tracing::info!(resources = store.state().len(), "the RedisMigration watch has synced");
    health.set_synced();
}

/// The resources in the Secret's namespace that reference it.
fn referencing(store: &Store<RedisMigration>, secret: &PartialObjectMeta<Secret>) -> Vec<ObjectRef<RedisMigration>> {
    let (Some(ns), name) = (secret.namespace(), secret.name_any()) else { return Vec::new() };
    store
        .state()
        .iter()
        .filter(|rm| rm.namespace().as_deref() == Some(ns.as_str()) && secrets::secret_names(rm).any(|n| n == name))
        .map(|rm| ObjectRef::from_obj(&**rm))
        .collect()
}

/// Per-object exponential backoff with jitter after a failed reconcile.
fn error_policy(rm: Arc<RedisMigration>, error: &pass::Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff(&ObjectRef::from_obj(&*rm));
    tracing::info!(namespace = rm.namespace(), name = rm.name_any(), error = %error, retry_in_ms = delay.as_millis() as u64, "reconcile failed");
    Action::requeue(delay)
}
