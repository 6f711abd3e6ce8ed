//! The account's observation loop: one refresh per tick while tasks are watched — one list walk,
//! or one show per task where that is cheaper — then the progress counters that are due.

use super::super::observed::RemoteTask;
use super::Account;
use super::view::{self, Observed, PAGE, Plan};
use crate::dcs::model::{ListQuery, MigrationStats, MigrationTaskSummary};
use crate::dcs::{DcsClient, DcsError};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Weak;
use std::time::{Duration, Instant};

/// Keeps the account's loop running while the account is in use.
pub async fn observe_loop(account: Weak<Account>) {
    loop {
        let Some(acc) = account.upgrade() else { return };
        let tick = acc.settings.tick;
        let wake = acc.wake.clone();
        let plan = acc.view().plan(Instant::now());
        match plan {
            None => {
                drop(acc);
                // Nothing due: wait for a task to look at, re-checking now and then (a resync's turn, a dropped
                // account).
                let _ = tokio::time::timeout(Duration::from_secs(30), wake.notified()).await;
            }
            Some(plan) => {
                let started = Instant::now();
                acc.refresh(plan).await;
                drop(acc);
                // One look per tick, whatever wakes the loop: the resources that register or ask meanwhile (a
                // restart, a wave of creates) share the next one, so the calls per tick are one walk's pages.
                tokio::time::sleep(tick.saturating_sub(started.elapsed())).await;
            }
        }
    }
}

impl Account {
    /// An observation call of the account's loop: fails fast, through the same circuit.
    async fn look<T, F, Fut>(&self, f: F) -> Result<T, DcsError>
    where
        F: FnOnce(DcsClient) -> Fut,
        Fut: Future<Output = Result<T, DcsError>>,
    {
        self.circuit.call(&self.looker, f).await
    }

    /// One refresh of every watched task; wakes the owners whose task changed.
    async fn refresh(&self, plan: Plan) {
        let started = Instant::now();
        let (watched, lookups) = self.view().load();
        tracing::debug!(watched, lookups, ?plan, "refreshing the account's view");
        let outcome = match plan {
            Plan::Walk => {
                let wanted = self.view().wanted();
                self.walk_list(wanted).await
            }
            Plan::Show(ids) => self.show_each(&ids).await,
        };
        let (woken, refreshes) = {
            let mut view = self.view();
            let woken = view.apply(outcome, started);
            (woken, view.refreshes)
        };
        tracing::debug!(
            woken = woken.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "refreshed the account's view"
        );
        for owner in woken {
            let _ = self.triggers.send(owner);
        }
        // Status changes go out first; progress counters follow, so they never delay them.
        self.refreshed.send_replace(refreshes);
        let stats = self.due_stats().await;
        for owner in self.view().set_stats(stats) {
            let _ = self.triggers.send(owner);
        }
    }

    /// Walks the list until its end, or until every task watched when it began was found and no name is looked
    /// up (then the walk does not count the project's tasks).
    async fn walk_list(&self, wanted: view::Wanted) -> Result<Observed, DcsError> {
        let mut tasks = HashMap::new();
        let mut offset = 0u32;
        let total = loop {
            let query = ListQuery { offset: Some(offset), limit: Some(PAGE), name: None };
            // Also the tasks watched since the walk began: their waiters need not wait for the next one.
            let keep = |row: &MigrationTaskSummary| {
                row.task_id
                    .as_deref()
                    .is_some_and(|id| wanted.keeps(id, row.task_name.as_deref()) || self.view().watches(id))
            };
            let page = self.look(|c| async move { c.list_migration_tasks_where(&query, keep).await }).await?;
            for row in &page.migration_tasks {
                if let Some(id) = row.task_id.as_deref() {
                    tasks.insert(id.to_owned(), RemoteTask::from_summary(row));
                }
            }
            if view::last_page(page.rows, offset)? {
                break Some(offset as usize + page.rows);
            }
            if wanted.all_found(&tasks) {
                // A full page may be the last one (`count` does not say whether it counts the project or the
                // page): reading on could only find an empty page.
                break None;
            }
            offset += PAGE;
        };
        Ok(Observed { tasks, complete: true, project_tasks: total })
    }

    async fn show_each(&self, ids: &[String]) -> Result<Observed, DcsError> {
        let shows = ids.iter().map(|id| async move { (id.clone(), self.show_quiet(id).await) });
        let mut tasks = HashMap::new();
        for (id, result) in futures::future::join_all(shows).await {
            if let Some(task) = result? {
                tasks.insert(id, task);
            }
        }
        // A show that says "not found" is definite: treat the view as complete.
        Ok(Observed { tasks, complete: true, project_tasks: None })
    }

    async fn show_quiet(&self, id: &str) -> Result<Option<RemoteTask>, DcsError> {
        let owned = id.to_owned();
        match self.look(|c| async move { c.show_migration_task(&owned).await }).await {
            Ok(task) => Ok(Some(RemoteTask::from_detail(&task, id))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Progress counters of moving tasks whose stats are due. They take only budget nobody waits for, and at
    /// most a quarter of the account's call budget for one tick, so that observation keeps its place under
    /// the rate limit.
    async fn due_stats(&self) -> Vec<(String, MigrationStats)> {
        if self.looker.budget_contended() {
            // Creates, configures and stops are waiting for the rate limit: the counters stay due.
            return Vec::new();
        }
        let budget = ((self.settings.rate_limit.qps * self.settings.tick.as_secs_f64()) / 4.0).max(1.0) as usize;
        let intervals = (self.settings.stats_interval, self.settings.streaming_stats_interval);
        let due = self.view().due_stats(Instant::now(), intervals, budget);
        let fetches = due.into_iter().map(|id| async move {
            let owned = id.clone();
            let result = self.look(|c| async move { c.show_migration_task_stats(&owned).await }).await;
            (id, result)
        });
        futures::future::join_all(fetches).await.into_iter().filter_map(|(id, r)| r.ok().map(|s| (id, s))).collect()
    }
}
