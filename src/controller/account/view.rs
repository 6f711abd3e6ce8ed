//! An account's view of its watched tasks: what the observation loop last saw of each, who owns
//! it, and who waits for a fresh look. No I/O: the loop hands each refresh's outcome to
//! [`View::apply`], which answers the owners to wake. Tested as a table of refreshes.

use super::super::observed::{Remote, RemoteTask};
use super::batch::{Kind, Outcome};
use crate::crd::RedisMigration;
use crate::dcs::DcsError;
use crate::dcs::model::{MigrationStats, TaskState, TaskStatus};
use kube::runtime::reflector::ObjectRef;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Page size of a list walk (the API's maximum).
pub const PAGE: u32 = 1000;
/// Most pages one walk reads: 64,000 tasks per account; an endpoint that has (or claims) more is
/// refused rather than walked forever.
pub const MAX_PAGES: u32 = 64;

/// True when the page of `rows` read at `offset` ends the walk: a short page is the last one,
/// whatever `count` claims; a walk past `MAX_PAGES` is an error.
pub fn last_page(rows: usize, offset: u32) -> Result<bool, DcsError> {
    if rows < PAGE as usize {
        return Ok(true);
    }
    if offset / PAGE + 1 >= MAX_PAGES {
        return Err(DcsError::TooManyTasks { pages: MAX_PAGES });
    }
    Ok(false)
}

/// What the loop last saw of one task.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // one per watched task; boxing buys nothing
enum Seen {
    Present(RemoteTask),
    /// Missing from one complete list walk: absence counts from the second, so a list that lags
    /// behind a create does not read as a vanished task. Until then the last view stands.
    Missing(Option<RemoteTask>),
    Absent,
}

impl Seen {
    fn remote(&self) -> Remote {
        match self {
            Self::Present(t) | Self::Missing(Some(t)) => Remote::Present(t.clone()),
            Self::Absent => Remote::Absent,
            Self::Missing(None) => Remote::NotLookedUp,
        }
    }

    fn same_kind(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Present(a), Self::Present(b)) => a == b,
            (Self::Absent, Self::Absent) | (Self::Missing(_), Self::Missing(_)) => true,
            _ => false,
        }
    }
}

#[derive(Debug)]
struct Watched {
    owner: ObjectRef<RedisMigration>,
    seen: Option<Seen>,
    /// Refresh count at which this task was last observed.
    seen_at: u64,
    stats: Option<MigrationStats>,
    /// When the counters are next read; `None` until the task is first seen moving in its current state
    /// (they are first read one interval later: status shows no counters sooner, see `status::progress_due`).
    stats_due: Option<Instant>,
    /// When this operator last changed the task (configure, stop, ...): observations from a
    /// refresh that started earlier predate the change and are ignored.
    acted_at: Option<Instant>,
    /// The task record was deleted: only the list can tell its absence (show may still answer).
    deleted: bool,
    /// A caller that does not wait asked for an observation from a refresh after this one; its
    /// owner is woken when it is in.
    awaited_since: Option<u64>,
    /// Refreshes in a row that saw the task ended or gone with nobody asking: past
    /// `QUIET_REFRESHES` the loop stops watching it (its owner was woken when it ended).
    quiet: u32,
    /// Watched only for the resync look of a resource whose task ended (`View::ask_resync`): it makes the loop
    /// look at most every `RESYNC_LOOKS`, and is dropped once its owner collected the look.
    resync: bool,
    /// When the last refresh that saw the task started.
    seen_when: Option<Instant>,
    /// When the task was first watched: a refresh that started earlier may have found it (a walk keeps the rows
    /// of the tasks watched when it reads them) but cannot tell its absence (it may have read that page before,
    /// or stopped once it found what it looked for).
    since: Instant,
}

/// See `Watched::quiet`.
const QUIET_REFRESHES: u32 = 3;
/// The loop looks for resync looks alone at most this often: the resyncs of an account's ended resources, due
/// one by one over minutes, share one walk per interval instead of keeping the loop walking every tick.
pub const RESYNC_LOOKS: Duration = Duration::from_secs(60);
/// A lookup by name nobody collected for this long is dropped (its asker gave up long before).
const LOOKUP_TTL: Duration = Duration::from_secs(60);

/// What one refresh learnt.
#[derive(Debug, Default)]
pub struct Observed {
    pub tasks: HashMap<String, RemoteTask>,
    /// True when absence from `tasks` means absence remotely.
    pub complete: bool,
    /// Tasks in the project, when a list walk counted them.
    pub project_tasks: Option<usize>,
}

/// How the next refresh looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// One list walk covers every watched task.
    Walk,
    /// One show per watched task is cheaper than walking a long project history.
    Show(Vec<String>),
}

