//! The I/O shell around the decision core: gathers the inputs (Secrets, the account's view of
//! the remote task), then loops: `decide` picks a step, `perform` does it and says what happened,
//! `advance` moves the pass's state on, and whatever must reach the server before the next step
//! (a recorded task, a switch-over request) is written first. Finally it reports status (only on
//! change) and Events and picks the requeue.

use super::account::Account;
use super::account::batch::{Kind, Outcome};
use super::account::view::{RESYNC_LOOKS, Sent};
use super::conditions::Problem;
use super::context::Context;
use super::decision::{self, Attempt, Created, Inputs, Recorded, State, Step, StepResult};
use super::deletion;
use super::names::ANNOTATION_RECONCILE_REQUESTED;
use super::observed::{Remote, known_task_id};
use super::pass::{Error, Pass, Report};
use super::requests::{self, CreateBody, Passwords};
use super::resync::Resync;
use super::switchover;
use crate::crd::{Phase, Progress, RedisMigration, SwitchAction, SwitchState};
use crate::dcs::DcsError;
use crate::dcs::model::{ExchangeInstanceIpBody, LogsQuery, MigrationLog, MigrationStats};
use crate::dcs::scrub::Scrubber;
use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use secrecy::ExposeSecret;
use std::sync::Arc;
use std::time::Duration;

/// Most steps one reconcile takes before it reports (look, mark, find, create, record, clear,
/// look, configure).
const MAX_STEPS: usize = 8;

/// Reconciles one RedisMigration.
#[tracing::instrument(skip_all, fields(namespace = rm.namespace().unwrap_or_default(), name = rm.name_any(), generation = rm.metadata.generation))]
pub async fn reconcile(rm: Arc<RedisMigration>, ctx: Arc<Context>) -> Result<Action, Error> {
    if ctx.written.is_behind(&rm) {
        // The watch event of this process's last write is on its way, and starts the next pass.
        tracing::debug!("the cache is behind this operator's last write: waiting for it");
        return Ok(Action::await_change());
    }
    let key = ObjectRef::from_obj(&*rm);
    let pass = Pass::new(rm.clone(), &ctx)?;
    let result = if pass.rm.metadata.deletion_timestamp.is_some() {
        ctx.forget_ended(&key);
        deletion::run(pass).await
    } else {
        apply(pass).await
    };
    match &result {
        Ok(_) => ctx.forget_failures(&key),
        // A write conditional on a resourceVersion that the cache had not caught up with: the next pass,
        // from the newer object, goes on (no Warning for what heals itself).
        Err(Error::Kube(kube::Error::Api(status))) if status.code == 409 => {
            tracing::debug!(message = %status.message, "conflict: the object changed since this pass read it");
        }
        Err(Error::Kube(e)) => kube_failure_event(&rm, &ctx, e).await,
        Err(_) => {}
    }
    result
}

