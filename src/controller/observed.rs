//! What is known of a remote task, whichever call it came from (list row, detail, or the answer
//! of an action): the vocabulary that the decision core, the status mapping and the accounts'
//! observation share.

use super::conditions::{self, ConditionType, Reason};
use crate::crd::{Phase, RedisMigrationSpec, RedisMigrationStatus};
use crate::dcs::model::{MigrationTask, MigrationTaskSummary, TaskState, TaskStatus};

/// What is known of the remote task.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RemoteTask {
    pub task_id: String,
    pub task_name: Option<String>,
    /// The task's description (where the operator marks the tasks it created).
    pub description: Option<String>,
    pub status: TaskStatus,
    pub error_message: Option<String>,
    pub ecs_private_ip: Option<String>,
    /// `auto` / `manual`, when the API reported it.
    pub resume_mode: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub released_at: Option<String>,
}

impl RemoteTask {
    /// The decoded state of the status word.
    pub fn state(&self) -> TaskState {
        self.status.state()
    }

    /// The list row as the core sees it.
    pub fn from_summary(row: &MigrationTaskSummary) -> Self {
        Self {
            task_id: row.task_id.clone().unwrap_or_default(),
            task_name: row.task_name.clone(),
            description: row.description.clone(),
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
    pub fn from_detail(task: &MigrationTask, asked_id: &str) -> Self {
        Self {
            task_id: task.task_id.clone().unwrap_or_else(|| asked_id.to_owned()),
            task_name: task.task_name.clone(),
            description: task.description.clone(),
            status: task.status.clone(),
            error_message: task.error_message.clone(),
            ecs_private_ip: task.ecs_tenant_private_ip.clone(),
            resume_mode: task.resume_mode.clone(),
            created_at: task.created_at.clone(),
            updated_at: task.updated_at.clone(),
            released_at: task.released_at.clone(),
        }
    }
}

/// The result of looking for the remote task.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // short-lived, one per reconcile
pub enum Remote {
    /// Not looked up (no task id known, no search by name done yet).
    NotLookedUp,
    /// Looked up: it does not exist (`DCS.4133`, or absent from the list).
    Absent,
    /// It exists.
    Present(RemoteTask),
}

impl Remote {
    /// The task's id, when it is known to exist.
    pub fn task_id(&self) -> Option<&str> {
        match self {
            Self::Present(t) => Some(&t.task_id),
            _ => None,
        }
    }

    /// The decoded state of the task, when it exists.
    pub fn state(&self) -> Option<TaskState> {
        match self {
            Self::Present(t) => Some(t.state()),
            _ => None,
        }
    }

    /// The same, with the status word an accepted action reported (an empty word changes nothing).
    pub fn with_status(self, word: TaskStatus) -> Self {
        match self {
            Self::Present(mut t) if !word.word().is_empty() => {
                t.status = word;
                Self::Present(t)
            }
            other => other,
        }
    }
}

/// The task id this resource refers to: the recorded one, else the one it adopts by spec.
pub fn known_task_id<'a>(spec: &'a RedisMigrationSpec, status: &'a RedisMigrationStatus) -> Option<&'a str> {
    status.task_id.as_deref().or_else(|| spec.online.as_ref().and_then(|o| o.task_id.as_deref()))
}

/// True when the resource reports a task stopped on the user's request (`spec.stopped`).
pub fn stopped_by_user(status: &RedisMigrationStatus) -> bool {
    status.phase == Some(Phase::Terminated)
        && conditions::find(&status.conditions, ConditionType::Ready)
            .is_some_and(|c| c.reason == Reason::StoppedByUser.as_str())
}
