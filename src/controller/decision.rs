//! The pure decision core: given the resource and what this pass knows of its remote task,
//! `decide` picks the one step that comes next; the shell (`reconcile`) performs it and hands
//! back what happened as a [`StepResult`]; `advance` turns that into the pass's next [`State`].
//! No I/O here; both are tested as tables.

use super::conditions::{Problem, Reason};
use super::observed::{Remote, RemoteTask, known_task_id, stopped_by_user};
use super::switchover::{self, Need};
use crate::controller::account::batch::Outcome;
use crate::crd::{
    LastError, MigrationType, Phase, RedisMigrationSpec, RedisMigrationStatus, ResumeMode, SwitchAction,
    SwitchoverStatus,
};
use crate::dcs::DcsError;
use crate::dcs::model::{JobInfo, JobOutcome, MigrationLog, TaskState, TaskStatus};
use std::time::Duration;

/// The crash-safety mark `dcs.migration.io/create-pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMark {
    /// No mark: no create was ever attempted for this resource.
    None,
    /// Written earlier (a create may have been sent, possibly by a process that crashed)
    /// this long ago.
    Earlier { age: Duration },
    /// Written by this process, which has sent no create since (in this pass or an earlier one): no create
    /// can have been sent for it.
    JustWritten,
}

/// What one pass knows and has done so far.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub remote: Remote,
    pub mark: CreateMark,
    /// The look at a known task this pass still owes (`Some(true)`: a fresh one).
    pub look: Option<bool>,
    /// What went wrong; ends the pass.
    pub problem: Option<Problem>,
    /// Ends the pass: come back after this long.
    pub requeue: Option<Duration>,
    /// The switch-over record as status must say it.
    pub switch: Option<SwitchoverStatus>,
    /// The task's top-level `task_status`, when read in this pass.
    pub switch_word: Option<String>,
    /// The switch-over request was recorded in this pass (its call cannot have gone out yet).
    pub switch_recorded_now: bool,
    /// The task this pass created or adopted, until its record is written and the mark cleared.
    pub recorded: Option<Recorded>,
    /// The provisioning job of an online task this pass created.
    pub job_id: Option<String>,
    /// The provisioning job was read in this pass.
    pub job_read: bool,
    /// The provisioning job was read by a pass, or the task began provisioning, less than [`JOB_POLL`] ago:
    /// while the task provisions its job is not read yet (a failure is still explained at once). Most jobs
    /// finish well within that: they are never read.
    pub job_polled_recently: bool,
    /// The failed task's log was read in this pass.
    pub failure_read: bool,
    /// Why the task or its provisioning failed, learnt in this pass.
    pub last_error: Option<LastError>,
    /// Status must reach the server before the next step; the crash point that follows it.
    pub persist: Option<&'static str>,
}

/// How this pass came to know its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Created,
    Adopted,
}

impl State {
    /// The state a pass starts from.
    pub fn new(mark: CreateMark, switch: Option<SwitchoverStatus>, task_known: bool, fresh: bool) -> Self {
        Self {
            remote: Remote::NotLookedUp,
            mark,
            look: task_known.then_some(fresh),
            problem: None,
            requeue: None,
            switch,
            switch_word: None,
            switch_recorded_now: false,
            recorded: None,
            job_id: None,
            job_read: false,
            job_polled_recently: false,
            failure_read: false,
            last_error: None,
            persist: None,
        }
    }

    /// True when the pass has nothing more to do now.
    pub fn finished(&self) -> bool {
        self.problem.is_some() || self.requeue.is_some()
    }
}

/// Everything the core decides from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub spec: &'a RedisMigrationSpec,
    /// The status as the server has it.
    pub status: &'a RedisMigrationStatus,
    pub state: &'a State,
    /// `metadata.generation` of the resource.
    pub generation: Option<i64>,
    /// How long a create with an unknown outcome is given to show up in the list before it is
    /// sent again (the list may lag behind a create).
    pub create_grace: Duration,
}

/// The next step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Look at the known task through the account's observation (`true`: a fresh look).
    Look(bool),
    /// Write the `create-pending` mark before anything is created.
    MarkCreatePending,
    /// List tasks by the deterministic name (a previous attempt may have created one).
    FindByName,
    /// Record this existing task as ours.
    Adopt(String),
    /// The task id is recorded: the `create-pending` mark has done its job.
    ClearCreateMark,
    /// A create with unknown outcome may still appear in the list: check again later.
    AwaitCreateGrace(Duration),
    /// Create the task (CreateMigrationTask or CreateOnlineMigrationTask).
    Create,
    /// Configure the online task that awaits configuration (SetOnlineMigrationTask).
    Configure,
    /// Read the task's top-level `task_status` (ShowMigrationTask) for the switch-over.
    InspectSwitchover,
    /// Record a switch-over request in status; it goes out once that is written.
    RecordSwitch(SwitchAction),
    /// Send the switch-over request recorded in this pass (ExchangeInstanceIp / RollbackExchangeInstanceIp).
    SendSwitch(SwitchAction),
    /// Apply the spec's resume mode (UpdateMigrationTask).
    UpdateResumeMode(ResumeMode),
    /// Stop the task (`spec.stopped`).
    Stop,
    /// Restart the online task the user had stopped (BatchRestartOnlineMigrationTasks).
    Restart,
    /// Read the provisioning job of an online task (ShowJobInfo): while it provisions, and once
    /// when the task failed.
    ReadJob(String),
    /// Read the newest error line of a failed task's log, once (ListMigrationTaskLogs).
    ReadFailure,
    /// Nothing to change remotely: report.
    Observe,
}

