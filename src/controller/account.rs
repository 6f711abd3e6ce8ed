//! Accounts (endpoint + project + credentials) and their batched observation (design.md §4,
//! "Observe in batches"). Every task of an account is observed by one loop: each tick it walks
//! `ListMigrationTask` once (pages of 1,000), or shows each watched task when that is cheaper,
//! and wakes the owning resources whose task changed. Reconciles read that shared view, so the
//! cost of a tick does not grow with the number of resources.

use super::batch::{self, Batcher, Outcome};
use super::credentials::AccountAccess;
use super::decision::{Remote, RemoteTask};
use crate::crd::RedisMigration;
use crate::dcs::model::{ListQuery, MigrationStats, MigrationTask, MigrationTaskSummary, TaskState};
use crate::dcs::{CallObserver, ClientConfig, DcsClient, DcsError, ErrorClass, RateLimit, RetryPolicy};
use kube::runtime::reflector::ObjectRef;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc, watch};

/// Page size of a list walk (the API's maximum).
const PAGE: u32 = 1000;
/// A 401 opens the account's circuit for this long at first, doubling up to `MAX_CIRCUIT`: the
/// real API locks an access key after more than 5 failed authentications in a row.
const FIRST_CIRCUIT: Duration = Duration::from_secs(60);
const MAX_CIRCUIT: Duration = Duration::from_secs(16 * 60);

/// How accounts call and observe.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Observation interval while tasks move.
    pub tick: Duration,
    /// Interval of `ShowMigrationTaskStats` per moving task.
    pub stats_interval: Duration,
    pub rate_limit: RateLimit,
    pub retry: RetryPolicy,
    pub timeout: Duration,
    /// Stops (and restarts) due within this window go out as one batch call.
    pub batch_window: Duration,
}

/// Identifies an account without keeping its keys in the clear: a digest of endpoint, project
/// and credentials. A rotated Secret is a new account (and a fresh circuit).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AccountKey([u8; 32]);

impl AccountKey {
    fn of(access: &AccountAccess) -> Self {
        let mut h = Sha256::new();
        for part in [
            access.endpoint.as_str(),
            &access.project_id,
            access.credentials.access_key(),
            access.credentials.secret_key(),
            access.credentials.security_token().unwrap_or(""),
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        Self(h.finalize().into())
    }
}

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
        if let Some(account) = accounts.get(&key) {
            return Ok(account.clone());
        }
        let mut config =
            ClientConfig::new(access.endpoint.clone(), access.project_id.clone(), access.credentials.clone());
        config.rate_limit = self.settings.rate_limit;
        config.retry = self.settings.retry;
        config.timeout = self.settings.timeout;
        let client = match &self.observer {
            Some(observer) => DcsClient::with_observer(config, observer.clone())?,
            None => DcsClient::new(config)?,
        };
        let account = Arc::new(Account::new(client, self.settings.clone(), self.triggers.clone()));
        tokio::spawn(observe_loop(Arc::downgrade(&account)));
        tokio::spawn(account.stops.clone().run(Arc::downgrade(&account)));
        tokio::spawn(account.restarts.clone().run(Arc::downgrade(&account)));
        accounts.insert(key, account.clone());
        Ok(account)
    }
}

/// What the loop last saw of one task.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one per watched task; boxing buys nothing
enum Seen {
    Present(RemoteTask),
    /// Missing from one complete list walk: absence counts from the second, so a list that lags
    /// behind a create does not read as a vanished task. Until then the last view stands.
    Missing(Option<RemoteTask>),
    Absent,
}

#[derive(Debug)]
struct Watched {
    owner: ObjectRef<RedisMigration>,
    seen: Option<Seen>,
    /// Refresh count at which this task was last observed.
    seen_at: u64,
    stats: Option<MigrationStats>,
    stats_due: Instant,
    /// When this operator last changed the task (configure, stop, ...): observations from a
    /// refresh that started earlier predate the change and are ignored.
    acted_at: Option<Instant>,
    /// The task record was deleted: only the list can tell its absence (show may still answer).
    deleted: bool,
    /// A caller that does not wait (`observe_later`) asked for an observation from a refresh
    /// after this one; its owner is woken when it is in.
    awaited_since: Option<u64>,
}

#[derive(Debug, Default)]
struct State {
    watched: HashMap<String, Watched>,
    /// Tasks in the project at the last list (decides list walk versus shows).
    project_tasks: Option<usize>,
    /// The error of the last refresh, if it failed.
    last_error: Option<DcsError>,
    refreshes: u64,
}

