//! The simulator's memory: tasks in creation order, bounded tombstones of deleted tasks (show keeps
//! answering their last status), the provisioning jobs of online tasks, per-operation call
//! counters and a bounded call log.

use std::collections::{HashMap, VecDeque};

use jiff::Timestamp;
use serde::Serialize;

use super::job::JobView;
use super::lifecycle::{Task, Timing};
use super::routes::Operation;

/// How many deleted tasks keep answering show with their last status.
pub const MAX_TOMBSTONES: usize = 2_000;
/// How many calls `/_sim/log` remembers.
pub const MAX_LOG_ENTRIES: usize = 100_000;

/// The tasks the simulator holds.
#[derive(Debug)]
pub struct TaskStore {
    timing: Timing,
    tasks: HashMap<String, Task>,
    /// Task ids in creation order.
    order: Vec<String>,
    tombstones: HashMap<String, Task>,
    tombstone_order: VecDeque<String>,
    /// Job id → id of the task it provisions (live or tombstone).
    jobs: HashMap<String, String>,
}

impl TaskStore {
    pub fn new(timing: Timing) -> Self {
        Self {
            timing,
            tasks: HashMap::new(),
            order: Vec::new(),
            tombstones: HashMap::new(),
            tombstone_order: VecDeque::new(),
            jobs: HashMap::new(),
        }
    }

    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Adds a new task.
    pub fn insert(&mut self, mut task: Task) {
        task.switchover.swaps_ips = self.timing.swap_ips;
        if let Some(job) = &task.job {
            self.jobs.insert(job.id.clone(), task.id.clone());
        }
        self.order.push(task.id.clone());
        self.tasks.insert(task.id.clone(), task);
    }

    /// The live task with this id, advanced to `now`.
    pub fn get_mut(&mut self, id: &str, now: Timestamp) -> Option<&mut Task> {
        let timing = self.timing;
        let task = self.tasks.get_mut(id)?;
        task.advance(now, &timing);
        Some(task)
    }

    /// The frozen last view of a deleted task.
    pub fn tombstone(&self, id: &str) -> Option<&Task> {
        self.tombstones.get(id)
    }

    /// The provisioning job with this id, its task advanced to `now` (a deleted task's job keeps
    /// its last view while the task's tombstone lasts).
    pub fn job(&mut self, job_id: &str, now: Timestamp) -> Option<JobView<'_>> {
        let task_id = self.jobs.get(job_id)?.clone();
        let task = if self.tasks.contains_key(&task_id) {
            self.get_mut(&task_id, now)?
        } else {
            self.tombstones.get(&task_id)?
        };
        task.job.as_ref().map(|job| job.view())
    }

    /// Removes a task; with `keep_tombstone`, show keeps answering its last status.
    pub fn remove(&mut self, id: &str, keep_tombstone: bool) -> Option<Task> {
        let task = self.tasks.remove(id)?;
        self.order.retain(|o| o != id);
        if keep_tombstone {
            if self.tombstone_order.len() >= MAX_TOMBSTONES
                && let Some(oldest) = self.tombstone_order.pop_front()
                && let Some(evicted) = self.tombstones.remove(&oldest)
            {
                self.forget_job(&evicted);
            }
            self.tombstone_order.push_back(id.to_owned());
            self.tombstones.insert(id.to_owned(), task.clone());
        } else {
            self.forget_job(&task);
        }
        Some(task)
    }

    fn forget_job(&mut self, task: &Task) {
        if let Some(job) = &task.job {
            self.jobs.remove(&job.id);
        }
    }

    /// Forgets every task and tombstone (what a restart with state lost does); returns how many
    /// live tasks there were.
    pub fn clear(&mut self) -> usize {
        let n = self.tasks.len();
        self.tasks.clear();
        self.order.clear();
        self.tombstones.clear();
        self.tombstone_order.clear();
        self.jobs.clear();
        n
    }

    /// Every live task advanced to `now`, newest first, that `keep` accepts.
    pub fn newest_first<F>(&mut self, now: Timestamp, mut keep: F) -> Vec<&Task>
    where
        F: FnMut(&Task) -> bool,
    {
        let timing = self.timing;
        for task in self.tasks.values_mut() {
            task.advance(now, &timing);
        }
        self.order.iter().rev().filter_map(|id| self.tasks.get(id)).filter(|t| keep(t)).collect()
    }
}

/// Who made an authenticated call: the access key and, for a temporary credential, the subject it was
/// issued to (`system:serviceaccount:NS:NAME`, `ecs-metadata` or `cce-pod-identity`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Caller {
    pub access_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// One entry of `/_sim/log`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// SDK operation name.
    pub operation: &'static str,
    /// HTTP status answered; 0 when the connection was closed without a reply.
    pub status: u16,
    /// Unix time in milliseconds when the call was answered (or its connection closed).
    pub at_ms: i64,
    /// Unix time in milliseconds when the call arrived, before any injected latency: what a
    /// client-side rate limit governs.
    pub received_at_ms: i64,
    /// Who made the call, once its signature verified.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub caller: Option<Caller>,
}

/// Per-operation call counters and the recent-call ring.
#[derive(Debug, Default)]
pub struct CallLog {
    counts: [u64; Operation::ALL.len()],
    ring: VecDeque<CallRecord>,
}

impl CallLog {
    /// Records one call of `operation` answered with `status` (0: no reply).
    pub fn record(&mut self, operation: Operation, status: u16, at: Timestamp) {
        self.record_received(operation, status, at, at, None);
    }

    /// Records one call of `operation` that arrived at `received` and was answered at `at`, made by `caller`
    /// if it was authenticated.
    pub fn record_received(
        &mut self,
        operation: Operation,
        status: u16,
        received: Timestamp,
        at: Timestamp,
        caller: Option<Caller>,
    ) {
        self.counts[operation.index()] += 1;
        if self.ring.len() >= MAX_LOG_ENTRIES {
            self.ring.pop_front();
        }
        self.ring.push_back(CallRecord {
            operation: operation.name(),
            status,
            at_ms: at.as_millisecond(),
            received_at_ms: received.as_millisecond(),
            caller,
        });
    }

    /// `{"<SdkOperationName>": n}` for every operation (0 when never called).
    pub fn counts(&self) -> serde_json::Map<String, serde_json::Value> {
        Operation::ALL.iter().map(|op| (op.name().to_owned(), self.counts[op.index()].into())).collect()
    }

    /// The remembered calls, oldest first.
    pub fn records(&self) -> impl Iterator<Item = &CallRecord> {
        self.ring.iter()
    }
}