impl Step {
    /// Whether this step begins remote work that waits for the account's rate limit in the reconcile's slot: a
    /// pass gives its slot back before such a step while the account's limit has a queue. The steps that finish
    /// what one of these began (the create after its mark, the switch-over sent after its record) are not held
    /// back.
    pub fn begins_remote_work(&self) -> bool {
        matches!(
            self,
            Self::MarkCreatePending
                | Self::Configure
                | Self::InspectSwitchover
                | Self::UpdateResumeMode(_)
                | Self::ReadJob(_)
                | Self::ReadFailure
        )
    }
}

/// Why a create or configure did not go through.
#[derive(Debug, Clone)]
pub enum Attempt {
    /// Nothing was sent: the request could not be built (a Secret, a key or a spec part is
    /// missing).
    Refused(Problem),
    /// The API call failed; it may have taken effect unless the error says otherwise.
    Dcs(DcsError),
}

/// A task the API just created.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub task_id: String,
    pub task_name: String,
    /// The provisioning job of an online task, when the answer names it.
    pub job_id: Option<String>,
}

/// What performing a step did.
#[derive(Debug, Clone)]
pub enum StepResult {
    /// The account's view of the task (or why it could not be had).
    Looked(Result<Remote, DcsError>),
    /// The `create-pending` mark is written.
    Marked,
    /// The list by name answered.
    Found(Result<Option<RemoteTask>, DcsError>),
    /// The task is to be recorded as ours.
    Adopting,
    /// The mark is cleared.
    MarkCleared,
    /// Nothing was done: wait this long.
    Waiting(Duration),
    Created(Result<Created, Attempt>),
    /// Configure answered with the task's new status word.
    Configured(Result<TaskStatus, Attempt>),
    ResumeModeSet(Result<ResumeMode, DcsError>),
    Stopped(Result<Outcome, DcsError>),
    Restarted(Result<Outcome, DcsError>),
    /// The task's top-level `task_status` word.
    Inspected(Result<String, DcsError>),
    /// A switch-over request, to be recorded at this time (RFC 3339).
    SwitchRequested {
        action: SwitchAction,
        attempt: i32,
        at: String,
    },
    SwitchSent(Result<(), DcsError>),
    /// The provisioning job; a failed read only loses detail.
    JobRead(Result<JobInfo, DcsError>),
    /// The newest error line of the task's log, if it has one.
    FailureRead(Result<Option<MigrationLog>, DcsError>),
}

/// Decides the next step (deletion is decided in `deletion`).
pub fn decide(inputs: &Inputs<'_>) -> Step {
    let Inputs { spec, status, state, generation, create_grace } = *inputs;
    if let Some(fresh) = state.look {
        return Step::Look(fresh);
    }
    if known_task_id(spec, status).is_none() {
        return create_step(status, state, generation, create_grace);
    }
    if state.mark != CreateMark::None {
        return Step::ClearCreateMark;
    }
    let Remote::Present(task) = &state.remote else {
        return Step::Observe;
    };
    task_step(spec, status, state, task)
}

/// The way to a task: mark, look it up by name, adopt or create it.
fn create_step(status: &RedisMigrationStatus, state: &State, generation: Option<i64>, grace: Duration) -> Step {
    if state.recorded.is_some() {
        // Its record is on its way to the server.
        return Step::Observe;
    }
    if refused_for_generation(status, generation) {
        // The API refused this spec as invalid: terminal until the spec changes.
        return Step::Observe;
    }
    match (&state.remote, state.mark) {
        (Remote::Present(task), _) => Step::Adopt(task.task_id.clone()),
        (_, CreateMark::None) => Step::MarkCreatePending,
        (Remote::NotLookedUp, _) => Step::FindByName,
        (Remote::Absent, CreateMark::JustWritten) => Step::Create,
        (Remote::Absent, CreateMark::Earlier { age }) if age >= grace => Step::Create,
        (Remote::Absent, CreateMark::Earlier { age }) => Step::AwaitCreateGrace(grace - age),
    }
}

/// What an existing task needs.
fn task_step(spec: &RedisMigrationSpec, status: &RedisMigrationStatus, state: &State, task: &RemoteTask) -> Step {
    let task_state = task.state();
    let online = spec.migration_type == MigrationType::Online;
    if let Some(step) = failure_step(status, state, task_state) {
        return step;
    }
    if spec.stopped {
        let stoppable = !task_state.is_terminal() && task_state != TaskState::Terminating;
        return if stoppable { Step::Stop } else { Step::Observe };
    }
    if online && task_state == TaskState::Terminated && stopped_by_user(status) {
        return Step::Restart;
    }
    if online && task_state == TaskState::Running {
        return Step::Configure;
    }
    if online
        && matches!(task_state, TaskState::FullMigrating | TaskState::IncrementalMigrating)
        && let Some(step) = resume_mode_step(spec, task)
    {
        return step;
    }
    if online
        && matches!(task_state, TaskState::IncrementalMigrating | TaskState::Success)
        && let Some(wanted) = &spec.switchover
        && let Some(need) =
            switchover::need(wanted, state.switch.as_ref(), state.switch_word.as_deref(), state.switch_recorded_now)
    {
        return match need {
            Need::Look => Step::InspectSwitchover,
            Need::Request(action) => Step::RecordSwitch(action),
            Need::Send(action) => Step::SendSwitch(action),
        };
    }
    Step::Observe
}