#[derive(Debug)]
struct Circuit {
    open_until: Instant,
    next: Duration,
    error: DcsError,
}

/// One account: its client (with the account's rate limit) and its observation view.
pub struct Account {
    client: DcsClient,
    /// The same client failing fast: the observation loop looks again next tick anyway.
    looker: DcsClient,
    settings: Settings,
    state: Mutex<State>,
    circuit: Mutex<Option<Circuit>>,
    refreshed: watch::Sender<u64>,
    wake: Arc<Notify>,
    triggers: mpsc::UnboundedSender<ObjectRef<RedisMigration>>,
    stops: Arc<Batcher>,
    restarts: Arc<Batcher>,
}

impl Account {
    fn new(client: DcsClient, settings: Settings, triggers: mpsc::UnboundedSender<ObjectRef<RedisMigration>>) -> Self {
        let looker = client.with_retry(RetryPolicy {
            max_retries: 1,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
            total_delay: Duration::from_secs(1),
        });
        Self {
            client,
            looker,
            settings: settings.clone(),
            state: Mutex::new(State::default()),
            circuit: Mutex::new(None),
            refreshed: watch::channel(0).0,
            wake: Arc::new(Notify::new()),
            triggers,
            // Requests come in waves, one per observation tick: a round stays open across a tick.
            stops: Batcher::new(batch::Kind::Stop, settings.batch_window.max(settings.tick)),
            restarts: Batcher::new(batch::Kind::Restart, settings.batch_window.max(settings.tick)),
        }
    }

    /// Runs one API call through the account's 401 circuit: while it is open, calls fail at once
    /// with the error that opened it.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, DcsError>
    where
        F: FnOnce(DcsClient) -> Fut,
        Fut: Future<Output = Result<T, DcsError>>,
    {
        self.call_on(&self.client, f).await
    }

    /// An observation call of the account's loop: fails fast, through the same circuit.
    async fn look<T, F, Fut>(&self, f: F) -> Result<T, DcsError>
    where
        F: FnOnce(DcsClient) -> Fut,
        Fut: Future<Output = Result<T, DcsError>>,
    {
        self.call_on(&self.looker, f).await
    }

    async fn call_on<T, F, Fut>(&self, client: &DcsClient, f: F) -> Result<T, DcsError>
    where
        F: FnOnce(DcsClient) -> Fut,
        Fut: Future<Output = Result<T, DcsError>>,
    {
        if let Some(c) = self.circuit.lock().expect("circuit lock").as_ref()
            && Instant::now() < c.open_until
        {
            return Err(c.error.clone());
        }
        let result = f(client.clone()).await;
        let mut circuit = self.circuit.lock().expect("circuit lock");
        match &result {
            Err(e) if e.class() == ErrorClass::Authentication => {
                let wait = circuit.as_ref().map_or(FIRST_CIRCUIT, |c| c.next);
                tracing::warn!(
                    wait_s = wait.as_secs(),
                    code = e.code(),
                    "DCS refused the credentials; pausing calls for this account"
                );
                *circuit = Some(Circuit {
                    open_until: Instant::now() + wait,
                    next: (wait * 2).min(MAX_CIRCUIT),
                    error: e.clone(),
                });
            }
            Err(_) => {}
            Ok(_) => *circuit = None,
        }
        result
    }

    /// Looks for tasks named exactly `name` (the API's own name filter is not exact).
    pub async fn find_by_name(&self, name: &str) -> Result<Option<RemoteTask>, DcsError> {
        let mut offset = 0;
        loop {
            let query = ListQuery { offset: Some(offset), limit: Some(PAGE), name: Some(name.to_owned()) };
            let page = self.call(|c| async move { c.list_migration_tasks(&query).await }).await?;
            if let Some(found) = page.migration_tasks.iter().find(|t| t.task_name.as_deref() == Some(name)) {
                return Ok(Some(from_summary(found)));
            }
            offset += PAGE;
            let total = page.count.unwrap_or(0);
            if page.migration_tasks.is_empty() || u64::from(offset) >= total {
                return Ok(None);
            }
        }
    }