/// The view of one account.
#[derive(Debug, Default)]
pub struct View {
    watched: HashMap<String, Watched>,
    /// Tasks in the project at the last list (decides list walk versus shows).
    project_tasks: Option<usize>,
    /// The error of the last refresh, if it failed.
    last_error: Option<DcsError>,
    /// Refreshes completed so far.
    pub refreshes: u64,
    /// Creates looking for an earlier attempt's task by name, answered by the next walk.
    lookups: HashMap<u64, Lookup>,
    /// The lookup of each resource that does not wait for its answer (`ask_name_for`).
    lookups_by_owner: HashMap<ObjectRef<RedisMigration>, u64>,
    next_lookup: u64,
    /// When the last refresh started.
    last_refresh: Option<Instant>,
    /// Actions sent without their requester waiting (`Account::send_later`), by task.
    sent: HashMap<String, Sent>,
}

/// An action sent for a task whose requester does not wait for it.
#[derive(Debug)]
pub enum Sent {
    /// Queued or on the wire.
    Out(Kind),
    /// Its outcome, kept for the owner's next pass (which takes it once).
    Back(Kind, Result<Outcome, DcsError>),
}

/// The rows a walk keeps (`View::wanted`).
#[derive(Debug, Default)]
pub struct Wanted {
    ids: std::collections::HashSet<String>,
    names: std::collections::HashSet<String>,
}

impl Wanted {
    pub fn keeps(&self, id: &str, name: Option<&str>) -> bool {
        self.ids.contains(id) || name.is_some_and(|n| self.names.contains(n))
    }

    /// True when the `kept` rows already answer everything: every watched task found and no name to look up,
    /// so the rest of the list need not be read.
    pub fn all_found(&self, kept: &HashMap<String, RemoteTask>) -> bool {
        self.names.is_empty() && self.ids.iter().all(|id| kept.contains_key(id))
    }
}

/// A lookup by name, waiting for a walk that started after it was asked.
#[derive(Debug)]
struct Lookup {
    name: String,
    asked: Instant,
    answer: Option<Result<Vec<RemoteTask>, DcsError>>,
    /// The resource woken when a walk answers, for a lookup nobody waits on (`ask_name_for`).
    owner: Option<ObjectRef<RedisMigration>>,
}

/// Where a resource's lookup by name stands (`View::ask_name_for`).
#[derive(Debug)]
pub enum Named {
    /// A walk answered it: the tasks of that name (or why the walk failed). The lookup is done.
    Answered(Result<Vec<RemoteTask>, DcsError>),
    /// It waits for a walk, asked at this time.
    Waiting(Instant),
}

/// Walks at most this many pages to answer lookups by name; a longer history is searched by
/// name, one list per lookup.
pub const SHARED_WALK_PAGES: usize = 3;

impl View {
    /// Watches a task for `owner` (again, or anew, from `now`).
    pub fn register(&mut self, task_id: &str, owner: ObjectRef<RedisMigration>, now: Instant) {
        let watched = self.entry(task_id, owner, now);
        watched.quiet = 0;
        watched.resync = false;
    }

    fn entry(&mut self, task_id: &str, owner: ObjectRef<RedisMigration>, now: Instant) -> &mut Watched {
        let watched = self.watched.entry(task_id.to_owned()).or_insert_with(|| Watched {
            owner: owner.clone(),
            seen: None,
            seen_at: 0,
            stats: None,
            stats_due: None,
            acted_at: None,
            deleted: false,
            awaited_since: None,
            quiet: 0,
            resync: true,
            seen_when: None,
            since: now,
        });
        watched.owner = owner;
        watched
    }

    /// Asks for the resync look of an ended task: answered by the next refresh, which the loop makes for it
    /// within `RESYNC_LOOKS` (at once when other tasks are watched); `answer` collects it. A task watched
    /// already stays as it is.
    pub fn ask_resync(&mut self, task_id: &str, owner: ObjectRef<RedisMigration>, now: Instant) {
        self.entry(task_id, owner, now);
        self.ask(task_id);
    }

    /// The last view of a task when it is no older than one refresh before `refreshes` and the
    /// last refresh succeeded.
    pub fn current(&self, task_id: &str, refreshes: u64) -> Option<Remote> {
        if self.last_error.is_some() {
            return None;
        }
        let watched = self.watched.get(task_id)?;
        let fresh_enough = refreshes.saturating_sub(watched.seen_at) <= 1 && watched.seen_at > 0;
        watched.seen.as_ref().filter(|_| fresh_enough).map(Seen::remote)
    }

    /// Answers an earlier `ask`, once a refresh after it is in (and forgets the ask).
    pub fn answer(&mut self, task_id: &str) -> Option<Result<Remote, DcsError>> {
        let (refreshes, failed) = (self.refreshes, self.last_error.clone());
        let watched = self.watched.get_mut(task_id)?;
        let since = watched.awaited_since?;
        let answer = match &watched.seen {
            Some(seen) if watched.seen_at > since => Ok(seen.remote()),
            _ if refreshes > since => Err(failed?),
            _ => return None,
        };
        watched.awaited_since = None;
        if watched.resync {
            self.watched.remove(task_id);
        }
        Some(answer)
    }