/// How often the provisioning job of a task that still provisions is read (as Terraform waits on it: a
/// failed job may be known before the task says so); every tick would be dozens of reads per task.
pub const JOB_POLL: Duration = Duration::from_secs(30);

/// Why a task failed, or may fail: its provisioning job while it provisions (every [`JOB_POLL`], and
/// once when it failed before it got past provisioning), then the newest error line of its log, once per
/// failure.
fn failure_step(status: &RedisMigrationStatus, state: &State, task_state: TaskState) -> Option<Step> {
    let job = state.job_id.as_deref().or(status.job_id.as_deref());
    let failed = matches!(task_state, TaskState::Failed | TaskState::MigrationFailed | TaskState::Error);
    let unexplained = failed && status.last_error.is_none() && state.last_error.is_none();
    let provisioning = matches!(status.phase, None | Some(Phase::Creating | Phase::Provisioning));
    let poll = task_state == TaskState::Creating && !state.job_polled_recently;
    if let Some(job) = job.filter(|_| !state.job_read && (poll || unexplained && provisioning)) {
        return Some(Step::ReadJob(job.to_owned()));
    }
    (unexplained && !state.failure_read).then_some(Step::ReadFailure)
}

/// True when the API refused this very generation of the spec as invalid (a 4xx on create).
fn refused_for_generation(status: &RedisMigrationStatus, generation: Option<i64>) -> bool {
    super::conditions::find_with(&status.conditions, super::conditions::ConditionType::Stalled, true)
        .is_some_and(|c| c.reason == Reason::InvalidSpec.as_str() && c.observed_generation == generation)
}

fn resume_mode_step(spec: &RedisMigrationSpec, task: &RemoteTask) -> Option<Step> {
    let wanted = spec.online.as_ref()?.resume_mode;
    let remote = task.resume_mode.as_deref()?;
    (!remote.eq_ignore_ascii_case(resume_word(wanted))).then_some(Step::UpdateResumeMode(wanted))
}

/// The API's word for a resume mode.
pub fn resume_word(mode: ResumeMode) -> &'static str {
    match mode {
        ResumeMode::Auto => "auto",
        ResumeMode::Manual => "manual",
    }
}

/// True when a configure that failed this way may have gone through (no readable answer, or
/// `DCS.4957`: the task no longer awaits configuration): look again before anything else.
pub fn configure_may_have_applied(e: &DcsError) -> bool {
    e.code() == Some("DCS.4957")
        || (e.is_transient() && !e.certainly_not_applied())
        || matches!(e, DcsError::Decode { .. })
}

/// Moves the pass on by what its last step did.
pub fn advance(mut state: State, result: StepResult, tick: Duration) -> State {
    match result {
        StepResult::Looked(Ok(remote)) => {
            state.look = None;
            state.remote = remote;
        }
        StepResult::Marked => state.mark = CreateMark::JustWritten,
        StepResult::Found(Ok(found)) => state.remote = found.map_or(Remote::Absent, Remote::Present),
        StepResult::Adopting => {
            state.recorded = Some(Recorded::Adopted);
            state.persist = Some("adopt-recorded");
        }
        StepResult::MarkCleared => {
            state.mark = CreateMark::None;
            if state.recorded.take() == Some(Recorded::Created) {
                // The new task's first look, from the account that now watches it.
                state.look = Some(true);
            }
        }
        StepResult::Waiting(wait) => state.requeue = Some(wait),
        StepResult::Created(created) => return created_task(state, created),
        StepResult::Configured(Ok(word)) => state.remote = state.remote.with_status(word),
        StepResult::Configured(Err(attempt)) => return configure_failed(state, attempt, tick),
        StepResult::ResumeModeSet(Ok(mode)) => {
            if let Remote::Present(task) = &mut state.remote {
                task.resume_mode = Some(resume_word(mode).to_owned());
            }
        }
        StepResult::Stopped(Ok(outcome)) => return stopped(state, outcome, "stopping", "TERMINATING"),
        StepResult::Restarted(Ok(outcome)) => return stopped(state, outcome, "restarting", "FULLMIGRATING"),
        StepResult::Inspected(Ok(word)) => return inspected(state, word, tick),
        StepResult::SwitchRequested { action, attempt, at } => {
            let word = state.switch_word.clone().unwrap_or_default();
            state.switch = Some(switchover::request(state.switch.as_ref(), action, attempt, &word, &at));
            state.switch_recorded_now = true;
            state.persist = Some("switchover-recorded");
        }
        StepResult::SwitchSent(result) => {
            let record = state.switch.take().unwrap_or_default();
            let next = switchover::sent(&record, &result);
            if next.state == Some(crate::crd::SwitchState::NotSent) {
                state.problem = result.err().map(|e| Problem::from_dcs(&e));
            }
            state.switch = Some(next);
            state.switch_recorded_now = false;
            state.requeue = Some(tick);
        }
        StepResult::JobRead(job) => return job_read(state, job, tick),
        StepResult::FailureRead(line) => return failure_read(state, line),
        StepResult::Looked(Err(e))
        | StepResult::Found(Err(e))
        | StepResult::ResumeModeSet(Err(e))
        | StepResult::Stopped(Err(e))
        | StepResult::Restarted(Err(e))
        | StepResult::Inspected(Err(e)) => {
            state.look = None;
            state.problem = Some(Problem::from_dcs(&e));
        }
    }
    state
}