    /// The task as last observed by the account's loop, registering it for observation. When
    /// there is no observation newer than one tick (or `fresh` asks for one), waits for the next
    /// refresh; when none comes in time, shows the task directly.
    pub async fn observe(
        &self,
        task_id: &str,
        owner: ObjectRef<RedisMigration>,
        fresh: bool,
    ) -> Result<Remote, DcsError> {
        let mut refreshed = self.refreshed.subscribe();
        let start = *refreshed.borrow_and_update();
        if !fresh {
            if let Some(remote) = self.current(task_id, owner.clone(), start) {
                return Ok(remote);
            }
        } else {
            self.register(task_id, owner.clone());
        }
        self.wake.notify_one();
        let deadline = self.settings.tick * 3 + self.settings.timeout;
        let waited = tokio::time::timeout(deadline, async {
            loop {
                if refreshed.changed().await.is_err() {
                    return None;
                }
                let state = self.state.lock().expect("state lock");
                // A failed refresh answers every waiter with its error (Synced=False), at once.
                if let Some(e) = &state.last_error {
                    return Some(Err(e.clone()));
                }
                if let Some(w) = state.watched.get(task_id)
                    && w.seen_at > start
                {
                    return w.seen.as_ref().map(|seen| Ok(remote_of(seen)));
                }
            }
        })
        .await;
        match waited {
            Ok(Some(result)) => result,
            _ => self.show(task_id).await,
        }
    }

    /// Like `observe` with `fresh`, for callers that must not hold their reconcile while they
    /// wait: answers what a refresh completed after the ask (`ask_for_look`, or this call when
    /// nothing was asked) saw, or its error; until then answers `None` and the owner is woken when
    /// the look is in.
    pub fn observe_later(&self, task_id: &str, owner: ObjectRef<RedisMigration>) -> Option<Result<Remote, DcsError>> {
        self.register(task_id, owner.clone());
        {
            let mut state = self.state.lock().expect("state lock");
            let refreshes = state.refreshes;
            let failed = state.last_error.clone();
            let watched = state.watched.get_mut(task_id)?;
            match (watched.awaited_since, &watched.seen) {
                (Some(since), Some(seen)) if watched.seen_at > since => {
                    let remote = remote_of(seen);
                    watched.awaited_since = None;
                    return Some(Ok(remote));
                }
                (Some(since), _) if refreshes > since && failed.is_some() => {
                    watched.awaited_since = None;
                    return failed.map(Err);
                }
                _ => {}
            }
        }
        self.ask_for_look(task_id, owner);
        None
    }

    /// Asks the loop for a look at the task from a refresh that completes after now (kept if one
    /// is asked already); `observe_later` answers it, and the owner is woken when it is in.
    pub fn ask_for_look(&self, task_id: &str, owner: ObjectRef<RedisMigration>) {
        self.register(task_id, owner);
        {
            let mut state = self.state.lock().expect("state lock");
            let refreshes = state.refreshes;
            if let Some(watched) = state.watched.get_mut(task_id) {
                watched.awaited_since.get_or_insert(refreshes);
            }
        }
        self.wake.notify_one();
    }

    fn current(&self, task_id: &str, owner: ObjectRef<RedisMigration>, refreshes: u64) -> Option<Remote> {
        let mut state = self.state.lock().expect("state lock");
        let watched = state.watched.entry(task_id.to_owned()).or_insert_with(|| Watched {
            owner: owner.clone(),
            seen: None,
            seen_at: 0,
            stats: None,
            stats_due: Instant::now(),
            acted_at: None,
            deleted: false,
            awaited_since: None,
        });
        watched.owner = owner;
        if state.last_error.is_some() {
            return None;
        }
        let watched = state.watched.get(task_id)?;
        let fresh_enough = refreshes.saturating_sub(watched.seen_at) <= 1;
        watched.seen.as_ref().filter(|_| fresh_enough && watched.seen_at > 0).map(remote_of)
    }

    fn register(&self, task_id: &str, owner: ObjectRef<RedisMigration>) {
        let _ = self.current(task_id, owner, 0);
    }

    /// Records what an action of this operator just did to a task (the answer of configure,
    /// stop, ...), so that reconciles see it at once and an older observation cannot undo it.
    pub fn record(&self, task: &RemoteTask, owner: ObjectRef<RedisMigration>) {
        self.register(&task.task_id, owner);
        let mut state = self.state.lock().expect("state lock");
        let refreshes = state.refreshes;
        if let Some(w) = state.watched.get_mut(&task.task_id) {
            w.seen = Some(Seen::Present(task.clone()));
            w.seen_at = refreshes.max(1);
            w.acted_at = Some(Instant::now());
        }
    }

