//! Accounts (design.md §4): the tasks that share an endpoint, project and credentials are
//! observed together. Each account has one rate-limited client, a 401 [`circuit`], a [`view`] of
//! its watched tasks kept fresh by one observation loop ([`refresh`]) that wakes the resources
//! whose task changed, and [`batch`]ers that coalesce stops, restarts and deletes.

pub mod batch;
pub mod circuit;
mod refresh;
pub mod view;

use super::credentials::AccountAccess;
use super::observed::{Remote, RemoteTask};
use crate::crd::RedisMigration;
use crate::dcs::model::{ListQuery, MigrationStats, MigrationTask, MigrationTaskSummary};
use crate::dcs::{CallObserver, ClientConfig, DcsClient, DcsError, InFlight, RateLimit, RetryPolicy};
use batch::{Batcher, Kind, Outcome};
use circuit::Circuit;
use kube::runtime::reflector::ObjectRef;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc, watch};
use view::{Named, PAGE, Sent, View};

/// How accounts call and observe.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Observation interval while tasks move.
    pub tick: Duration,
    /// Interval of `ShowMigrationTaskStats` per task in a full migration (its percentage moves).
    pub stats_interval: Duration,
    /// Interval of `ShowMigrationTaskStats` per streaming task (incremental sync at 100 %: only
    /// its offset and rates move).
    pub streaming_stats_interval: Duration,
    pub rate_limit: RateLimit,
    pub retry: RetryPolicy,
    pub timeout: Duration,
    /// Stops (and restarts, deletes) due within this window go out as one batch call.
    pub batch_window: Duration,
}

/// Identifies an account without keeping its keys in the clear: a digest of endpoint, project
/// and credentials. A rotated Secret is a new account (and a fresh circuit); credentials that change over
/// time (a keyless identity) are one account per principal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AccountKey([u8; 32]);

impl AccountKey {
    fn of(access: &AccountAccess) -> Self {
        let mut h = Sha256::new();
        let who = match (access.credentials.fixed(), &access.principal) {
            (Some(keys), _) => [keys.access_key(), keys.secret_key(), keys.security_token().unwrap_or("")],
            (None, principal) => ["principal", principal.as_deref().unwrap_or(""), ""],
        };
        for part in [access.endpoint.as_str(), &access.project_id].into_iter().chain(who) {
            h.update(part.as_bytes());
            h.update([0]);
        }
        Self(h.finalize().into())
    }
}

/// Exchanges of reconciles on the wire at once per account: a slow endpoint holds at most this many reconcile
/// slots; further calls that the rate limit let through wait at most `PERMIT_WAIT` for a place, then their
/// reconcile gives its slot back (the loop and the batches hold no slot and are not bounded). Calls waiting for the account's rate budget take no place (they wait at
/// most burst/qps), so a burst of creates under the default QPS is paced, not failed.
const IN_FLIGHT: usize = 4;
const PERMIT_WAIT: Duration = Duration::from_secs(2);
/// An account nobody used for this long, with nothing to watch, is dropped (its loops end).
const IDLE: Duration = Duration::from_secs(10 * 60);

/// All accounts in use.
pub struct Accounts {
    accounts: Mutex<HashMap<AccountKey, Arc<Account>>>,
    settings: Settings,
    triggers: mpsc::UnboundedSender<ObjectRef<RedisMigration>>,
    /// Told about every DCS exchange of every account (metrics).
    observer: Option<Arc<dyn CallObserver>>,
}

impl Accounts {
    /// `triggers` receives the resources whose remote task changed.
    pub fn new(settings: Settings, triggers: mpsc::UnboundedSender<ObjectRef<RedisMigration>>) -> Self {
        Self { accounts: Mutex::new(HashMap::new()), settings, triggers, observer: None }
    }

    /// Reports every DCS exchange and retry of the accounts' clients to `observer`.
    pub fn with_observer(self, observer: Arc<dyn CallObserver>) -> Self {
        Self { observer: Some(observer), ..self }
    }