    /// Asks for a look from a refresh that completes after now (kept if one is asked already).
    pub fn ask(&mut self, task_id: &str) {
        let refreshes = self.refreshes;
        if let Some(watched) = self.watched.get_mut(task_id) {
            watched.awaited_since.get_or_insert(refreshes);
        }
    }

    /// Records what an action of this operator just did to a task, so that an older observation
    /// cannot undo it.
    pub fn record(&mut self, task: &RemoteTask, now: Instant) {
        let refreshes = self.refreshes.max(1);
        if let Some(w) = self.watched.get_mut(&task.task_id) {
            w.seen = Some(Seen::Present(task.clone()));
            w.seen_at = refreshes;
            w.acted_at = Some(now);
        }
    }

    /// An accepted action whose answer carries no task: the task now reads `word`.
    pub fn assume(&mut self, task_id: &str, word: &str, now: Instant) {
        if let Some(w) = self.watched.get_mut(task_id) {
            if let Some(Seen::Present(task)) = &mut w.seen {
                task.status = TaskStatus::new(word);
            }
            w.acted_at = Some(now);
        }
    }

    /// An action went out whose outcome is unknown: older observations are ignored.
    pub fn touched(&mut self, task_id: &str, now: Instant) {
        if let Some(w) = self.watched.get_mut(task_id) {
            w.acted_at = Some(now);
        }
    }

    /// The task record was deleted: from now on only list walks observe it.
    pub fn deleted(&mut self, task_id: &str, now: Instant) {
        if let Some(w) = self.watched.get_mut(task_id) {
            w.deleted = true;
            w.acted_at = Some(now);
        }
    }

    /// True when this process deleted the task record and waits for the list to confirm it.
    pub fn is_deleted(&self, task_id: &str) -> bool {
        self.watched.get(task_id).is_some_and(|w| w.deleted)
    }

    pub fn unwatch(&mut self, task_id: &str) {
        self.watched.remove(task_id);
        self.sent.remove(task_id);
    }

    /// Marks `kind` as sent for a task; false when an action for it is out or back already (the
    /// requester then waits for, or takes, that one).
    pub fn send(&mut self, task_id: &str, kind: Kind) -> bool {
        if self.sent.contains_key(task_id) {
            return false;
        }
        self.sent.insert(task_id.to_owned(), Sent::Out(kind));
        true
    }

    /// Keeps the outcome of an action that was out, for its owner to take (a refresh drops it once the
    /// task is no longer watched: nobody would take it then).
    pub fn sent_back(&mut self, task_id: &str, outcome: Result<Outcome, DcsError>) {
        if let Some(sent) = self.sent.get_mut(task_id)
            && let Sent::Out(kind) = *sent
        {
            *sent = Sent::Back(kind, outcome);
        }
    }

    /// The action sent for a task: still out, or back with its outcome (taken: asked again, it is gone).
    pub fn take_sent(&mut self, task_id: &str) -> Option<Sent> {
        match self.sent.get(task_id)? {
            Sent::Out(kind) => Some(Sent::Out(*kind)),
            Sent::Back(..) => self.sent.remove(task_id),
        }
    }

    pub fn is_idle(&self) -> bool {
        self.watched.is_empty() && self.lookups.is_empty()
    }

    /// True when the task is watched.
    pub fn watches(&self, task_id: &str) -> bool {
        self.watched.contains_key(task_id)
    }

    /// Watched tasks and lookups by name waiting for a walk (what keeps the loop looking).
    pub fn load(&self) -> (usize, usize) {
        (self.watched.len(), self.lookups.values().filter(|l| l.answer.is_none()).count())
    }

    /// What a walk starting now must keep of the rows it reads: the watched tasks and the tasks named by
    /// unanswered lookups. The rest of a long project history is read and dropped page by page.
    pub fn wanted(&self) -> Wanted {
        Wanted {
            ids: self.watched.keys().cloned().collect(),
            names: self.lookups.values().filter(|l| l.answer.is_none()).map(|l| l.name.clone()).collect(),
        }
    }

    /// True when one walk of the project is short enough to answer lookups by name.
    pub fn walk_is_short(&self) -> bool {
        self.project_tasks.is_none_or(|n| n.div_ceil(PAGE as usize) <= SHARED_WALK_PAGES)
    }

    /// Asks the next walk (one that starts after `now`) for the tasks named `name`; answers the
    /// ticket to collect them with.
    pub fn ask_name(&mut self, name: &str, now: Instant) -> u64 {
        self.lookups.retain(|_, l| now.saturating_duration_since(l.asked) < LOOKUP_TTL);
        let lookups = &self.lookups;
        self.lookups_by_owner.retain(|_, ticket| lookups.contains_key(ticket));
        self.next_lookup += 1;
        self.lookups.insert(self.next_lookup, Lookup { name: name.to_owned(), asked: now, answer: None, owner: None });
        self.next_lookup
    }

