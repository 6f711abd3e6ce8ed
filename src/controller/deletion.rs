//! Deletion (design.md §5): the finalizer runs `deletionPolicy` whatever the `paused` annotation
//! says. `Stop` stops the task unless it already ended and waits for a terminal state; `Delete`
//! then deletes the task record and confirms its absence through the list; `Orphan` leaves it.
//! A task that no longer exists counts as stopped. A resource that cannot stop its task says
//! why, and how to let go (`deletionPolicy: Orphan`).

use super::account::Account;
use super::account::batch::{Kind, Outcome};
use super::account::view::Sent;
use super::conditions::Problem;
use super::decision::CreateMark;
use super::observed::{Remote, known_task_id};
use super::pass::{Error, Pass, Report};
use crate::crd::DeletionPolicy;
use crate::dcs::DcsError;
use crate::dcs::model::TaskState;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use std::sync::Arc;

/// What to tell a user whose resource cannot finish deleting.
const ESCAPE_HATCH: &str =
    "to release the resource without stopping the remote task, set spec.deletionPolicy to Orphan";

/// Runs the finalizer of a resource being deleted.
pub async fn run(mut pass: Pass<'_>) -> Result<Action, Error> {
    if !pass.has_finalizer() {
        return Ok(Action::await_change());
    }
    let policy = pass.rm.spec.deletion_policy;
    let task_id = known_task_id(&pass.rm.spec, &pass.written).map(str::to_owned);
    if policy == DeletionPolicy::Orphan {
        let note = match &task_id {
            Some(id) => format!("deletionPolicy is Orphan: the remote task {id} is left as it is"),
            None => "deletionPolicy is Orphan: nothing was stopped".to_owned(),
        };
        pass.event(EventType::Normal, "Orphaned", "Delete", note).await;
        return release(&pass, None).await;
    }
    let (_access, account) = match pass.account().await {
        Ok(found) => found,
        Err(problem) => return blocked(&mut pass, problem).await,
    };
    let task_id = match task_id {
        Some(id) => Some(id),
        // A create may have been sent before a crash: find it by name.
        None if pass.create_mark() != CreateMark::None => {
            match account.find_by_name(&pass.task_name, |t| pass.owns(t)).await {
                Ok(found) => found.map(|t| t.task_id),
                Err(e) => return blocked(&mut pass, Problem::from_dcs(&e)).await,
            }
        }
        None => None,
    };
    let Some(id) = task_id else {
        return release(&pass, None).await;
    };
    // A stop or delete this process sent: the pass waits for its outcome without holding a
    // reconcile slot (a mass deletion would otherwise hold them all while batches collect).
    match account.take_sent(&id) {
        Some(Sent::Out(_)) => return Ok(pass.until_woken()),
        Some(Sent::Back(Kind::Stop, outcome)) => return stopped(pass, &account, &id, outcome).await,
        Some(Sent::Back(Kind::Delete, outcome)) => return deleted(pass, &account, &id, outcome).await,
        // A restart asked for before the deletion: the look below shows what it did.
        Some(Sent::Back(Kind::Restart, _)) | None => {}
    }
    // A fresh look, without holding a reconcile slot while a whole namespace waits for it: the
    // account's loop wakes this resource when the look is in.
    let remote = match account.observe_later(&id, pass.owner(), true) {
        Some(Ok(remote)) => remote,
        Some(Err(e)) => return blocked(&mut pass, Problem::from_dcs(&e)).await,
        None => {
            tracing::debug!(task_id = %id, "deleting: waiting for a look at the task");
            return Ok(pass.until_woken());
        }
    };
    tracing::debug!(task_id = %id, state = ?remote.state(), "deleting: the task as looked at");
    let task = match &remote {
        Remote::Present(task) => task.clone(),
        Remote::Absent => return release_gone(&pass, &account, &id).await,
        // Missing from one list walk: the next one decides.
        Remote::NotLookedUp => return Ok(after_next_look(&pass, &account, &id)),
    };
    let state = task.state();
    if !state.is_terminal() {
        return stop(pass, &account, &id, &remote).await;
    }
    if policy == DeletionPolicy::Delete && state != TaskState::Deleted {
        return Ok(delete(&pass, &account, &id));
    }
    release_gone(&pass, &account, &id).await
}