    /// Stops a task, coalesced with the other stops of this account due in the same window.
    pub async fn stop(&self, task_id: &str) -> Result<Outcome, DcsError> {
        let outcome = self.stops.request(task_id).await?;
        if outcome == Outcome::Accepted {
            self.assume_state(task_id, "TERMINATING");
        }
        Ok(outcome)
    }

    /// Restarts a stopped online task, coalesced like stops.
    pub async fn restart(&self, task_id: &str) -> Result<Outcome, DcsError> {
        let outcome = self.restarts.request(task_id).await?;
        if outcome == Outcome::Accepted {
            self.assume_state(task_id, "FULLMIGRATING");
        }
        Ok(outcome)
    }

    /// Deletes a task record; its absence is then confirmed by list walks only.
    pub async fn delete(&self, task_id: &str) -> Result<(), DcsError> {
        let ids = vec![task_id.to_owned()];
        match self.call(|c| async move { c.delete_migration_tasks(&ids).await }).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        if let Some(w) = self.state.lock().expect("state lock").watched.get_mut(task_id) {
            w.deleted = true;
            w.acted_at = Some(Instant::now());
        }
        self.wake.notify_one();
        Ok(())
    }

    /// An action was sent whose outcome is unknown (no readable answer): observations from a
    /// refresh that started before it are ignored, so a stale view cannot repeat it.
    pub fn touched(&self, task_id: &str) {
        if let Some(w) = self.state.lock().expect("state lock").watched.get_mut(task_id) {
            w.acted_at = Some(Instant::now());
        }
    }

    /// True when this process deleted the task record and waits for the list to confirm it.
    pub fn deleted(&self, task_id: &str) -> bool {
        self.state.lock().expect("state lock").watched.get(task_id).is_some_and(|w| w.deleted)
    }

    /// Updates the view of a task after an accepted action whose answer carries no task.
    fn assume_state(&self, task_id: &str, word: &str) {
        let mut state = self.state.lock().expect("state lock");
        if let Some(w) = state.watched.get_mut(task_id) {
            if let Some(Seen::Present(task)) = &mut w.seen {
                task.status = crate::dcs::model::TaskStatus::new(word);
            }
            w.acted_at = Some(Instant::now());
        }
    }

    /// Stops observing a task (it ended, or its resource is gone).
    pub fn unwatch(&self, task_id: &str) {
        self.state.lock().expect("state lock").watched.remove(task_id);
    }

    /// The latest progress counters of a watched task.
    pub fn stats(&self, task_id: &str) -> Option<MigrationStats> {
        self.state.lock().expect("state lock").watched.get(task_id).and_then(|w| w.stats.clone())
    }

    /// The task's full detail (instance IPs, switch-over state), read directly.
    pub async fn detail(&self, task_id: &str) -> Result<MigrationTask, DcsError> {
        let id = task_id.to_owned();
        self.call(|c| async move { c.show_migration_task(&id).await }).await
    }

    /// Shows one task directly and records what it saw.
    pub async fn show(&self, task_id: &str) -> Result<Remote, DcsError> {
        let id = task_id.to_owned();
        let result = self.call(|c| async move { c.show_migration_task(&id).await }).await;
        let remote = match result {
            Ok(task) => Remote::Present(from_detail(&task, task_id)),
            Err(e) if e.is_not_found() => Remote::Absent,
            Err(e) => return Err(e),
        };
        let mut state = self.state.lock().expect("state lock");
        let refreshes = state.refreshes;
        if let Some(w) = state.watched.get_mut(task_id) {
            w.seen = Some(match &remote {
                Remote::Present(t) => Seen::Present(t.clone()),
                _ => Seen::Absent,
            });
            w.seen_at = refreshes.max(1);
        }
        Ok(remote)
    }

