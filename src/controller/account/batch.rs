//! Coalesced stops, restarts and deletes (design.md §5): requests due within a short window go
//! out as one `BatchStopMigrationTasks` / `BatchRestartOnlineMigrationTasks` /
//! `DeleteMigrationTask` call per 50 ids; a lone stop uses the single-task call. HTTP 200 only
//! means "delivered", so every item is checked, and each requester learns its own item's outcome
//! (a failed item is retried by its requester alone).

use super::circuit::Circuit;
use crate::dcs::client::MAX_BATCH;
use crate::dcs::model::{BatchItemResult, BatchResult};
use crate::dcs::{DcsClient, DcsError};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{Notify, oneshot};

/// Which batch operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Stop,
    Restart,
    Delete,
}

/// What happened to one requested task.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The API accepted it (a stop is under way, a restart started).
    Accepted,
    /// The API refused it because of the task's state (`DCS.4957`): a stop found it already
    /// ended, a restart found it not stoppped.
    WrongState(String),
    /// The task does not exist (`DCS.4133`).
    Gone,
    /// The item failed otherwise: the requester retries.
    Failed(String),
}

impl Outcome {
    fn of_item(item: &BatchItemResult) -> Self {
        if item.succeeded() {
            return Self::Accepted;
        }
        let code = item.error_code.clone().unwrap_or_default();
        let text = format!("{code} {}", item.error_msg.clone().unwrap_or_default()).trim().to_owned();
        match code.as_str() {
            "DCS.4957" => Self::WrongState(text),
            "DCS.4133" => Self::Gone,
            _ => Self::Failed(text),
        }
    }
}

type Waiter = (String, oneshot::Sender<Result<Outcome, DcsError>>);

/// Collects requests for one account and one kind, and sends them together through the
/// account's client and circuit.
pub struct Batcher {
    kind: Kind,
    /// A round closes after this long without a new request (or when a batch is full).
    window: Duration,
    queue: Mutex<Vec<Waiter>>,
    wake: Arc<Notify>,
    client: DcsClient,
    circuit: Arc<Circuit>,
}

impl Batcher {
    /// A batcher and its loop, which ends once the batcher is dropped and `close`d.
    pub fn start(kind: Kind, window: Duration, client: DcsClient, circuit: Arc<Circuit>) -> Arc<Self> {
        let batcher = Arc::new(Self {
            kind,
            window,
            queue: Mutex::new(Vec::new()),
            wake: Arc::new(Notify::new()),
            client,
            circuit,
        });
        tokio::spawn(Self::run(Arc::downgrade(&batcher), batcher.wake.clone()));
        batcher
    }

    /// Wakes the loop so that it sees its batcher gone.
    pub fn close(&self) {
        self.wake.notify_one();
    }

    /// A round stays open at most this many windows while requests keep coming.
    const MAX_WINDOWS: u32 = 10;

    /// Queues a task and waits for its outcome (one quiet window, or a full batch, plus the call).
    pub async fn request(&self, task_id: &str) -> Result<Outcome, DcsError> {
        let (tx, rx) = oneshot::channel();
        self.queue.lock().expect("batch queue").push((task_id.to_owned(), tx));
        self.wake.notify_one();
        rx.await.unwrap_or_else(|_| Err(DcsError::InvalidRequest("the batch loop stopped".into())))
    }

    /// Sends queued requests while the batcher lives. A round opens with its first request and
    /// closes when a window passes without a new one, when a batch is full, or after
    /// `MAX_WINDOWS` windows; then what is queued goes out through the account's circuit. Mass
    /// deletions arrive as a stream (kubectl deletes one object at a time), so closing on quiet
    /// rather than on a fixed timer is what keeps the calls few and full. A round that holds a full
    /// batch sends full batches only: the rest opens the next round, which waits for more.
    async fn run(this: Weak<Self>, wake: Arc<Notify>) {
        loop {
            wake.notified().await;
            let Some(batcher) = this.upgrade() else { return };
            while batcher.queued() > 0 {
                batcher.round().await;
            }
        }
    }

    async fn round(&self) {
        let mut seen = self.queued();
        let mut windows = 0;
        while seen < MAX_BATCH && windows < Self::MAX_WINDOWS {
            tokio::time::sleep(self.window).await;
            windows += 1;
            let now = self.queued();
            if now == seen {
                break;
            }
            seen = now;
        }
        let round: Vec<Waiter> = {
            let mut queue = self.queue.lock().expect("batch queue");
            let rest = if queue.len() >= MAX_BATCH { queue.len() % MAX_BATCH } else { 0 };
            let sent = queue.len() - rest;
            queue.drain(..sent).collect()
        };
        let mut waiters: Vec<Waiter> = Vec::with_capacity(round.len());
        for (id, tx) in round {
            // The same task requested twice in one round (two reconciles) is sent once.
            if waiters.iter().any(|(known, _)| *known == id) {
                let _ = tx.send(Ok(Outcome::Accepted));
            } else {
                waiters.push((id, tx));
            }
        }
        for chunk in chunks(waiters) {
            let ids: Vec<String> = chunk.iter().map(|(id, _)| id.clone()).collect();
            let kind = self.kind;
            let result = self.circuit.call(&self.client, |client| send(kind, client, ids)).await;
            deliver(chunk, result);
        }
    }
}