fn created_task(mut state: State, created: Result<Created, Attempt>) -> State {
    match created {
        Ok(created) => {
            state.remote = Remote::Present(RemoteTask {
                task_id: created.task_id,
                task_name: Some(created.task_name),
                ..Default::default()
            });
            state.job_id = created.job_id;
            state.recorded = Some(Recorded::Created);
            state.persist = Some("create-recorded");
        }
        Err(Attempt::Refused(problem)) => {
            // Nothing went out: the shell cleared the mark.
            state.mark = CreateMark::None;
            state.problem = Some(problem);
        }
        Err(Attempt::Dcs(e)) => {
            if e.certainly_not_applied() {
                state.mark = CreateMark::None;
            }
            state.problem = Some(Problem::from_dcs(&e));
        }
    }
    state
}

fn configure_failed(mut state: State, attempt: Attempt, tick: Duration) -> State {
    match attempt {
        Attempt::Refused(problem) => state.problem = Some(problem),
        Attempt::Dcs(e) if configure_may_have_applied(&e) => {
            state.problem = (e.code() != Some("DCS.4957")).then(|| Problem::from_dcs(&e));
            state.requeue = Some(tick);
        }
        Attempt::Dcs(e) => state.problem = Some(Problem::from_dcs(&e)),
    }
    state
}

fn stopped(mut state: State, outcome: Outcome, doing: &str, word: &str) -> State {
    let id = state.remote.task_id().unwrap_or_default().to_owned();
    match outcome {
        Outcome::Accepted => state.remote = state.remote.with_status(TaskStatus::new(word)),
        Outcome::Gone => state.remote = Remote::Absent,
        // A stop that finds the task ended meanwhile: the next observation tells how.
        Outcome::WrongState(_) if doing == "stopping" => {}
        Outcome::WrongState(message) | Outcome::Failed(message) => {
            state.problem = Some(Problem::Transient(format!("{doing} task {id}: {message}")));
        }
    }
    state
}

/// A provisioning job read adds detail only: a failed read changes nothing else; a job still
/// running is read again next tick.
fn job_read(mut state: State, job: Result<JobInfo, DcsError>, tick: Duration) -> State {
    state.job_read = true;
    match job.as_ref().map(JobInfo::outcome) {
        Ok(JobOutcome::Failed) => {
            let job = job.unwrap_or_default();
            let reason = job.fail_reason.unwrap_or_else(|| "the provisioning job failed".to_owned());
            state.last_error = Some(LastError {
                code: Some("JOB_FAILED".to_owned()),
                message: bounded(&format!("provisioning failed: {reason}")),
                time: job.end_time,
            });
        }
        Ok(JobOutcome::Pending) => state.requeue = Some(state.requeue.unwrap_or(tick).min(tick)),
        Ok(JobOutcome::Succeeded) | Err(_) => {}
    }
    state
}

/// The failure's reason from the task's log, or from its list row; read once either way.
fn failure_read(mut state: State, line: Result<Option<MigrationLog>, DcsError>) -> State {
    state.failure_read = true;
    let row = match &state.remote {
        Remote::Present(task) => task.error_message.clone().filter(|m| !m.is_empty()),
        _ => None,
    };
    state.last_error = match line {
        Ok(Some(log)) => Some(LastError {
            code: log.log_code.filter(|c| !c.is_empty()).map(|c| bounded(&c)),
            message: bounded(log.message.as_deref().or(row.as_deref()).unwrap_or("the task's log gives no reason")),
            time: log.created_at,
        }),
        _ => Some(LastError {
            code: None,
            message: bounded(row.as_deref().unwrap_or("neither the task nor its log gives a reason")),
            time: None,
        }),
    };
    state
}

/// Remote text as status keeps it: at most 1 KiB, cut on a character boundary.
pub fn bounded(text: &str) -> String {
    const MAX: usize = 1024;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let cut = (0..=MAX - 3).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    format!("{}...", &text[..cut])
}