    /// One refresh of every watched task; wakes the owners whose task changed.
    async fn refresh(&self) {
        let (ids, project_tasks, deleted) = {
            let state = self.state.lock().expect("state lock");
            let deleted = state.watched.values().any(|w| w.deleted);
            (state.watched.keys().cloned().collect::<Vec<_>>(), state.project_tasks, deleted)
        };
        if ids.is_empty() {
            return;
        }
        let started = Instant::now();
        let pages = project_tasks.map_or(1, |n| n.div_ceil(PAGE as usize).max(1));
        // After a delete only the list tells the truth (show may keep answering).
        let outcome = if deleted || pages <= ids.len() { self.walk_list().await } else { self.show_each(&ids).await };
        let refreshes = {
            let mut state = self.state.lock().expect("state lock");
            state.refreshes += 1;
            let refreshes = state.refreshes;
            match outcome {
                Ok(Observed { tasks, complete, project_tasks }) => {
                    if let Some(n) = project_tasks {
                        state.project_tasks = Some(n);
                    }
                    let recovered = state.last_error.take().is_some();
                    for (id, watched) in state.watched.iter_mut() {
                        if watched.acted_at.is_some_and(|acted| acted > started) {
                            continue;
                        }
                        let next = match (tasks.get(id), &watched.seen) {
                            (Some(task), _) => Some(Seen::Present(task.clone())),
                            (None, _) if !complete => None,
                            (None, Some(Seen::Missing(_) | Seen::Absent)) => Some(Seen::Absent),
                            (None, Some(Seen::Present(last))) => Some(Seen::Missing(Some(last.clone()))),
                            (None, None) => Some(Seen::Missing(None)),
                        };
                        let Some(next) = next else { continue };
                        // A first sighting wakes nobody: whoever registered the task waits for this
                        // refresh itself (waking it would make an ended resource loop on itself).
                        let changed = recovered
                            || watched.awaited_since.is_some()
                            || (watched.seen.is_some() && !same(&watched.seen, &next));
                        watched.seen = Some(next);
                        watched.seen_at = refreshes;
                        if changed {
                            // A new state: its counters are worth a look at the next tick.
                            watched.stats_due = Instant::now();
                            let _ = self.triggers.send(watched.owner.clone());
                        }
                    }
                }
                Err(e) => {
                    // The view keeps its age (it is not fresher for a failed look); owners are woken
                    // once, on the first failure, to report it.
                    let first = state.last_error.is_none();
                    if first {
                        tracing::warn!(error = %e, "observing the account's tasks failed; retrying every tick");
                    }
                    for watched in state.watched.values().filter(|w| first || w.awaited_since.is_some()) {
                        let _ = self.triggers.send(watched.owner.clone());
                    }
                    state.last_error = Some(e);
                }
            }
            refreshes
        };
        // Status changes go out first; progress counters follow, so they never delay them.
        self.refreshed.send_replace(refreshes);
        let stats = self.due_stats().await;
        let mut state = self.state.lock().expect("state lock");
        for (id, fetched) in stats {
            if let Some(w) = state.watched.get_mut(&id)
                && w.stats.as_ref() != Some(&fetched)
            {
                w.stats = Some(fetched);
                let _ = self.triggers.send(w.owner.clone());
            }
        }
    }

    async fn walk_list(&self) -> Result<Observed, DcsError> {
        let mut tasks = HashMap::new();
        let mut offset = 0u32;
        let total = loop {
            let query = ListQuery { offset: Some(offset), limit: Some(PAGE), name: None };
            let page = self.look(|c| async move { c.list_migration_tasks(&query).await }).await?;
            let total = page.count.unwrap_or(0) as usize;
            let rows = page.migration_tasks.len();
            for row in &page.migration_tasks {
                if let Some(id) = &row.task_id {
                    tasks.insert(id.clone(), from_summary(row));
                }
            }
            offset += PAGE;
            if rows == 0 || offset as usize >= total {
                break total;
            }
        };
        Ok(Observed { tasks, complete: true, project_tasks: Some(total) })
    }

    async fn show_each(&self, ids: &[String]) -> Result<Observed, DcsError> {
        let shows = ids.iter().map(|id| async move { (id.clone(), self.show_quiet(id).await) });
        let mut tasks = HashMap::new();
        for (id, result) in futures::future::join_all(shows).await {
            match result {
                Ok(Some(task)) => {
                    tasks.insert(id, task);
                }
                Ok(None) => {}
                Err(e) => return Err(e),
            }
        }
        // A show that says "not found" is definite: treat the view as complete.
        Ok(Observed { tasks, complete: true, project_tasks: None })
    }