/// Stops a task that still runs (unless it is stopping already); the owner is woken when the stop's
/// outcome is in, else with the next look.
async fn stop(mut pass: Pass<'_>, account: &Arc<Account>, id: &str, remote: &Remote) -> Result<Action, Error> {
    pass.report(Report { remote: Some(remote), ..Default::default() }).await?;
    if remote.state() == Some(TaskState::Terminating) {
        return Ok(after_next_look(&pass, account, id));
    }
    account.send_later(Kind::Stop, id, pass.owner());
    Ok(pass.until_woken())
}

/// What came of the stop: accepted, the task is stopping; ended meanwhile, the next look shows how.
async fn stopped(
    mut pass: Pass<'_>,
    account: &Account,
    id: &str,
    outcome: Result<Outcome, DcsError>,
) -> Result<Action, Error> {
    match outcome {
        Ok(Outcome::Accepted) => {
            crate::crash::point("deletion-stop-sent");
            pass.event(EventType::Normal, "Stopping", "Delete", format!("stopping the remote task {id}")).await;
        }
        Ok(Outcome::WrongState(_)) => {}
        Ok(Outcome::Gone) => return release_gone(&pass, account, id).await,
        Ok(Outcome::Failed(message)) => return Err(Error::Transient(format!("stopping task {id}: {message}"))),
        Err(e) => return blocked(&mut pass, Problem::from_dcs(&e)).await,
    }
    Ok(after_next_look(&pass, account, id))
}

/// Deletes the record of an ended task (once); the owner is woken when the delete's outcome is in.
fn delete(pass: &Pass<'_>, account: &Arc<Account>, id: &str) -> Action {
    if !account.deleted(id) {
        account.send_later(Kind::Delete, id, pass.owner());
        return pass.until_woken();
    }
    after_next_look(pass, account, id)
}

/// What came of the delete; then the list must confirm it: the detail call may still answer after
/// a delete.
async fn deleted(
    mut pass: Pass<'_>,
    account: &Account,
    id: &str,
    outcome: Result<Outcome, DcsError>,
) -> Result<Action, Error> {
    match outcome {
        Ok(Outcome::Accepted | Outcome::Gone) => {}
        Ok(Outcome::WrongState(message) | Outcome::Failed(message)) => {
            return Err(Error::Transient(format!("deleting task {id}: {message}")));
        }
        Err(e) => return blocked(&mut pass, Problem::from_dcs(&e)).await,
    }
    crate::crash::point("deletion-delete-sent");
    pass.event(EventType::Normal, "Deleting", "Delete", format!("deleting the remote task record {id}")).await;
    Ok(after_next_look(&pass, account, id))
}

/// Comes back with the account's next look at the task, asked for now, so that the look that
/// follows this pass's action (stop, delete) is the one that answers the next pass.
fn after_next_look(pass: &Pass<'_>, account: &Account, id: &str) -> Action {
    account.ask_for_look(id, pass.owner());
    pass.until_woken()
}

async fn release_gone(pass: &Pass<'_>, account: &Account, id: &str) -> Result<Action, Error> {
    account.unwatch(id);
    release(pass, Some(id)).await
}

/// Removes the finalizer.
async fn release(pass: &Pass<'_>, task_id: Option<&str>) -> Result<Action, Error> {
    pass.remove_finalizer().await?;
    pass.ctx.guard.released(&pass.rm);
    tracing::info!(task_id, "released the resource");
    Ok(Action::await_change())
}

/// The task cannot be stopped now. Transient causes are retried with backoff; permanent ones
/// say why and name the escape hatch, in status and in an Event.
async fn blocked(pass: &mut Pass<'_>, problem: Problem) -> Result<Action, Error> {
    if let Problem::Transient(message) = problem {
        let problem = Problem::Transient(message);
        pass.report(Report { problem: Some(&problem), ..Default::default() }).await?;
        return Err(Error::Transient(problem.message().to_owned()));
    }
    let problem = problem.map_message(|m| format!("cannot stop the remote task: {m}; {ESCAPE_HATCH}"));
    pass.warn("DeletionBlocked", "Delete", &problem).await;
    pass.report(Report { problem: Some(&problem), ..Default::default() }).await?;
    Ok(Action::requeue(pass.ctx.settings.stalled_retry))
}