    /// The account for this access, created (with its observation loop) on first use.
    pub fn get(&self, access: &AccountAccess) -> Result<Arc<Account>, DcsError> {
        let key = AccountKey::of(access);
        let mut accounts = self.accounts.lock().expect("accounts lock");
        let now = Instant::now();
        accounts.retain(|_, account| Arc::strong_count(account) > 1 || !account.idle_since(now, IDLE));
        if let Some(account) = accounts.get(&key) {
            *account.used.lock().expect("used lock") = now;
            return Ok(account.clone());
        }
        let mut config =
            ClientConfig::new(access.endpoint.clone(), access.project_id.clone(), access.credentials.clone());
        config.rate_limit = self.settings.rate_limit;
        config.retry = self.settings.retry;
        config.timeout = self.settings.timeout;
        config.in_flight = Some(InFlight { calls: IN_FLIGHT, wait: PERMIT_WAIT });
        let client = match &self.observer {
            Some(observer) => DcsClient::with_observer(config, observer.clone())?,
            None => DcsClient::new(config)?,
        };
        let account = Arc::new(Account::new(client, self.settings.clone(), self.triggers.clone()));
        tokio::spawn(refresh::observe_loop(Arc::downgrade(&account)));
        accounts.insert(key, account.clone());
        Ok(account)
    }
}

/// One account: its client (with the account's rate limit) and its observation view.
pub struct Account {
    client: DcsClient,
    /// The same client failing fast: the observation loop looks again next tick anyway.
    looker: DcsClient,
    settings: Settings,
    view: Mutex<View>,
    circuit: Arc<Circuit>,
    refreshed: watch::Sender<u64>,
    wake: Arc<Notify>,
    triggers: mpsc::UnboundedSender<ObjectRef<RedisMigration>>,
    stops: Arc<Batcher>,
    restarts: Arc<Batcher>,
    deletes: Arc<Batcher>,
    used: Mutex<Instant>,
}

impl Drop for Account {
    fn drop(&mut self) {
        for batcher in [&self.stops, &self.restarts, &self.deletes] {
            batcher.close();
        }
    }
}

impl Account {
    fn new(client: DcsClient, settings: Settings, triggers: mpsc::UnboundedSender<ObjectRef<RedisMigration>>) -> Self {
        let unbounded = client.unbounded();
        let looker = unbounded.with_retry(RetryPolicy {
            max_retries: 1,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
            total_delay: Duration::from_secs(1),
        });
        let circuit = Arc::new(Circuit::default());
        // Requests come in waves, one per observation tick: a round stays open across a tick.
        let window = settings.batch_window.max(settings.tick);
        let batcher = |kind| Batcher::start(kind, window, unbounded.clone(), circuit.clone());
        Self {
            stops: batcher(Kind::Stop),
            restarts: batcher(Kind::Restart),
            deletes: batcher(Kind::Delete),
            client,
            looker,
            settings,
            view: Mutex::new(View::default()),
            circuit,
            refreshed: watch::channel(0).0,
            wake: Arc::new(Notify::new()),
            triggers,
            used: Mutex::new(Instant::now()),
        }
    }

    /// True when nothing is watched and nobody asked for the account for `idle`.
    fn idle_since(&self, now: Instant, idle: Duration) -> bool {
        let used = *self.used.lock().expect("used lock");
        now.duration_since(used) >= idle && self.view().is_idle()
    }