fn inspected(mut state: State, word: String, tick: Duration) -> State {
    if let Some(record) = state.switch.take() {
        let next = switchover::read(&record, &word);
        if next.state.is_some_and(|s| matches!(s, crate::crd::SwitchState::Sending | crate::crd::SwitchState::Sent)) {
            state.requeue = Some(tick);
        }
        state.switch = Some(next);
    }
    state.switch_word = Some(word);
    state
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crd::{MigrationType, OnlineSpec, Phase, RedisEndpoint};

    pub fn spec(kind: MigrationType) -> RedisMigrationSpec {
        let mut spec: RedisMigrationSpec = serde_json::from_value(serde_json::json!({
            "region": "cn-north-4",
            "type": "BackupImport",
            "backupImport": {"source": "BackupRecord", "backupId": "b1"},
            "target": {"instanceId": "6f3b2a1c-9d8e-4f7a-b6c5-d4e3f2a1b0c9"},
        }))
        .unwrap();
        if kind == MigrationType::Online {
            spec.migration_type = MigrationType::Online;
            spec.backup_import = None;
            spec.online = Some(Box::new(OnlineSpec {
                task_id: None,
                network: None,
                resume_mode: ResumeMode::Auto,
                bandwidth_limit_mb: None,
            }));
            spec.source = Some(Box::new(RedisEndpoint {
                instance_id: None,
                address: Some("10.0.0.1:6379".into()),
                password_secret_ref: None,
            }));
        }
        spec
    }

    pub fn task(word: &str) -> RemoteTask {
        RemoteTask {
            task_id: "t1".into(),
            status: TaskStatus::new(word),
            resume_mode: Some("auto".into()),
            ..Default::default()
        }
    }

    fn with_task_id() -> RedisMigrationStatus {
        RedisMigrationStatus { task_id: Some("t1".into()), ..Default::default() }
    }

    const GRACE: Duration = Duration::from_secs(10);
    const TICK: Duration = Duration::from_secs(2);

    fn run(spec: &RedisMigrationSpec, status: &RedisMigrationStatus, mark: CreateMark, remote: &Remote) -> Step {
        let mut state = State::new(mark, status.switchover.as_deref().cloned(), false, false);
        state.remote = remote.clone();
        decide(&Inputs { spec, status, state: &state, generation: Some(1), create_grace: GRACE })
    }

    #[test]
    fn create_path_marks_then_looks_up_then_creates_or_adopts() {
        let s = spec(MigrationType::BackupImport);
        let none = RedisMigrationStatus::default();
        let earlier = |secs| CreateMark::Earlier { age: Duration::from_secs(secs) };
        let table: Vec<(CreateMark, Remote, Step)> = vec![
            (CreateMark::None, Remote::NotLookedUp, Step::MarkCreatePending),
            (CreateMark::None, Remote::Absent, Step::MarkCreatePending),
            (CreateMark::JustWritten, Remote::NotLookedUp, Step::FindByName),
            (CreateMark::JustWritten, Remote::Absent, Step::Create),
            (earlier(3), Remote::NotLookedUp, Step::FindByName),
            (earlier(3), Remote::Absent, Step::AwaitCreateGrace(Duration::from_secs(7))),
            (earlier(10), Remote::Absent, Step::Create),
            (earlier(3), Remote::Present(task("MIGRATING")), Step::Adopt("t1".into())),
            (CreateMark::None, Remote::Present(task("MIGRATING")), Step::Adopt("t1".into())),
        ];
        for (mark, remote, want) in table {
            assert_eq!(run(&s, &none, mark, &remote), want, "mark {mark:?}, remote {remote:?}");
        }
    }

    #[test]
    fn a_pass_may_give_its_slot_back_before_remote_work_begins_but_not_between_a_mark_or_record_and_its_call() {
        for step in [Step::MarkCreatePending, Step::Configure, Step::InspectSwitchover, Step::ReadFailure] {
            assert!(step.begins_remote_work(), "{step:?}");
        }
        let finishing =
            [Step::FindByName, Step::Create, Step::ClearCreateMark, Step::SendSwitch(SwitchAction::Exchange)];
        for step in finishing.into_iter().chain([Step::Stop, Step::Restart, Step::Look(true), Step::Observe]) {
            assert!(!step.begins_remote_work(), "{step:?}");
        }
    }

    #[test]
    fn a_spec_the_api_refused_is_not_sent_again_until_it_changes() {
        let s = spec(MigrationType::BackupImport);
        let refused = |generation| RedisMigrationStatus {
            conditions: vec![crate::crd::Condition {
                type_: "Stalled".into(),
                status: "True".into(),
                reason: Reason::InvalidSpec.as_str().into(),
                message: "CreateMigrationTask failed: DCS.4062".into(),
                observed_generation: Some(generation),
                last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
            }],
            ..Default::default()
        };
        assert_eq!(run(&s, &refused(1), CreateMark::None, &Remote::NotLookedUp), Step::Observe);
        assert_eq!(
            run(&s, &refused(0), CreateMark::None, &Remote::NotLookedUp),
            Step::MarkCreatePending,
            "a new generation is tried"
        );
    }

    #[test]
    fn a_known_task_is_never_created_again_whatever_the_mark() {
        let s = spec(MigrationType::BackupImport);
        for mark in [CreateMark::None, CreateMark::Earlier { age: Duration::MAX }] {
            for remote in [Remote::NotLookedUp, Remote::Absent, Remote::Present(task("MIGRATING"))] {
                let step = run(&s, &with_task_id(), mark, &remote);
                assert!(!matches!(step, Step::Create | Step::MarkCreatePending | Step::FindByName), "{step:?}");
            }
        }
    }

    #[test]
    fn a_mark_left_behind_a_recorded_task_is_cleared_first() {
        let s = spec(MigrationType::Online);
        let remote = Remote::Present(task("RUNNING"));
        let left = CreateMark::Earlier { age: Duration::from_secs(1) };
        assert_eq!(run(&s, &with_task_id(), left, &remote), Step::ClearCreateMark);
        assert_eq!(run(&s, &with_task_id(), CreateMark::None, &remote), Step::Configure);
    }

    #[test]
    fn adopting_by_spec_task_id_skips_creation() {
        let mut s = spec(MigrationType::Online);
        s.online.as_mut().unwrap().task_id = Some("t1".into());
        let none = RedisMigrationStatus::default();
        assert_eq!(run(&s, &none, CreateMark::None, &Remote::Present(task("RUNNING"))), Step::Configure);
        assert_eq!(run(&s, &none, CreateMark::None, &Remote::NotLookedUp), Step::Observe);
    }

    #[test]
    fn every_remote_status_word_gives_one_step() {
        let online = spec(MigrationType::Online);
        let import = spec(MigrationType::BackupImport);
        let table = [
            ("CREATING", Step::Observe, Step::Observe),
            ("RUNNING", Step::Configure, Step::Observe),
            ("MIGRATING", Step::Observe, Step::Observe),
            ("FULLMIGRATING", Step::Observe, Step::Observe),
            ("INCRMIGEATING", Step::Observe, Step::Observe),
            ("INCRMIGRATING", Step::Observe, Step::Observe),
            ("SUCCESS", Step::Observe, Step::Observe),
            ("MIGRATION_SUCCESS", Step::Observe, Step::Observe),
            ("FAILED", Step::ReadFailure, Step::ReadFailure),
            ("MIGRATION_FAILED", Step::ReadFailure, Step::ReadFailure),
            ("ERROR", Step::ReadFailure, Step::ReadFailure),
            ("TERMINATING", Step::Observe, Step::Observe),
            ("TERMINATED", Step::Observe, Step::Observe),
            ("RELEASED", Step::Observe, Step::Observe),
            ("DELETED", Step::Observe, Step::Observe),
            ("SOMETHING_NEW", Step::Observe, Step::Observe),
            ("", Step::Observe, Step::Observe),
        ];
        for (word, want_online, want_import) in table {
            let remote = Remote::Present(task(word));
            assert_eq!(run(&online, &with_task_id(), CreateMark::None, &remote), want_online, "online, {word}");
            assert_eq!(run(&import, &with_task_id(), CreateMark::None, &remote), want_import, "import, {word}");
        }
    }

    #[test]
    fn stopped_spec_stops_only_tasks_that_can_be_stopped() {
        let mut s = spec(MigrationType::Online);
        s.stopped = true;
        for (word, want) in [
            ("RUNNING", Step::Stop),
            ("FULLMIGRATING", Step::Stop),
            ("INCRMIGEATING", Step::Stop),
            ("SOMETHING_NEW", Step::Stop),
            ("TERMINATING", Step::Observe),
            ("TERMINATED", Step::Observe),
            ("SUCCESS", Step::Observe),
            ("FAILED", Step::ReadFailure),
        ] {
            assert_eq!(run(&s, &with_task_id(), CreateMark::None, &Remote::Present(task(word))), want, "{word}");
        }
    }

    #[test]
    fn unstopping_restarts_only_a_task_the_user_stopped() {
        let s = spec(MigrationType::Online);
        let mut stopped_by_user = with_task_id();
        stopped_by_user.phase = Some(Phase::Terminated);
        stopped_by_user.conditions.push(crate::crd::Condition {
            type_: "Ready".into(),
            status: "False".into(),
            reason: Reason::StoppedByUser.as_str().into(),
            message: Default::default(),
            observed_generation: None,
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        });
        let terminated = Remote::Present(task("TERMINATED"));
        assert_eq!(run(&s, &stopped_by_user, CreateMark::None, &terminated), Step::Restart);
        assert_eq!(
            run(&s, &with_task_id(), CreateMark::None, &terminated),
            Step::Observe,
            "stopped elsewhere: no restart"
        );
        assert_eq!(
            run(&spec(MigrationType::BackupImport), &stopped_by_user, CreateMark::None, &terminated),
            Step::Observe
        );
    }

    #[test]
    fn a_switchover_is_looked_at_recorded_then_sent_once_the_migration_is_ready() {
        let mut s = spec(MigrationType::Online);
        s.switchover = Some(Box::default());
        let mut state = State::new(CreateMark::None, None, false, false);
        state.remote = Remote::Present(task("INCRMIGEATING"));
        let step = |state: &State| {
            decide(&Inputs { spec: &s, status: &with_task_id(), state, generation: Some(1), create_grace: GRACE })
        };
        assert_eq!(step(&state), Step::InspectSwitchover);
        state = advance(state, StepResult::Inspected(Ok(String::new())), TICK);
        assert_eq!(step(&state), Step::RecordSwitch(SwitchAction::Exchange));
        state = advance(
            state,
            StepResult::SwitchRequested { action: SwitchAction::Exchange, attempt: 0, at: "t".into() },
            TICK,
        );
        assert_eq!(state.persist, Some("switchover-recorded"), "the record is written before the call");
        assert_eq!(step(&state), Step::SendSwitch(SwitchAction::Exchange));
        state = advance(state, StepResult::SwitchSent(Ok(())), TICK);
        assert_eq!(state.switch.as_ref().and_then(|r| r.state), Some(crate::crd::SwitchState::Sent));
        state.requeue = None;
        assert_eq!(step(&state), Step::Observe, "sent once; the outcome is read on the next pass");
        state.remote = Remote::Present(task("FULLMIGRATING"));
        state.switch = None;
        state.switch_word = None;
        assert_eq!(step(&state), Step::Observe, "only once Ready");
    }

    #[test]
    fn a_provisioning_job_is_read_while_the_task_provisions_and_a_failure_is_explained_once() {
        let s = spec(MigrationType::Online);
        let with_job = RedisMigrationStatus { job_id: Some("j1".into()), ..with_task_id() };
        let step = |status: &RedisMigrationStatus, word: &str, state: &mut State| {
            state.remote = Remote::Present(task(word));
            decide(&Inputs { spec: &s, status, state, generation: Some(1), create_grace: GRACE })
        };
        let mut state = State::new(CreateMark::None, None, false, false);
        assert_eq!(step(&with_job, "CREATING", &mut state), Step::ReadJob("j1".into()));
        assert_eq!(step(&with_task_id(), "CREATING", &mut state), Step::Observe, "no job known");
        state.job_polled_recently = true;
        assert_eq!(step(&with_job, "CREATING", &mut state), Step::Observe, "read again after JOB_POLL only");
        assert_eq!(step(&with_job, "FAILED", &mut state), Step::ReadJob("j1".into()), "the job first");
        state.job_read = true;
        assert_eq!(step(&with_job, "FAILED", &mut state), Step::ReadFailure, "then the log");
        state.failure_read = true;
        assert_eq!(step(&with_job, "FAILED", &mut state), Step::Observe, "once per pass");
        let streamed = RedisMigrationStatus { phase: Some(Phase::IncrementalMigrating), ..with_job.clone() };
        let mut later = State::new(CreateMark::None, None, false, false);
        assert_eq!(step(&streamed, "FAILED", &mut later), Step::ReadFailure, "past provisioning: the log alone");
        let explained = RedisMigrationStatus {
            last_error: Some(Box::new(LastError { message: "why".into(), ..Default::default() })),
            ..with_task_id()
        };
        let mut fresh = State::new(CreateMark::None, None, false, false);
        assert_eq!(step(&explained, "FAILED", &mut fresh), Step::Observe, "once per failure");
    }

    #[test]
    fn a_changed_resume_mode_is_applied_while_the_task_migrates() {
        let mut s = spec(MigrationType::Online);
        s.online.as_mut().unwrap().resume_mode = ResumeMode::Manual;
        for (word, want) in [
            ("FULLMIGRATING", Step::UpdateResumeMode(ResumeMode::Manual)),
            ("INCRMIGEATING", Step::UpdateResumeMode(ResumeMode::Manual)),
            ("SUCCESS", Step::Observe),
        ] {
            assert_eq!(run(&s, &with_task_id(), CreateMark::None, &Remote::Present(task(word))), want, "{word}");
        }
        let mut unknown_mode = task("INCRMIGEATING");
        unknown_mode.resume_mode = None;
        assert_eq!(run(&s, &with_task_id(), CreateMark::None, &Remote::Present(unknown_mode)), Step::Observe);
    }

    fn api_error(status: u16, code: &str) -> DcsError {
        DcsError::Api {
            operation: crate::dcs::Operation::ShowMigrationTask,
            error: crate::dcs::ApiError { status, code: code.into(), message: "m".into(), request_id: None },
        }
    }

    fn network(sent: bool) -> DcsError {
        DcsError::Network { operation: crate::dcs::Operation::ShowMigrationTask, sent, detail: "reset".into() }
    }

    fn job(status: &str, reason: Option<&str>) -> JobInfo {
        JobInfo { status: Some(status.into()), fail_reason: reason.map(str::to_owned), ..Default::default() }
    }

    fn log(message: &str) -> MigrationLog {
        MigrationLog { message: Some(message.into()), log_level: Some("ERROR".into()), ..Default::default() }
    }

    /// One row: the result, and what the pass's state must say afterwards.
    type Row = (StepResult, fn(&State) -> bool);

    #[test]
    fn advance_turns_every_step_result_into_the_next_state() {
        let missing = Problem::CredentialsMissing("Secret a/b not found".into());
        let created = Created { task_id: "t9".into(), task_name: "n".into(), job_id: Some("j1".into()) };
        let table: Vec<(&str, Row)> = vec![
            ("looked", (StepResult::Looked(Ok(Remote::Absent)), |s| s.look.is_none() && s.remote == Remote::Absent)),
            ("look failed", (StepResult::Looked(Err(network(true))), |s| s.look.is_none() && s.problem.is_some())),
            ("marked", (StepResult::Marked, |s| s.mark == CreateMark::JustWritten)),
            ("found", (StepResult::Found(Ok(Some(task("MIGRATING")))), |s| s.remote.task_id() == Some("t1"))),
            ("not found", (StepResult::Found(Ok(None)), |s| s.remote == Remote::Absent)),
            ("find failed", (StepResult::Found(Err(api_error(500, "DCS.5000"))), |s| s.finished())),
            ("adopting", (StepResult::Adopting, |s| s.persist == Some("adopt-recorded"))),
            ("mark cleared", (StepResult::MarkCleared, |s| s.mark == CreateMark::None && s.look.is_none())),
            ("waiting", (StepResult::Waiting(Duration::from_secs(3)), |s| s.requeue == Some(Duration::from_secs(3)))),
            (
                "created",
                (StepResult::Created(Ok(created)), |s| {
                    s.remote.task_id() == Some("t9")
                        && s.job_id.as_deref() == Some("j1")
                        && s.persist == Some("create-recorded")
                }),
            ),
            (
                "create refused",
                (StepResult::Created(Err(Attempt::Refused(missing.clone()))), |s| {
                    s.mark == CreateMark::None
                        && s.problem.as_ref().is_some_and(|p| p.reason() == Reason::CredentialsMissing)
                }),
            ),
            (
                "create throttled",
                (StepResult::Created(Err(Attempt::Dcs(api_error(429, "APIGW.0308")))), |s| {
                    s.mark == CreateMark::None && s.problem.is_some()
                }),
            ),
            (
                "create lost",
                (StepResult::Created(Err(Attempt::Dcs(network(true)))), |s| {
                    s.mark != CreateMark::None && s.problem.is_some()
                }),
            ),
            (
                "configured",
                (StepResult::Configured(Ok(TaskStatus::new("FULLMIGRATING"))), |s| {
                    s.remote.state() == Some(TaskState::FullMigrating)
                }),
            ),
            (
                "configure refused",
                (StepResult::Configured(Err(Attempt::Refused(missing.clone()))), |s| {
                    s.problem.as_ref().is_some_and(|p| p.reason() == Reason::CredentialsMissing)
                }),
            ),
            (
                "configure in wrong state",
                (StepResult::Configured(Err(Attempt::Dcs(api_error(400, "DCS.4957")))), |s| {
                    s.problem.is_none() && s.requeue == Some(TICK)
                }),
            ),
            (
                "configure lost",
                (StepResult::Configured(Err(Attempt::Dcs(network(true)))), |s| {
                    s.problem.is_some() && s.requeue == Some(TICK)
                }),
            ),
            (
                "configure invalid",
                (StepResult::Configured(Err(Attempt::Dcs(api_error(400, "DCS.4062")))), |s| {
                    s.problem.as_ref().is_some_and(|p| p.reason() == Reason::InvalidSpec) && s.requeue.is_none()
                }),
            ),
            (
                "resume mode",
                (
                    StepResult::ResumeModeSet(Ok(ResumeMode::Manual)),
                    |s| matches!(&s.remote, Remote::Present(t) if t.resume_mode.as_deref() == Some("manual")),
                ),
            ),
            (
                "resume mode failed",
                (StepResult::ResumeModeSet(Err(api_error(403, "DCS.4003"))), |s| {
                    s.problem.as_ref().is_some_and(|p| p.reason() == Reason::PermissionDenied)
                }),
            ),
            (
                "stopped",
                (StepResult::Stopped(Ok(Outcome::Accepted)), |s| s.remote.state() == Some(TaskState::Terminating)),
            ),
            (
                "stop found it ended",
                (StepResult::Stopped(Ok(Outcome::WrongState("x".into()))), |s| s.problem.is_none()),
            ),
            ("stop found it gone", (StepResult::Stopped(Ok(Outcome::Gone)), |s| s.remote == Remote::Absent)),
            ("stop item failed", (StepResult::Stopped(Ok(Outcome::Failed("x".into()))), |s| s.problem.is_some())),
            ("stop failed", (StepResult::Stopped(Err(network(false))), |s| s.problem.is_some())),
            (
                "restarted",
                (StepResult::Restarted(Ok(Outcome::Accepted)), |s| s.remote.state() == Some(TaskState::FullMigrating)),
            ),
            ("restart refused", (StepResult::Restarted(Ok(Outcome::WrongState("x".into()))), |s| s.problem.is_some())),
            ("restart failed", (StepResult::Restarted(Err(network(false))), |s| s.problem.is_some())),
            (
                "inspected",
                (StepResult::Inspected(Ok("EXCHANGING".into())), |s| s.switch_word.as_deref() == Some("EXCHANGING")),
            ),
            ("inspect failed", (StepResult::Inspected(Err(network(true))), |s| s.problem.is_some())),
            (
                "switch requested",
                (StepResult::SwitchRequested { action: SwitchAction::Rollback, attempt: 2, at: "t".into() }, |s| {
                    s.switch_recorded_now
                        && s.persist == Some("switchover-recorded")
                        && s.switch
                            .as_ref()
                            .is_some_and(|r| r.attempt == 2 && r.last_action == Some(SwitchAction::Rollback))
                }),
            ),
            ("switch sent", (StepResult::SwitchSent(Ok(())), |s| !s.switch_recorded_now && s.requeue == Some(TICK))),
            ("switch not sent", (StepResult::SwitchSent(Err(network(false))), |s| s.problem.is_some())),
            ("job pending", (StepResult::JobRead(Ok(job("RUNNING", None))), |s| s.job_read && s.requeue == Some(TICK))),
            (
                "job failed",
                (StepResult::JobRead(Ok(job("FAIL", Some("no ip")))), |s| {
                    s.last_error
                        .as_ref()
                        .is_some_and(|e| e.code.as_deref() == Some("JOB_FAILED") && e.message.contains("no ip"))
                }),
            ),
            (
                "job unreadable",
                (StepResult::JobRead(Err(api_error(404, "DCS.4404"))), |s| {
                    s.job_read && s.problem.is_none() && s.requeue.is_none() && s.last_error.is_none()
                }),
            ),
            (
                "failure logged",
                (StepResult::FailureRead(Ok(Some(log("NOAUTH")))), |s| {
                    s.failure_read && s.last_error.as_ref().is_some_and(|e| e.message == "NOAUTH")
                }),
            ),
            ("failure not logged", (StepResult::FailureRead(Ok(None)), |s| s.failure_read && s.last_error.is_some())),
            (
                "log unreadable",
                (StepResult::FailureRead(Err(network(true))), |s| {
                    s.failure_read && s.problem.is_none() && s.last_error.is_some()
                }),
            ),
            (
                "switch unconfirmed",
                (StepResult::SwitchSent(Err(network(true))), |s| {
                    s.problem.is_none()
                        && s.switch.as_ref().and_then(|r| r.state) == Some(crate::crd::SwitchState::Unconfirmed)
                }),
            ),
        ];
        for (name, (result, holds)) in table {
            let mut state = State::new(CreateMark::Earlier { age: Duration::ZERO }, None, false, false);
            state.remote = Remote::Present(task("RUNNING"));
            if matches!(result, StepResult::SwitchSent(_)) {
                state.switch = Some(switchover::request(None, SwitchAction::Exchange, 0, "", "t"));
                state.switch_recorded_now = true;
            }
            let next = advance(state, result, TICK);
            assert!(holds(&next), "{name}: {next:?}");
        }
    }
}