impl Batcher {
    fn queued(&self) -> usize {
        self.queue.lock().expect("batch queue").len()
    }
}

fn chunks(mut waiters: Vec<Waiter>) -> Vec<Vec<Waiter>> {
    let mut out = Vec::new();
    while !waiters.is_empty() {
        let rest = waiters.split_off(waiters.len().min(MAX_BATCH));
        out.push(std::mem::replace(&mut waiters, rest));
    }
    out
}

/// One call for a chunk: the single-task stop for a lone stop, else the batch call.
async fn send(kind: Kind, client: DcsClient, ids: Vec<String>) -> Result<BatchResult, DcsError> {
    match (kind, ids.as_slice()) {
        (Kind::Stop, [id]) => {
            let item = match client.stop_migration_task(id).await {
                Ok(_) => {
                    BatchItemResult { result: Some("success".into()), task_id: Some(id.clone()), ..Default::default() }
                }
                Err(DcsError::Api { error, .. }) if error.status == 400 => BatchItemResult {
                    result: Some("failed".into()),
                    task_id: Some(id.clone()),
                    error_code: Some(error.code),
                    error_msg: Some(error.message),
                },
                Err(e) => return Err(e),
            };
            Ok(BatchResult { migration_tasks: vec![item] })
        }
        (Kind::Stop, _) => client.batch_stop_migration_tasks(&ids).await,
        (Kind::Restart, _) => client.batch_restart_online_migration_tasks(&ids).await,
        (Kind::Delete, _) => delete(&client, ids).await,
    }
}

/// One `DeleteMigrationTask` for many ids. The API answers the ids it deleted, and refuses the
/// whole call when any task cannot be deleted in its state: then each id goes alone, so that one
/// task cannot hold the others back.
async fn delete(client: &DcsClient, ids: Vec<String>) -> Result<BatchResult, DcsError> {
    let item = |id: &String, code: Option<&str>, message: &str| BatchItemResult {
        result: Some(if code.is_none() { "success" } else { "failed" }.into()),
        task_id: Some(id.clone()),
        error_code: code.map(str::to_owned),
        error_msg: Some(message.to_owned()).filter(|m| !m.is_empty()),
    };
    let items = match client.delete_migration_tasks(&ids).await {
        Ok(deleted) => ids
            .iter()
            .map(|id| match deleted.contains(id) {
                true => item(id, None, ""),
                false => item(id, Some("UNCONFIRMED"), "the answer did not list this task"),
            })
            .collect(),
        Err(e) if e.is_not_found() => ids.iter().map(|id| item(id, Some("DCS.4133"), "")).collect(),
        Err(e) if e.code() == Some("DCS.4957") && ids.len() > 1 => {
            let mut items = Vec::with_capacity(ids.len());
            for id in ids {
                items.extend(Box::pin(delete(client, vec![id])).await?.migration_tasks);
            }
            items
        }
        Err(DcsError::Api { error, .. }) if error.status == 400 => {
            ids.iter().map(|id| item(id, Some(&error.code), &error.message)).collect()
        }
        Err(e) => return Err(e),
    };
    Ok(BatchResult { migration_tasks: items })
}

fn deliver(chunk: Vec<Waiter>, result: Result<BatchResult, DcsError>) {
    match result {
        Ok(answer) => {
            for (id, tx) in chunk {
                let outcome = answer
                    .migration_tasks
                    .iter()
                    .find(|item| item.task_id.as_deref() == Some(id.as_str()))
                    .map(Outcome::of_item)
                    .unwrap_or_else(|| Outcome::Failed("the batch answer did not mention this task".into()));
                let _ = tx.send(Ok(outcome));
            }
        }
        Err(e) => {
            for (_, tx) in chunk {
                let _ = tx.send(Err(e.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_map_to_outcomes_by_code() {
        let item = |result: &str, code: Option<&str>| BatchItemResult {
            result: Some(result.into()),
            task_id: Some("t".into()),
            error_code: code.map(str::to_owned),
            error_msg: Some("msg".into()),
        };
        assert_eq!(Outcome::of_item(&item("success", None)), Outcome::Accepted);
        assert!(matches!(Outcome::of_item(&item("failed", Some("DCS.4957"))), Outcome::WrongState(_)));
        assert_eq!(Outcome::of_item(&item("failed", Some("DCS.4133"))), Outcome::Gone);
        assert!(matches!(Outcome::of_item(&item("failed", Some("DCS.5000"))), Outcome::Failed(_)));
    }

    #[test]
    fn a_round_is_cut_into_chunks_of_fifty() {
        let waiters: Vec<Waiter> = (0..120).map(|i| (format!("{i}"), oneshot::channel().0)).collect();
        let sizes: Vec<usize> = chunks(waiters).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![50, 50, 20]);
    }
}