    fn view(&self) -> MutexGuard<'_, View> {
        self.view.lock().expect("view lock")
    }

    /// Runs one API call of a reconcile through the account's circuit (and its client's bound on calls on the
    /// wire: when the endpoint is that slow, the caller gives its reconcile slot back instead of queueing behind
    /// it, a transient error retried with backoff).
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, DcsError>
    where
        F: FnOnce(DcsClient) -> Fut,
        Fut: Future<Output = Result<T, DcsError>>,
    {
        self.circuit.call(&self.client, f).await
    }

    /// When a pass that would wait for this account's rate limit in its slot should come back instead
    /// (`DcsClient::turn`).
    pub fn turn(&self) -> Option<Duration> {
        self.client.turn()
    }

    /// Looks for a task named exactly `name` that `ours` accepts. Where the project's list is
    /// short, the next walk of the account's loop answers every lookup waiting for it (one walk
    /// for many creates, instead of one list per create); else, or when no walk comes in time, a
    /// list filtered by name answers it.
    pub async fn find_by_name(
        &self,
        name: &str,
        ours: impl Fn(&RemoteTask) -> bool,
    ) -> Result<Option<RemoteTask>, DcsError> {
        if let Some(found) = self.find_in_next_walk(name).await {
            return found.map(|tasks| tasks.into_iter().find(|t| ours(t)));
        }
        self.find_by_name_query(name, ours).await
    }

    /// Like `find_by_name`, without holding the caller while the account's next walk comes: `None` while the
    /// lookup waits for it (`owner` is woken when the walk answered), then the answer. Where the project's list
    /// is too long to walk, or no walk answered in time, a list filtered by name answers at once.
    pub async fn find_by_name_later(
        &self,
        name: &str,
        owner: ObjectRef<RedisMigration>,
        ours: impl Fn(&RemoteTask) -> bool,
    ) -> Option<Result<Option<RemoteTask>, DcsError>> {
        let now = Instant::now();
        let named = {
            let mut view = self.view();
            if view.walk_is_short() {
                Some(view.ask_name_for(&owner, name, now))
            } else {
                // Too long a list to walk for it (learnt since it was asked, maybe): no walk is owed to it.
                view.drop_name_for(&owner);
                None
            }
        };
        match named {
            Some(Named::Answered(found)) => return Some(found.map(|tasks| tasks.into_iter().find(|t| ours(t)))),
            Some(Named::Waiting(asked)) if now.duration_since(asked) < self.lookup_deadline() => {
                self.wake.notify_one();
                return None;
            }
            Some(Named::Waiting(_)) => self.view().drop_name_for(&owner),
            None => {}
        }
        Some(self.find_by_name_query(name, ours).await)
    }

    /// How long a lookup waits for a walk before a list filtered by name answers it instead.
    fn lookup_deadline(&self) -> Duration {
        self.settings.tick * 3 + self.settings.timeout
    }

    /// The tasks named `name` in a walk that started after now; `None` when the list is too long
    /// to walk for it, or no walk came in time.
    async fn find_in_next_walk(&self, name: &str) -> Option<Result<Vec<RemoteTask>, DcsError>> {
        let mut refreshed = self.refreshed.subscribe();
        let ticket = {
            let mut view = self.view();
            if !view.walk_is_short() {
                return None;
            }
            view.ask_name(name, Instant::now())
        };
        self.wake.notify_one();
        let answer = tokio::time::timeout(self.lookup_deadline(), async {
            loop {
                refreshed.changed().await.ok()?;
                if let Some(answer) = self.view().named(ticket) {
                    return Some(answer);
                }
            }
        })
        .await
        .ok()
        .flatten();
        if answer.is_none() {
            self.view().drop_name(ticket);
        }
        answer
    }

    /// A list filtered by name (the API's filter is not exact: names are compared here).
    async fn find_by_name_query(
        &self,
        name: &str,
        ours: impl Fn(&RemoteTask) -> bool,
    ) -> Result<Option<RemoteTask>, DcsError> {
        let mut offset = 0;
        loop {
            let query = ListQuery { offset: Some(offset), limit: Some(PAGE), name: Some(name.to_owned()) };
            let named = |row: &MigrationTaskSummary| row.task_name.as_deref() == Some(name);
            let page = self.call(|c| async move { c.list_migration_tasks_where(&query, named).await }).await?;
            if let Some(found) = page.migration_tasks.iter().map(RemoteTask::from_summary).find(|t| ours(t)) {
                return Ok(Some(found));
            }
            if view::last_page(page.rows, offset)? {
                return Ok(None);
            }
            offset += PAGE;
        }
    }

    /// The task as the account's loop last saw it, registering it for observation, without holding the
    /// caller's reconcile while the loop looks: a look no older than one refresh (unless `fresh` asks for one
    /// made after now), or what the refresh asked for (`ask_for_look`, or this call) saw, or its error. `None`
    /// until that look is in: the loop wakes the owner then.
    pub fn observe_later(
        &self,
        task_id: &str,
        owner: ObjectRef<RedisMigration>,
        fresh: bool,
    ) -> Option<Result<Remote, DcsError>> {
        {
            let mut view = self.view();
            view.register(task_id, owner.clone(), Instant::now());
            if let Some(answer) = view.answer(task_id) {
                return Some(answer);
            }
            let refreshes = view.refreshes;
            if !fresh && let Some(remote) = view.current(task_id, refreshes) {
                return Some(Ok(remote));
            }
        }
        self.ask_for_look(task_id, owner);
        None
    }

    /// Asks the loop for a look at the task from a refresh that completes after now (kept if one
    /// is asked already); `observe_later` answers it, and the owner is woken when it is in.
    pub fn ask_for_look(&self, task_id: &str, owner: ObjectRef<RedisMigration>) {
        {
            let mut view = self.view();
            view.register(task_id, owner, Instant::now());
            view.ask(task_id);
        }
        self.wake.notify_one();
    }

    /// The resync look at an ended task: what a refresh after the first ask saw (or its error), `None` until
    /// one is in. The loop makes that refresh within `view::RESYNC_LOOKS`, one walk for all the account's
    /// resyncs due meanwhile, and wakes the owner then.
    pub fn resync_look(&self, task_id: &str, owner: ObjectRef<RedisMigration>) -> Option<Result<Remote, DcsError>> {
        {
            let mut view = self.view();
            if let Some(answer) = view.answer(task_id) {
                return Some(answer);
            }
            view.ask_resync(task_id, owner, Instant::now());
        }
        self.wake.notify_one();
        None
    }

    /// Records what an action of this operator just did to a task (the answer of configure,
    /// stop, ...), so that reconciles see it at once and an older observation cannot undo it.
    pub fn record(&self, task: &RemoteTask, owner: ObjectRef<RedisMigration>) {
        let mut view = self.view();
        let now = Instant::now();
        view.register(&task.task_id, owner, now);
        view.record(task, now);
    }

    /// Sends a stop, a restart or a delete, coalesced with the account's others of its kind due in the
    /// same window, without holding the caller while the batch collects: `take_sent` answers whether it
    /// is still out or how it went, and the owner is woken when its outcome is in. Nothing is sent while
    /// an action for the task is out or untaken.
    pub fn send_later(self: &Arc<Self>, kind: Kind, task_id: &str, owner: ObjectRef<RedisMigration>) {
        {
            let mut view = self.view();
            view.register(task_id, owner.clone(), Instant::now());
            if !view.send(task_id, kind) {
                return;
            }
        }
        let (account, id) = (Arc::clone(self), task_id.to_owned());
        tokio::spawn(async move {
            let outcome = account.request(kind, &id).await;
            account.view().sent_back(&id, outcome);
            let _ = account.triggers.send(owner);
        });
    }

    /// The action `send_later` sent for a task: still out, or (once) back with its outcome.
    pub fn take_sent(&self, task_id: &str) -> Option<Sent> {
        self.view().take_sent(task_id)
    }

    /// One coalesced action, and what an accepted one did to the task. A deleted record's absence
    /// is then confirmed by list walks only.
    async fn request(&self, kind: Kind, task_id: &str) -> Result<Outcome, DcsError> {
        let batcher = match kind {
            Kind::Stop => &self.stops,
            Kind::Restart => &self.restarts,
            Kind::Delete => &self.deletes,
        };
        let outcome = batcher.request(task_id).await?;
        let now = Instant::now();
        match (kind, &outcome) {
            (Kind::Stop, Outcome::Accepted) => self.view().assume(task_id, "TERMINATING", now),
            (Kind::Restart, Outcome::Accepted) => self.view().assume(task_id, "FULLMIGRATING", now),
            (Kind::Delete, Outcome::Accepted | Outcome::Gone) => {
                self.view().deleted(task_id, now);
                self.wake.notify_one();
            }
            _ => {}
        }
        Ok(outcome)
    }

    /// An action was sent whose outcome is unknown (no readable answer): observations from a
    /// refresh that started before it are ignored, so a stale view cannot repeat it.
    pub fn touched(&self, task_id: &str) {
        self.view().touched(task_id, Instant::now());
    }

    /// True when this process deleted the task record and waits for the list to confirm it.
    pub fn deleted(&self, task_id: &str) -> bool {
        self.view().is_deleted(task_id)
    }

    /// Stops observing a task (it ended, or its resource is gone).
    pub fn unwatch(&self, task_id: &str) {
        self.view().unwatch(task_id);
    }

    /// The latest progress counters of a watched task.
    pub fn stats(&self, task_id: &str) -> Option<MigrationStats> {
        self.view().stats(task_id)
    }

    /// The task's full detail (top-level `task_status`), read directly.
    pub async fn detail(&self, task_id: &str) -> Result<MigrationTask, DcsError> {
        let id = task_id.to_owned();
        self.call(|c| async move { c.show_migration_task(&id).await }).await
    }
}