/// A failure on the Kubernetes side (a refused status patch, conflicts) is told on the object
/// too, not only in the log: bounded, and made of the API server's words about our own request.
async fn kube_failure_event(rm: &RedisMigration, ctx: &Context, e: &kube::Error) {
    let mut note = format!("the operator could not update this resource: {e}");
    if note.len() > 512 {
        let cut = (0..=512).rev().find(|i| note.is_char_boundary(*i)).unwrap_or(0);
        note.truncate(cut);
    }
    let event = kube::runtime::events::Event {
        type_: EventType::Warning,
        reason: "KubernetesApiError".into(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.events.publish(&event, &rm.object_ref(&())).await {
        tracing::debug!(error = %e, "could not publish an Event");
    }
}

/// The `reconcile-requested-at` value not yet acted on, if any.
fn fresh_request(pass: &Pass<'_>) -> Option<String> {
    let requested = pass.annotation(ANNOTATION_RECONCILE_REQUESTED)?;
    (Some(requested) != pass.written.last_handled_reconcile_at.as_deref()).then(|| requested.to_owned())
}

/// The next step for this pass in `state`.
fn decide(pass: &Pass<'_>, state: &State) -> Step {
    decision::decide(&Inputs {
        spec: &pass.rm.spec,
        status: &pass.written,
        state,
        generation: pass.rm.metadata.generation,
        create_grace: pass.ctx.settings.create_grace,
    })
}

/// The desired-state path.
async fn apply(mut pass: Pass<'_>) -> Result<Action, Error> {
    let ctx = pass.ctx;
    let handled = fresh_request(&pass);
    let handled = handled.as_deref();
    if pass.paused() {
        return paused(pass, handled).await;
    }
    let resync = ended_and_settled(&pass, handled);
    if resync && ctx.resyncs.check(&pass.owner(), std::time::Instant::now()) == Resync::Wait {
        // Ended and looked at (or ended before this process started): nothing to do until its resync is due,
        // when the resync timer wakes it.
        return Ok(Action::await_change());
    }
    // Before any remote call, the Secrets this resource needs must survive until it is released.
    ctx.guard.protect(&ctx.client, &pass.rm).await?;
    let (_access, account) = match pass.account().await {
        Ok(found) => found,
        Err(problem) => return stalled(pass, problem, handled).await,
    };
    let known = known_task_id(&pass.rm.spec, &pass.written).is_some();
    let mut state =
        State::new(pass.create_mark(), pass.written.switchover.as_deref().cloned(), known, handled.is_some());
    state.job_polled_recently = !known
        || ctx.job_polled_within(&pass.owner(), decision::JOB_POLL)
        || pass.phase_entered_within(decision::JOB_POLL);
    if resync && let Some(id) = known_task_id(&pass.rm.spec, &pass.written) {
        // The resync look shares the account's next walk for resyncs; the owner is woken when it is in.
        let Some(looked) = account.resync_look(id, pass.owner()) else {
            return Ok(Action::requeue(RESYNC_LOOKS * 2));
        };
        if looked.is_ok() {
            // A failed look leaves the resync due: the retry asks again.
            ctx.resyncs.looked(&pass.owner(), std::time::Instant::now());
        }
        state = decision::advance(state, StepResult::Looked(looked), ctx.settings.tick);
    }
    if !pass.has_finalizer() && decide(&pass, &state) != Step::MarkCreatePending {
        // Before any remote call (a create's mark carries the finalizer with it).
        pass.add_finalizer().await?;
        return Ok(Action::await_change());
    }
    if let Some(id) = known_task_id(&pass.rm.spec, &pass.written) {
        // A stop or restart sent by an earlier pass: wait for it without holding a slot, or take its outcome.
        match account.take_sent(id) {
            Some(Sent::Out(_)) => return Ok(pass.until_woken()),
            Some(Sent::Back(Kind::Stop, outcome)) => {
                state = decision::advance(state, StepResult::Stopped(sent(outcome, "stop-sent")), ctx.settings.tick);
            }
            Some(Sent::Back(Kind::Restart, outcome)) => {
                let result = StepResult::Restarted(sent(outcome, "restart-sent"));
                state = decision::advance(state, result, ctx.settings.tick);
            }
            // Deletes are sent by deletion passes only, which take their outcomes.
            Some(Sent::Back(Kind::Delete, _)) | None => {}
        }
    }
    let started_from = state.clone();
    for _ in 0..MAX_STEPS {
        if state.finished() {
            break;
        }
        let step = decide(&pass, &state);
        tracing::debug!(?step, "decided");
        if step.begins_remote_work()
            && let Some(turn) = account.turn()
        {
            // One account's backlog must not hold every slot waiting for its rate limit while the other
            // accounts' resources wait for a slot: this one comes back at its turn.
            tracing::debug!(?step, ?turn, "the account's rate limit has a queue: the slot goes back until its turn");
            if handled.is_none() && state == started_from {
                // Nothing done or learnt that status could show: nothing to write either.
                return Ok(Action::requeue(turn));
            }
            state.requeue = Some(turn);
            break;
        }
        let result = match perform(&pass, &account, &state, step).await? {
            Performed::Did(result) => result,
            Performed::Nothing => break,
            // No slot is held while the account's loop looks: it wakes this resource when the look is in.
            Performed::Later => return Ok(pass.until_woken()),
        };
        state = decision::advance(state, result, ctx.settings.tick);
        if let Some(point) = state.persist.take() {
            // What the next step relies on is on the server before it runs.
            pass.report(report(&state, handled, None)).await?;
            crate::crash::point(point);
        }
    }
    finish(pass, &account, state, handled).await
}

fn report<'a>(state: &'a State, handled: Option<&'a str>, progress: Option<Progress>) -> Report<'a> {
    Report {
        remote: Some(&state.remote),
        problem: state.problem.as_ref(),
        progress,
        handled,
        switch: state.switch.as_ref(),
        job_id: state.job_id.as_deref(),
        last_error: state.last_error.as_ref(),
    }
}

/// What performing a step came to.
#[expect(clippy::large_enum_variant, reason = "one value per step, on the stack, never stored")]
enum Performed {
    Did(StepResult),
    /// There is nothing to do remotely.
    Nothing,
    /// The step's answer comes later: the pass ends and the resource is woken when it is in.
    Later,
}

/// Performs one step.
async fn perform(pass: &Pass<'_>, account: &Arc<Account>, state: &State, step: Step) -> Result<Performed, Error> {
    let id = state.remote.task_id().unwrap_or_default().to_owned();
    Ok(Performed::Did(match step {
        Step::Observe => return Ok(Performed::Nothing),
        Step::Look(fresh) => {
            let id = known_task_id(&pass.rm.spec, &pass.written).unwrap_or_default();
            match account.observe_later(id, pass.owner(), fresh) {
                Some(looked) => StepResult::Looked(looked),
                None => return Ok(Performed::Later),
            }
        }
        Step::MarkCreatePending => {
            pass.mark_create_pending().await?;
            StepResult::Marked
        }
        Step::FindByName => {
            // No slot is held while the account's next walk comes: it wakes this resource with the answer.
            let Some(found) = account.find_by_name_later(&pass.task_name, pass.owner(), |t| pass.owns(t)).await else {
                return Ok(Performed::Later);
            };
            crate::crash::point("create-looked-up");
            StepResult::Found(found)
        }
        Step::Adopt(_) => StepResult::Adopting,
        Step::ClearCreateMark => {
            pass.clear_create_mark().await?;
            crate::crash::point("create-mark-cleared");
            announce(pass, state).await;
            StepResult::MarkCleared
        }
        Step::AwaitCreateGrace(wait) => StepResult::Waiting(wait),
        Step::Create => StepResult::Created(create(pass, account).await?),
        Step::Configure => StepResult::Configured(configure(pass, account, state).await),
        Step::UpdateResumeMode(mode) => {
            let wire = requests::wire_resume_mode(mode);
            let result = account.call(|c| async move { c.update_migration_task(&id, wire).await }).await;
            if result.is_ok() {
                remember(pass, account, &state.remote, |t| t.resume_mode = Some(decision::resume_word(mode).into()));
            }
            StepResult::ResumeModeSet(result.map(|()| mode))
        }
        // Coalesced with others while the batch collects; the next pass takes the outcome.
        Step::Stop | Step::Restart => {
            let kind = if step == Step::Stop { Kind::Stop } else { Kind::Restart };
            account.send_later(kind, &id, pass.owner());
            return Ok(Performed::Later);
        }
        Step::InspectSwitchover => {
            StepResult::Inspected(account.detail(&id).await.map(|t| t.task_status.unwrap_or_default()))
        }
        Step::RecordSwitch(action) => StepResult::SwitchRequested {
            action,
            attempt: pass.rm.spec.switchover.as_ref().map_or(0, |s| s.attempt),
            at: Timestamp::now().to_string(),
        },
        Step::SendSwitch(action) => StepResult::SwitchSent(send_switch(pass, account, &id, action).await),
        Step::ReadJob(job) => {
            pass.ctx.job_polled(&pass.owner());
            StepResult::JobRead(account.call(|c| async move { c.show_job_info(&job).await }).await)
        }
        Step::ReadFailure => StepResult::FailureRead(newest_error(pass, account, &id).await),
    }))
}

/// The newest ERROR line of a failed task's log, with the resource's Redis passwords scrubbed
/// from it (a log line may quote what it was given).
async fn newest_error(pass: &Pass<'_>, account: &Account, id: &str) -> Result<Option<MigrationLog>, DcsError> {
    let (id, query) = (id.to_owned(), LogsQuery::newest_errors(1));
    let page = account.call(|c| async move { c.list_migration_task_logs(&id, &query).await }).await?;
    let Some(mut line) = page.migration_logs.into_iter().next() else { return Ok(None) };
    let passwords = Passwords { namespace: &pass.namespace, secrets: &pass.secrets };
    let values = requests::password_values(&pass.rm.spec, &passwords).await;
    let scrubber = Scrubber::new(values.iter().map(|v| v.expose_secret()));
    line.message = line.message.map(|m| scrubber.scrub(&m));
    Ok(Some(line))
}

/// Passes an accepted batch outcome's crash point.
fn sent(result: Result<Outcome, DcsError>, point: &'static str) -> Result<Outcome, DcsError> {
    if matches!(result, Ok(Outcome::Accepted)) {
        crate::crash::point(point);
    }
    result
}

/// Tells the account what an accepted action did to the task, so a stale observation cannot
/// repeat it.
fn remember(
    pass: &Pass<'_>,
    account: &Account,
    remote: &Remote,
    change: impl FnOnce(&mut super::observed::RemoteTask),
) {
    if let Remote::Present(task) = remote {
        let mut task = task.clone();
        change(&mut task);
        account.record(&task, pass.owner());
    }
}

/// The Event of a task this pass created or adopted, once its record is written.
async fn announce(pass: &Pass<'_>, state: &State) {
    let id = state.remote.task_id().unwrap_or_default();
    let (reason, action, verb) = match state.recorded {
        Some(Recorded::Created) => ("Created", "Create", "created the remote task"),
        Some(Recorded::Adopted) => ("Adopted", "Adopt", "adopted the existing remote task"),
        None => return,
    };
    pass.event(EventType::Normal, reason, action, format!("{verb} {id} named {}", pass.task_name)).await;
}

/// Creates the remote task. Nothing sent, or certainly not applied: the mark goes.
async fn create(pass: &Pass<'_>, account: &Account) -> Result<Result<Created, Attempt>, Error> {
    let passwords = Passwords { namespace: &pass.namespace, secrets: &pass.secrets };
    let body = match requests::create_body(&pass.rm.spec, &pass.task_name, &pass.description(), &passwords).await {
        Ok(body) => body,
        Err(problem) => {
            pass.clear_create_mark().await?;
            return Ok(Err(Attempt::Refused(problem)));
        }
    };
    pass.create_goes_out();
    let answer = match body {
        CreateBody::BackupImport(body) => account
            .call(|c| async move { c.create_migration_task(&body).await })
            .await
            .and_then(|a| a.id.map(|id| (id, None)).ok_or_else(|| no_id(crate::dcs::Operation::CreateMigrationTask))),
        CreateBody::Online(body) => {
            account.call(|c| async move { c.create_online_migration_task(&body).await }).await.and_then(|a| {
                a.instance_id
                    .map(|id| (id, a.job_id))
                    .ok_or_else(|| no_id(crate::dcs::Operation::CreateOnlineMigrationTask))
            })
        }
    };
    match answer {
        Ok((task_id, job_id)) => {
            crate::crash::point("created");
            Ok(Ok(Created { task_id, task_name: pass.task_name.clone(), job_id }))
        }
        Err(e) => {
            if e.certainly_not_applied() {
                pass.clear_create_mark().await?;
            }
            Ok(Err(Attempt::Dcs(e)))
        }
    }
}

fn no_id(operation: crate::dcs::Operation) -> DcsError {
    DcsError::Decode { operation, status: 200, detail: "the answer has no task id".into() }
}

/// Configures an online task that awaits configuration; answers the status word it reported.
async fn configure(
    pass: &Pass<'_>,
    account: &Account,
    state: &State,
) -> Result<crate::dcs::model::TaskStatus, Attempt> {
    let passwords = Passwords { namespace: &pass.namespace, secrets: &pass.secrets };
    let body = requests::configure_body(&pass.rm.spec, &passwords).await.map_err(Attempt::Refused)?;
    let id = state.remote.task_id().unwrap_or_default().to_owned();
    let touched = id.clone();
    match account.call(|c| async move { c.set_online_migration_task(&id, &body).await }).await {
        Ok(accepted) => {
            crate::crash::point("configured");
            remember(pass, account, &state.remote, |t| t.status = accepted.status.clone());
            pass.event(EventType::Normal, "Configured", "Configure", "configured the online migration".into()).await;
            Ok(accepted.status)
        }
        Err(e) => {
            if decision::configure_may_have_applied(&e) {
                account.touched(&touched);
            }
            Err(Attempt::Dcs(e))
        }
    }
}

/// Sends the switch-over request recorded in this pass.
async fn send_switch(pass: &Pass<'_>, account: &Account, id: &str, action: SwitchAction) -> Result<(), DcsError> {
    let id = id.to_owned();
    let result = match action {
        SwitchAction::Exchange => {
            let wanted = pass.rm.spec.switchover.clone().unwrap_or_default();
            let body = ExchangeInstanceIpBody {
                exchanged_ip: wanted.exchange_ips,
                is_exchange_domain: wanted.exchange_domain,
            };
            account.call(|c| async move { c.exchange_instance_ip(&id, &body).await }).await
        }
        SwitchAction::Rollback => account.call(|c| async move { c.rollback_exchange_instance_ip(&id).await }).await,
    };
    if result.is_ok() {
        crate::crash::point("switchover-sent");
        let (reason, note) = match action {
            SwitchAction::Exchange => ("SwitchingOver", "exchanging the source and target IPs"),
            SwitchAction::Rollback => ("RollingBack", "rolling the IP exchange back"),
        };
        pass.event(EventType::Normal, reason, "Switchover", note.to_owned()).await;
    }
    result
}

/// Reports the pass and picks the requeue.
async fn finish(mut pass: Pass<'_>, account: &Account, state: State, handled: Option<&str>) -> Result<Action, Error> {
    let progress = match (&state.remote, &state.problem) {
        (Remote::Present(task), None) => account.stats(&task.task_id).map(|s| progress_of(&s)),
        _ => None,
    };
    if let Some(p) = &state.problem {
        pass.warn(p.reason().as_str(), "Reconcile", p).await;
    }
    switch_warning(&pass, &state).await;
    if let Some(error) = state.last_error.as_ref().filter(|e| pass.written.last_error.as_deref() != Some(*e)) {
        let reason = if error.code.as_deref() == Some("JOB_FAILED") { "ProvisioningFailed" } else { "TaskFailed" };
        pass.event(EventType::Warning, reason, "Observe", error.message.clone()).await;
    }
    pass.report(report(&state, handled, progress)).await?;
    if let Some(Problem::Transient(message)) = state.problem {
        return Err(Error::Transient(message));
    }
    // Ended (or gone), as status and the look agree: the account loop stops looking; the resync looks again. A
    // task not seen yet (missing from one walk) stays watched until a walk tells.
    let seen_ended = match &state.remote {
        Remote::Present(task) => task.state().is_terminal(),
        Remote::Absent => true,
        Remote::NotLookedUp => false,
    };
    if seen_ended
        && matches!(pass.written.phase, Some(Phase::Succeeded | Phase::Failed | Phase::Terminated))
        && let Some(id) = known_task_id(&pass.rm.spec, &pass.written)
    {
        account.unwatch(id);
    }
    Ok(Action::requeue(state.requeue.unwrap_or_else(|| next_requeue(&pass, state.problem.as_ref()))))
}

/// A Warning Event when a switch-over request failed or cannot be confirmed (once: on the change).
async fn switch_warning(pass: &Pass<'_>, state: &State) {
    let before = pass.written.switchover.as_ref().and_then(|s| s.state);
    let Some(record) = state.switch.as_ref() else { return };
    if record.state == before || !matches!(record.state, Some(SwitchState::Failed | SwitchState::Unconfirmed)) {
        return;
    }
    let (_, reason, message) = switchover::condition(Some(record));
    pass.event(EventType::Warning, reason.as_str(), "Switchover", message).await;
}

/// Reports while paused: no remote calls, not even the account loop's observation of the task.
async fn paused(mut pass: Pass<'_>, handled: Option<&str>) -> Result<Action, Error> {
    if let (Some(id), Ok((_, account))) = (known_task_id(&pass.rm.spec, &pass.written), pass.account().await) {
        account.unwatch(id);
    }
    pass.report(Report { handled, ..Default::default() }).await?;
    Ok(Action::requeue(pass.ctx.settings.resync))
}

/// Reports a problem that stops progress until something changes (a Secret or the spec).
async fn stalled(mut pass: Pass<'_>, problem: Problem, handled: Option<&str>) -> Result<Action, Error> {
    pass.warn(problem.reason().as_str(), "Reconcile", &problem).await;
    pass.report(Report { problem: Some(&problem), handled, ..Default::default() }).await?;
    let retry = pass.retry_after(&problem);
    if let Problem::Transient(message) = problem {
        return Err(Error::Transient(message));
    }
    Ok(Action::requeue(retry))
}

/// True when the resource's task had ended, status describes this generation, and nothing is
/// asked of it (no reconcile request, no create under way, no switch-over awaiting its outcome).
fn ended_and_settled(pass: &Pass<'_>, handled: Option<&str>) -> bool {
    let status = &pass.written;
    let awaiting_switch =
        status.switchover.as_ref().is_some_and(|s| matches!(s.state, Some(SwitchState::Sending | SwitchState::Sent)));
    handled.is_none()
        && matches!(status.phase, Some(Phase::Succeeded | Phase::Failed | Phase::Terminated))
        && status.observed_generation == pass.rm.metadata.generation
        && pass.create_mark() == decision::CreateMark::None
        && !awaiting_switch
}

/// Requeue after a successful pass: the account's loop wakes the resource on any remote change,
/// so this is a safety net (or the time until the progress deadline).
fn next_requeue(pass: &Pass<'_>, problem: Option<&Problem>) -> Duration {
    let settings = &pass.ctx.settings;
    if let Some(problem) = problem {
        return pass.retry_after(problem);
    }
    match pass.written.phase {
        // Spread over +20 % so that resources that ended together do not resync together.
        Some(Phase::Succeeded | Phase::Failed | Phase::Terminated | Phase::Paused) => {
            settings.resync.mul_f64(rand::random_range(1.0..1.2))
        }
        _ => settings.active_resync,
    }
}

fn progress_of(stats: &MigrationStats) -> Progress {
    let int = |v: Option<f64>| v.map(|n| n.round() as i64);
    Progress {
        percent: stats.full_migration_progress.map(|p| p.clamp(0.0, 100.0).round() as i32),
        source_keys: int(stats.source_dbsize),
        target_keys: int(stats.target_dbsize),
        offset: int(stats.offset),
        ops_per_second: int(stats.target_ops),
        input_kbps: int(stats.target_input_kbps),
        updated_at: None,
    }
}