    /// `owner`'s lookup of the tasks named `name`, asked of the next walk (one that starts after `now`) when it
    /// has none: its answer once a walk gave one, and `owner` is woken then.
    pub fn ask_name_for(&mut self, owner: &ObjectRef<RedisMigration>, name: &str, now: Instant) -> Named {
        let asked = self.lookups_by_owner.get(owner).copied();
        if let Some(ticket) = asked
            && let Some(lookup) = self.lookups.get(&ticket).filter(|l| l.name == name)
        {
            if lookup.answer.is_none() {
                return Named::Waiting(lookup.asked);
            }
            self.lookups_by_owner.remove(owner);
            if let Some(answer) = self.lookups.remove(&ticket).and_then(|l| l.answer) {
                return Named::Answered(answer);
            }
        }
        self.drop_name_for(owner);
        let ticket = self.ask_name(name, now);
        if let Some(lookup) = self.lookups.get_mut(&ticket) {
            lookup.owner = Some(owner.clone());
        }
        self.lookups_by_owner.insert(owner.clone(), ticket);
        Named::Waiting(now)
    }

    /// Gives `owner`'s lookup up.
    pub fn drop_name_for(&mut self, owner: &ObjectRef<RedisMigration>) {
        if let Some(ticket) = self.lookups_by_owner.remove(owner) {
            self.lookups.remove(&ticket);
        }
    }

    /// The tasks a walk found under the ticket's name (or why it failed), once one answered it.
    pub fn named(&mut self, ticket: u64) -> Option<Result<Vec<RemoteTask>, DcsError>> {
        self.lookups.get(&ticket)?.answer.as_ref()?;
        self.lookups.remove(&ticket)?.answer
    }

    /// Gives a ticket up (its asker stopped waiting).
    pub fn drop_name(&mut self, ticket: u64) {
        self.lookups.remove(&ticket);
    }

    /// The latest progress counters of a watched task.
    pub fn stats(&self, task_id: &str) -> Option<MigrationStats> {
        self.watched.get(task_id).and_then(|w| w.stats.clone())
    }

    /// How the next refresh (at `now`) looks; `None` when nothing is watched, or only resync looks that
    /// wait for their turn (`RESYNC_LOOKS`). After a delete only the list tells the truth (show may keep
    /// answering).
    pub fn plan(&mut self, now: Instant) -> Option<Plan> {
        if self.lookups.values().any(|l| l.answer.is_none()) {
            return Some(Plan::Walk);
        }
        // A resync look nobody collected (its resource went meanwhile) is not kept for ever.
        self.watched.retain(|_, w| !w.resync || w.seen_when.is_none_or(|at| now.duration_since(at) < LOOKUP_TTL));
        let resync_turn = self.last_refresh.is_none_or(|at| now.duration_since(at) >= RESYNC_LOOKS);
        let due = |w: &Watched| !w.resync || (resync_turn && w.awaited_since.is_some_and(|since| w.seen_at <= since));
        if !self.watched.values().any(due) {
            return None;
        }
        let deleted = self.watched.values().any(|w| w.deleted);
        let pages = self.project_tasks.map_or(1, |n| n.div_ceil(PAGE as usize).max(1));
        Some(if deleted || pages <= self.watched.len() {
            Plan::Walk
        } else {
            Plan::Show(self.watched.keys().cloned().collect())
        })
    }