    async fn show_quiet(&self, id: &str) -> Result<Option<RemoteTask>, DcsError> {
        let owned = id.to_owned();
        match self.look(|c| async move { c.show_migration_task(&owned).await }).await {
            Ok(task) => Ok(Some(from_detail(&task, id))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Progress counters of moving tasks whose stats are due.
    async fn due_stats(&self) -> Vec<(String, MigrationStats)> {
        let now = Instant::now();
        // At most a quarter of the account's call budget for one tick goes to progress counters,
        // most overdue first, so that observation keeps its place under the rate limit.
        let budget = ((self.settings.rate_limit.qps * self.settings.tick.as_secs_f64()) / 4.0).max(1.0) as usize;
        let due: Vec<String> = {
            let mut state = self.state.lock().expect("state lock");
            let mut due: Vec<(Instant, &String, &mut Watched)> = state
                .watched
                .iter_mut()
                .filter(|(_, w)| w.stats_due <= now && matches!(&w.seen, Some(Seen::Present(t)) if moving(t.state())))
                .map(|(id, w)| (w.stats_due, id, w))
                .collect();
            due.sort_by_key(|(at, _, _)| *at);
            due.into_iter()
                .take(budget)
                .map(|(_, id, w)| {
                    w.stats_due = now + self.settings.stats_interval;
                    id.clone()
                })
                .collect()
        };
        let fetches = due.into_iter().map(|id| async move {
            let owned = id.clone();
            let result = self.look(|c| async move { c.show_migration_task_stats(&owned).await }).await;
            (id, result)
        });
        futures::future::join_all(fetches).await.into_iter().filter_map(|(id, r)| r.ok().map(|s| (id, s))).collect()
    }
}

struct Observed {
    tasks: HashMap<String, RemoteTask>,
    /// True when absence from `tasks` means absence remotely.
    complete: bool,
    project_tasks: Option<usize>,
}

/// A task whose progress counters move.
fn moving(state: TaskState) -> bool {
    matches!(state, TaskState::Migrating | TaskState::FullMigrating | TaskState::IncrementalMigrating)
}

fn same(old: &Option<Seen>, new: &Seen) -> bool {
    match (old, new) {
        (Some(Seen::Present(a)), Seen::Present(b)) => a == b,
        (Some(Seen::Absent), Seen::Absent) => true,
        (Some(Seen::Missing(_)), Seen::Missing(_)) => true,
        _ => false,
    }
}

fn remote_of(seen: &Seen) -> Remote {
    match seen {
        Seen::Present(t) => Remote::Present(t.clone()),
        Seen::Absent => Remote::Absent,
        Seen::Missing(Some(last)) => Remote::Present(last.clone()),
        Seen::Missing(None) => Remote::NotLookedUp,
    }
}

/// Keeps the account's loop running while the account is in use.
async fn observe_loop(account: std::sync::Weak<Account>) {
    loop {
        let Some(acc) = account.upgrade() else { return };
        let tick = acc.settings.tick;
        let wake = acc.wake.clone();
        let idle = acc.state.lock().expect("state lock").watched.is_empty();
        let (wait, gap) = if idle {
            // Re-check now and then, so that a dropped account ends its loop.
            (Duration::from_secs(30), Duration::ZERO)
        } else {
            let started = Instant::now();
            acc.refresh().await;
            // A wake-up (a new task to look at) may bring the next look forward, but never closer
            // than half a tick: many resources registering at once share one look.
            let gap = (tick / 2).saturating_sub(started.elapsed());
            (tick.saturating_sub(started.elapsed()).saturating_sub(gap), gap)
        };
        drop(acc);
        tokio::time::sleep(gap).await;
        let _ = tokio::time::timeout(wait, wake.notified()).await;
    }
}

/// The list row as the core sees it.
pub fn from_summary(row: &MigrationTaskSummary) -> RemoteTask {
    RemoteTask {
        task_id: row.task_id.clone().unwrap_or_default(),
        task_name: row.task_name.clone(),
        status: row.status.clone(),
        error_message: row.error_message.clone(),
        ecs_private_ip: row.ecs_tenant_private_ip.clone(),
        resume_mode: row.resume_mode.clone(),
        created_at: row.created_at.clone(),
        updated_at: None,
        released_at: row.released_at.clone(),
    }
}

/// The detail answer as the core sees it.
pub fn from_detail(task: &MigrationTask, asked_id: &str) -> RemoteTask {
    RemoteTask {
        task_id: task.task_id.clone().unwrap_or_else(|| asked_id.to_owned()),
        task_name: task.task_name.clone(),
        status: task.status.clone(),
        error_message: task.error_message.clone(),
        ecs_private_ip: task.ecs_tenant_private_ip.clone(),
        resume_mode: task.resume_mode.clone(),
        created_at: task.created_at.clone(),
        updated_at: task.updated_at.clone(),
        released_at: task.released_at.clone(),
    }
}