    /// Takes in one refresh (started at `started`); answers the owners to wake: those whose task
    /// changed, those waiting for this look, and on the first failure everyone (to report it).
    pub fn apply(&mut self, outcome: Result<Observed, DcsError>, started: Instant) -> Vec<ObjectRef<RedisMigration>> {
        self.refreshes += 1;
        self.last_refresh = Some(started);
        let refreshes = self.refreshes;
        let answered = self.answer_lookups(&outcome, started);
        let observed = match outcome {
            Ok(observed) => observed,
            Err(e) => {
                // The view keeps its age (it is not fresher for a failed look).
                let first = self.last_error.is_none();
                if first {
                    tracing::warn!(error = %e, "observing the account's tasks failed; retrying every tick");
                }
                if matches!(e, DcsError::TooManyTasks { .. }) {
                    // Too long a history to walk: show each watched task from now on.
                    self.project_tasks = Some(usize::MAX);
                }
                self.last_error = Some(e);
                let woken = self.watched.values().filter(|w| first || w.awaited_since.is_some());
                return woken.map(|w| w.owner.clone()).chain(answered).collect();
            }
        };
        if let Some(n) = observed.project_tasks {
            self.project_tasks = Some(n);
        }
        let recovered = self.last_error.take().is_some();
        let mut wake = answered;
        for (id, watched) in self.watched.iter_mut() {
            if watched.acted_at.is_some_and(|acted| acted > started) {
                continue;
            }
            let next = match (observed.tasks.get(id), &watched.seen) {
                (Some(task), _) => Seen::Present(task.clone()),
                (None, _) if !observed.complete || watched.since > started => continue,
                (None, Some(Seen::Missing(_) | Seen::Absent)) => Seen::Absent,
                (None, Some(Seen::Present(last))) => Seen::Missing(Some(last.clone())),
                (None, None) => Seen::Missing(None),
            };
            // A first sighting wakes nobody: whoever registered the task waits for this refresh
            // itself (waking it would make an ended resource loop on itself).
            let changed = recovered
                || watched.awaited_since.is_some()
                || watched.seen.as_ref().is_some_and(|seen| !seen.same_kind(&next));
            let ended = match &next {
                Seen::Absent => true,
                Seen::Present(task) => task.state().is_terminal(),
                Seen::Missing(_) => false,
            };
            watched.quiet =
                if ended && watched.awaited_since.is_none() && !watched.deleted { watched.quiet + 1 } else { 0 };
            watched.seen = Some(next);
            watched.seen_at = refreshes;
            watched.seen_when = Some(started);
            if changed {
                // A new state: its counters are read one interval into it.
                watched.stats_due = None;
                wake.push(watched.owner.clone());
            }
        }
        // Ended or gone, its owner woken, nobody asking: the owner's next look registers it again.
        self.watched.retain(|_, w| w.quiet < QUIET_REFRESHES);
        let watched = &self.watched;
        self.sent.retain(|id, sent| matches!(sent, Sent::Out(_)) || watched.contains_key(id));
        wake
    }

    /// Answers the lookups by name asked before this refresh started, when it walked the whole
    /// list (or failed trying); returns the owners of those answered to wake.
    fn answer_lookups(
        &mut self,
        outcome: &Result<Observed, DcsError>,
        started: Instant,
    ) -> Vec<ObjectRef<RedisMigration>> {
        let walked = match outcome {
            Ok(observed) if observed.project_tasks.is_some() => Ok(&observed.tasks),
            Ok(_) => return Vec::new(),
            Err(e) => Err(e),
        };
        let mut owners = Vec::new();
        for lookup in self.lookups.values_mut().filter(|l| l.answer.is_none() && l.asked <= started) {
            lookup.answer = Some(match &walked {
                Ok(tasks) => {
                    Ok(tasks.values().filter(|t| t.task_name.as_deref() == Some(&*lookup.name)).cloned().collect())
                }
                Err(e) => Err((*e).clone()),
            });
            owners.extend(lookup.owner.clone());
        }
        owners
    }

    /// The moving tasks whose progress counters are due, most overdue first, at most `budget`;
    /// each is due one interval after it is first seen moving in its state, and again one interval after
    /// each read: `(full, streaming)`, by what the task is doing.
    pub fn due_stats(&mut self, now: Instant, (full, streaming): (Duration, Duration), budget: usize) -> Vec<String> {
        let mut due: Vec<(Instant, &String, &mut Watched)> = Vec::new();
        for (id, w) in self.watched.iter_mut() {
            let Some(Seen::Present(task)) = &w.seen else { continue };
            if !moving(task.state()) {
                continue;
            }
            let interval = if task.state() == TaskState::IncrementalMigrating { streaming } else { full };
            match w.stats_due {
                None => w.stats_due = Some(now + interval),
                Some(at) if at <= now => due.push((at, id, w)),
                Some(_) => {}
            }
        }
        due.sort_by_key(|(at, _, _)| *at);
        due.into_iter()
            .take(budget)
            .map(|(_, id, w)| {
                let streams = matches!(&w.seen, Some(Seen::Present(t)) if t.state() == TaskState::IncrementalMigrating);
                w.stats_due = Some(now + if streams { streaming } else { full });
                id.clone()
            })
            .collect()
    }

    /// Takes in fetched counters; answers the owners whose counters changed.
    pub fn set_stats(&mut self, fetched: Vec<(String, MigrationStats)>) -> Vec<ObjectRef<RedisMigration>> {
        let mut wake = Vec::new();
        for (id, stats) in fetched {
            if let Some(w) = self.watched.get_mut(&id)
                && w.stats.as_ref() != Some(&stats)
            {
                w.stats = Some(stats);
                wake.push(w.owner.clone());
            }
        }
        wake
    }
}

/// A task whose progress counters move.
fn moving(state: TaskState) -> bool {
    matches!(state, TaskState::Migrating | TaskState::FullMigrating | TaskState::IncrementalMigrating)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(name: &str) -> ObjectRef<RedisMigration> {
        ObjectRef::new(name).within("ns")
    }

    fn task(id: &str, word: &str) -> RemoteTask {
        RemoteTask { task_id: id.into(), status: TaskStatus::new(word), ..Default::default() }
    }

    /// A moving task named `name`.
    fn named(id: &str, name: &str) -> RemoteTask {
        RemoteTask { task_name: Some(name.into()), ..task(id, "MIGRATING") }
    }

    fn listed(tasks: &[RemoteTask]) -> Result<Observed, DcsError> {
        Ok(Observed {
            tasks: tasks.iter().map(|t| (t.task_id.clone(), t.clone())).collect(),
            complete: true,
            project_tasks: Some(tasks.len()),
        })
    }

    fn failed() -> Result<Observed, DcsError> {
        Err(DcsError::Network { operation: crate::dcs::Operation::ListMigrationTask, sent: true, detail: "x".into() })
    }

    #[test]
    fn refreshes_wake_owners_only_when_their_task_changes() {
        let t0 = Instant::now();
        let mut view = View::default();
        view.register("a", owner("a"), t0);
        view.register("b", owner("b"), t0);
        let steps: Vec<(Result<Observed, DcsError>, Vec<&str>)> = vec![
            (listed(&[task("a", "MIGRATING"), task("b", "MIGRATING")]), vec![]),
            (listed(&[task("a", "MIGRATING"), task("b", "MIGRATING")]), vec![]),
            (listed(&[task("a", "SUCCESS"), task("b", "MIGRATING")]), vec!["a"]),
            (failed(), vec!["a", "b"]),
            (failed(), vec![]),
            (listed(&[task("a", "SUCCESS"), task("b", "MIGRATING")]), vec!["a", "b"]),
        ];
        for (i, (outcome, want)) in steps.into_iter().enumerate() {
            let mut woken: Vec<String> = view.apply(outcome, t0).into_iter().map(|o| o.name).collect();
            woken.sort();
            assert_eq!(woken, want, "refresh {i}");
        }
    }

    #[test]
    fn a_task_counts_as_gone_only_when_two_complete_walks_miss_it() {
        let t0 = Instant::now();
        let mut view = View::default();
        view.register("a", owner("a"), t0);
        view.apply(listed(&[task("a", "MIGRATING")]), t0);
        view.apply(listed(&[]), t0);
        assert_eq!(view.current("a", view.refreshes), Some(Remote::Present(task("a", "MIGRATING"))));
        view.apply(Ok(Observed { complete: false, ..Default::default() }), t0);
        view.apply(listed(&[]), t0);
        assert_eq!(view.current("a", view.refreshes), Some(Remote::Absent));
    }

    #[test]
    fn an_observation_older_than_an_action_does_not_undo_it() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(1);
        let mut view = View::default();
        view.register("a", owner("a"), t0);
        view.record(&task("a", "FULLMIGRATING"), later);
        view.apply(listed(&[task("a", "RUNNING")]), t0);
        assert_eq!(view.current("a", view.refreshes), Some(Remote::Present(task("a", "FULLMIGRATING"))));
        view.apply(listed(&[task("a", "INCRMIGEATING")]), later + Duration::from_secs(1));
        assert_eq!(view.current("a", view.refreshes), Some(Remote::Present(task("a", "INCRMIGEATING"))));
    }

    #[test]
    fn an_ask_is_answered_by_the_first_refresh_after_it() {
        let t0 = Instant::now();
        let mut view = View::default();
        view.register("a", owner("a"), t0);
        view.apply(listed(&[task("a", "MIGRATING")]), t0);
        view.ask("a");
        assert!(view.answer("a").is_none(), "no refresh since the ask");
        assert_eq!(view.apply(listed(&[task("a", "MIGRATING")]), t0).len(), 1, "the asker is woken");
        assert!(matches!(view.answer("a"), Some(Ok(Remote::Present(t))) if t == task("a", "MIGRATING")));
        assert!(view.answer("a").is_none(), "answered once");
    }

    #[test]
    fn a_walk_is_planned_unless_showing_each_task_is_cheaper_or_a_task_was_deleted() {
        let t0 = Instant::now();
        let mut view = View::default();
        assert_eq!(view.plan(t0), None);
        view.register("a", owner("a"), t0);
        assert_eq!(view.plan(t0), Some(Plan::Walk));
        view.apply(Ok(Observed { complete: true, project_tasks: Some(5_000), ..Default::default() }), t0);
        assert_eq!(view.plan(t0), Some(Plan::Show(vec!["a".into()])));
        view.deleted("a", t0);
        assert_eq!(view.plan(t0), Some(Plan::Walk));
    }

    #[test]
    fn progress_is_read_one_interval_into_a_state_and_within_the_budget_most_overdue_first() {
        let t0 = Instant::now();
        let mut view = View::default();
        for id in ["a", "b", "c"] {
            view.register(id, owner(id), t0);
        }
        view.apply(listed(&[task("a", "FULLMIGRATING"), task("b", "SUCCESS"), task("c", "INCRMIGEATING")]), t0);
        let intervals = (Duration::from_secs(10), Duration::from_secs(60));
        let at = |secs| t0 + Duration::from_secs(secs);
        assert!(view.due_stats(t0, intervals, 5).is_empty(), "nothing is read as a state begins");
        assert!(view.due_stats(at(5), intervals, 5).is_empty());
        assert_eq!(view.due_stats(at(10), intervals, 5), vec!["a"], "a streaming task waits longer");
        assert!(view.due_stats(at(15), intervals, 5).is_empty());
        let mut due = view.due_stats(at(60), intervals, 5);
        due.sort();
        assert_eq!(due, vec!["a", "c"]);
        assert_eq!(view.due_stats(at(130), intervals, 1).len(), 1, "within the budget");
    }

    #[test]
    fn a_walk_ends_on_a_short_page_and_never_runs_past_its_limit() {
        assert!(last_page(0, 0).unwrap());
        assert!(last_page(999, 5 * PAGE).unwrap());
        assert!(!last_page(1000, 0).unwrap());
        assert!(!last_page(1000, (MAX_PAGES - 2) * PAGE).unwrap());
        assert!(last_page(1000, (MAX_PAGES - 1) * PAGE).is_err());
    }

    #[test]
    fn a_walk_that_started_after_a_lookup_by_name_answers_it() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(1);
        let mut view = View::default();
        let ticket = view.ask_name("mine", later);
        assert_eq!(view.plan(t0), Some(Plan::Walk), "a pending lookup makes the loop walk");
        view.apply(listed(&[named("a", "mine")]), t0);
        assert!(view.named(ticket).is_none(), "a walk that started before the ask does not answer it");
        view.apply(listed(&[named("a", "mine"), named("b", "other")]), later);
        let found = view.named(ticket).unwrap().unwrap();
        assert_eq!(found.iter().map(|t| t.task_id.as_str()).collect::<Vec<_>>(), vec!["a"]);
        assert!(view.named(ticket).is_none(), "collected once");
        assert_eq!(view.plan(t0), None, "nothing left to walk for");
        let failing = view.ask_name("mine", later);
        view.apply(failed(), later);
        assert!(view.named(failing).unwrap().is_err(), "a failed walk answers with its error");
    }

    #[test]
    fn a_lookup_nobody_waits_on_wakes_its_owner_when_a_later_walk_answers_it_and_is_collected_once() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(1);
        let mut view = View::default();
        let me = owner("m");
        assert!(matches!(view.ask_name_for(&me, "mine", later), Named::Waiting(at) if at == later));
        assert!(
            matches!(view.ask_name_for(&me, "mine", later + Duration::from_secs(1)), Named::Waiting(at) if at == later),
            "asked once: the first ask's time stands"
        );
        assert_eq!(view.plan(t0), Some(Plan::Walk));
        assert!(view.apply(listed(&[named("a", "mine")]), t0).is_empty(), "a walk that started before the ask");
        let woken = view.apply(listed(&[named("a", "mine"), named("b", "other")]), later);
        assert_eq!(woken, vec![me.clone()], "the owner is woken with its answer");
        let Named::Answered(Ok(found)) = view.ask_name_for(&me, "mine", later) else { panic!("answered") };
        assert_eq!(found.iter().map(|t| t.task_id.as_str()).collect::<Vec<_>>(), vec!["a"]);
        assert!(matches!(view.ask_name_for(&me, "mine", later), Named::Waiting(_)), "collected once: a new lookup");
        view.drop_name_for(&me);
        assert_eq!(view.plan(t0), None, "nothing left to walk for");
        view.ask_name_for(&me, "mine", later);
        assert_eq!(view.apply(failed(), later), vec![me.clone()], "a failed walk wakes it too");
        assert!(matches!(view.ask_name_for(&me, "mine", later), Named::Answered(Err(_))));
    }

    #[test]
    fn resync_looks_share_one_walk_per_interval_and_go_once_collected() {
        let t0 = Instant::now();
        let at = |secs| t0 + Duration::from_secs(secs);
        let mut view = View::default();
        view.ask_resync("a", owner("a"), t0);
        assert_eq!(view.plan(t0), Some(Plan::Walk), "the first look of an account is not held back");
        assert_eq!(view.apply(listed(&[task("a", "SUCCESS")]), t0), vec![owner("a")], "the asker is woken");
        assert!(matches!(view.answer("a"), Some(Ok(Remote::Present(t))) if t == task("a", "SUCCESS")));
        assert_eq!(view.load(), (0, 0), "collected: no longer watched");

        view.ask_resync("b", owner("b"), at(10));
        assert_eq!(view.plan(at(10)), None, "a resync waits for its turn");
        view.register("c", owner("c"), t0);
        assert_eq!(view.plan(at(10)), Some(Plan::Walk), "unless the loop looks anyway");
        view.unwatch("c");
        assert_eq!(view.plan(at(60)), Some(Plan::Walk), "its turn");
        view.apply(listed(&[task("b", "SUCCESS")]), at(60));
        assert_eq!(view.plan(at(61)), None, "answered: nothing due until it is collected");
        assert_eq!(view.load(), (1, 0));
        assert_eq!(view.plan(at(121)), None);
        assert_eq!(view.load(), (0, 0), "a look nobody collected is dropped");
    }

    #[test]
    fn a_refresh_says_nothing_of_a_task_watched_after_it_started() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(1);
        let mut view = View::default();
        view.register("a", owner("a"), t0);
        // Registered while a walk that looks for "a" alone (and stops once it found it) runs.
        view.register("b", owner("b"), later);
        view.ask("b");
        view.apply(listed(&[task("a", "MIGRATING")]), t0);
        assert!(view.answer("b").is_none(), "b still waits for a look, not 'missing'");
        view.apply(listed(&[task("a", "MIGRATING"), task("b", "TERMINATED")]), t0);
        assert!(
            matches!(view.answer("b"), Some(Ok(Remote::Present(t))) if t == task("b", "TERMINATED")),
            "but a sighting counts"
        );
    }

    #[test]
    fn a_walk_can_stop_once_every_watched_task_is_found_and_no_name_is_looked_up() {
        let t0 = Instant::now();
        let mut view = View::default();
        view.register("a", owner("a"), t0);
        view.register("b", owner("b"), t0);
        let wanted = view.wanted();
        let found = |ids: &[&str]| ids.iter().map(|id| (id.to_string(), task(id, "MIGRATING"))).collect();
        assert!(!wanted.all_found(&found(&["a", "c"])), "c was not asked for");
        assert!(wanted.all_found(&found(&["a", "b"])));
        view.ask_name("mine", t0);
        assert!(!view.wanted().all_found(&found(&["a", "b"])), "a name may be further down the list");
    }

    #[test]
    fn a_task_seen_ended_a_few_times_with_nobody_asking_is_no_longer_watched() {
        let t0 = Instant::now();
        let mut view = View::default();
        view.register("a", owner("a"), t0);
        view.register("b", owner("b"), t0);
        for _ in 0..QUIET_REFRESHES {
            view.apply(listed(&[task("a", "SUCCESS"), task("b", "INCRMIGEATING")]), t0);
        }
        assert_eq!(view.load(), (1, 0), "the ended task is dropped, the streaming one stays");
        assert_eq!(view.plan(t0), Some(Plan::Walk));
        view.register("a", owner("a"), t0);
        view.ask("a");
        for _ in 0..QUIET_REFRESHES + 1 {
            view.apply(listed(&[task("a", "SUCCESS"), task("b", "INCRMIGEATING")]), t0);
            view.ask("a");
        }
        assert_eq!(view.load(), (2, 0), "a task someone asks about stays watched");
    }

    #[test]
    fn an_action_sent_is_out_until_its_outcome_is_back_and_that_is_taken_once() {
        let t0 = Instant::now();
        let mut view = View::default();
        view.register("a", owner("a"), t0);
        assert!(view.take_sent("a").is_none());
        assert!(view.send("a", Kind::Stop));
        assert!(!view.send("a", Kind::Stop), "nothing more goes out while one is out");
        assert!(matches!(view.take_sent("a"), Some(Sent::Out(Kind::Stop))));
        view.sent_back("a", Ok(Outcome::Accepted));
        assert!(!view.send("a", Kind::Stop), "nor while its outcome waits for its owner");
        assert!(matches!(view.take_sent("a"), Some(Sent::Back(Kind::Stop, Ok(Outcome::Accepted)))));
        assert!(view.take_sent("a").is_none(), "taken once");
        assert!(view.send("a", Kind::Delete), "the next action may go");
    }

    #[test]
    fn an_outcome_nobody_will_take_goes_with_the_watch() {
        let t0 = Instant::now();
        let mut view = View::default();
        view.register("a", owner("a"), t0);
        view.send("a", Kind::Stop);
        view.sent_back("a", Ok(Outcome::Accepted));
        for _ in 0..QUIET_REFRESHES {
            view.apply(listed(&[task("a", "TERMINATED")]), t0);
        }
        assert_eq!(view.load(), (0, 0));
        assert!(view.take_sent("a").is_none());
        view.register("b", owner("b"), t0);
        view.send("b", Kind::Stop);
        view.unwatch("b");
        assert!(view.take_sent("b").is_none(), "unwatched: the outcome is dropped when it comes back");
        view.sent_back("b", Ok(Outcome::Accepted));
        assert!(view.take_sent("b").is_none());
    }
}
