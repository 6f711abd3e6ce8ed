//! Status mapping (design.md §3): from the remote task and this pass's outcome to `phase`,
//! `message` and the `Ready` / `Synced` / `Reconciling` / `Stalled` conditions that `kubectl wait`,
//! kstatus (Flux) and the Argo CD health check read. Pure; tested as a table.

use super::decision::{Remote, RemoteTask, SwitchView, stopped_by_user};
use crate::crd::{Phase, Progress, RedisMigrationSpec, RedisMigrationStatus, ServingSide};
use crate::dcs::model::TaskState;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Condition types.
pub mod condition {
    pub const READY: &str = "Ready";
    pub const SYNCED: &str = "Synced";
    pub const RECONCILING: &str = "Reconciling";
    pub const STALLED: &str = "Stalled";
    pub const SWITCHED_OVER: &str = "SwitchedOver";
}

/// Condition reasons (CamelCase, as Kubernetes conventions want).
pub mod reason {
    pub const CREATING: &str = "Creating";
    pub const CONFIGURING: &str = "Configuring";
    pub const MIGRATING: &str = "Migrating";
    pub const INCREMENTAL_SYNCING: &str = "IncrementalSyncing";
    pub const SUCCEEDED: &str = "Succeeded";
    pub const STOPPING: &str = "Stopping";
    pub const STOPPED_BY_USER: &str = "StoppedByUser";
    pub const FAILED: &str = "Failed";
    pub const STOPPED_REMOTELY: &str = "StoppedRemotely";
    pub const REMOTE_TASK_GONE: &str = "RemoteTaskGone";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const CREDENTIALS_MISSING: &str = "CredentialsMissing";
    pub const CREDENTIALS_REJECTED: &str = "CredentialsRejected";
    pub const PERMISSION_DENIED: &str = "PermissionDenied";
    pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
    pub const DELETING: &str = "Deleting";
    pub const UNKNOWN_REMOTE_STATUS: &str = "UnknownRemoteStatus";
    pub const SYNCED: &str = "Synced";
    pub const API_ERROR: &str = "ApiError";
    pub const IN_PROGRESS: &str = "InProgress";
    pub const STABLE: &str = "Stable";
    pub const SWITCHED_OVER: &str = "SwitchedOver";
    pub const SWITCHING: &str = "Switching";
    pub const ROLLED_BACK: &str = "RolledBack";
    pub const SWITCH_PENDING: &str = "Pending";
}

/// What went wrong in this pass, as the status reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Throttling, 5xx or network: retried with backoff; phase unchanged, `Synced=False`.
    Transient(String),
    /// 401: the credentials were refused. Stalled until they change.
    CredentialsRejected(String),
    /// 403: the credentials lack a permission. Stalled until something changes.
    PermissionDenied(String),
    /// A Secret or key is missing, or no credentials are configured. Stalled.
    CredentialsMissing(String),
    /// The request was refused as invalid (4xx), or the spec cannot be acted on. Stalled.
    InvalidSpec(String),
}

impl Problem {
    fn synced_reason(&self) -> &'static str {
        match self {
            Self::CredentialsRejected(_) => reason::CREDENTIALS_REJECTED,
            Self::PermissionDenied(_) => reason::PERMISSION_DENIED,
            _ => reason::API_ERROR,
        }
    }

    /// The message, with the DCS code where there is one.
    pub fn message(&self) -> &str {
        match self {
            Self::Transient(m)
            | Self::CredentialsRejected(m)
            | Self::PermissionDenied(m)
            | Self::CredentialsMissing(m)
            | Self::InvalidSpec(m) => m,
        }
    }

    /// The same problem with its message rewritten.
    pub fn map_message(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            Self::Transient(m) => Self::Transient(f(m)),
            Self::CredentialsRejected(m) => Self::CredentialsRejected(f(m)),
            Self::PermissionDenied(m) => Self::PermissionDenied(f(m)),
            Self::CredentialsMissing(m) => Self::CredentialsMissing(f(m)),
            Self::InvalidSpec(m) => Self::InvalidSpec(f(m)),
        }
    }

    /// The Ready/Stalled reason of a problem that stalls the resource; `None` for transient ones.
    fn stall_reason(&self) -> Option<&'static str> {
        match self {
            Self::Transient(_) => None,
            Self::CredentialsRejected(_) => Some(reason::CREDENTIALS_REJECTED),
            Self::PermissionDenied(_) => Some(reason::PERMISSION_DENIED),
            Self::CredentialsMissing(_) => Some(reason::CREDENTIALS_MISSING),
            Self::InvalidSpec(_) => Some(reason::INVALID_SPEC),
        }
    }
}

/// Everything the status is computed from.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub spec: &'a RedisMigrationSpec,
    pub generation: Option<i64>,
    pub prior: &'a RedisMigrationStatus,
    pub remote: &'a Remote,
    /// The deterministic task name, before the task exists.
    pub task_name: &'a str,
    /// True while a create is (or may be) under way: the `create-pending` mark is set.
    pub creating: bool,
    pub paused: bool,
    pub deleting: bool,
    /// The switch-over view, when the task's detail was read in this pass.
    pub switch: Option<&'a SwitchView>,
    /// Progress counters fetched in this pass (`None`: keep the previous ones).
    pub progress: Option<Progress>,
    pub problem: Option<&'a Problem>,
    /// The `reconcile-requested-at` value this pass acted on.
    pub handled_request: Option<&'a str>,
    pub now: Timestamp,
}

/// The Ready condition and the kstatus pair, as one row of the design's table.
struct Verdict {
    phase: Phase,
    ready: bool,
    reason: &'static str,
    message: String,
    reconciling: bool,
    stalled: bool,
}

impl Verdict {
    fn progressing(phase: Phase, reason: &'static str, message: impl Into<String>) -> Self {
        Self { phase, ready: false, reason, message: message.into(), reconciling: true, stalled: false }
    }
    fn ready(phase: Phase, reason: &'static str, message: impl Into<String>) -> Self {
        Self { phase, ready: true, reason, message: message.into(), reconciling: false, stalled: false }
    }
    fn stalled(phase: Phase, reason: &'static str, message: impl Into<String>) -> Self {
        Self { phase, ready: false, reason, message: message.into(), reconciling: false, stalled: true }
    }
}

/// Computes the new status. Unchanged facts give an identical status, so the shell patches only
/// on change.
pub fn compute(facts: &Facts<'_>) -> RedisMigrationStatus {
    let mut status = facts.prior.clone();
    let task_known = status.task_id.is_some() || facts.spec.online.as_ref().is_some_and(|o| o.task_id.is_some());
    let learnt_nothing = task_known && matches!(facts.remote, Remote::NotLookedUp) && !facts.paused && !facts.deleting;
    if learnt_nothing && facts.problem.is_none_or(|p| p.stall_reason().is_none()) {
        // Nothing was learnt about the task in this pass: what status says still stands, but for
        // a failed exchange with the API (throttling, 5xx, network, an unreadable answer).
        if let Some(problem) = facts.problem {
            let time = Time(facts.now);
            set_condition(
                &mut status.conditions,
                condition::SYNCED,
                false,
                problem.synced_reason(),
                problem.message(),
                facts.generation,
                &time,
            );
        }
        return status;
    }
    if let Remote::Present(task) = facts.remote {
        mirror_remote(&mut status, task);
    } else if status.task_name.is_none() {
        status.task_name = Some(facts.task_name.to_owned());
    }
    if let Some(progress) = &facts.progress {
        status.progress = Some(progress.clone());
    }
    if let Remote::Present(task) = facts.remote {
        // The full copy is complete in these states, whatever the last sampled counters said.
        if matches!(task.state(), TaskState::Success | TaskState::MigrationSuccess | TaskState::IncrementalMigrating) {
            status.progress.get_or_insert_with(Progress::default).percent = Some(100);
        }
    }
    let verdict = verdict(facts);
    if status.phase != Some(verdict.phase) {
        status.last_phase_transition_time = Some(facts.now.to_string());
    }
    status.phase = Some(verdict.phase);
    status.message = Some(verdict.message.clone()).filter(|m| !m.is_empty());
    status.observed_generation = facts.generation;
    if let Some(request) = facts.handled_request {
        status.last_handled_reconcile_at = Some(request.to_owned());
    }

    let time = Time(facts.now);
    let generation = facts.generation;
    let mut set = |type_: &str, value: bool, reason: &str, message: &str| {
        set_condition(&mut status.conditions, type_, value, reason, message, generation, &time);
    };
    if !facts.paused || facts.deleting {
        set(condition::READY, verdict.ready, verdict.reason, &verdict.message);
        let (reconciling_reason, stalled_reason) = if verdict.reconciling {
            (verdict.reason, reason::IN_PROGRESS)
        } else if verdict.stalled {
            (reason::STABLE, verdict.reason)
        } else {
            (reason::STABLE, reason::STABLE)
        };
        let reconciling_message = if verdict.reconciling { verdict.message.as_str() } else { "" };
        let stalled_message = if verdict.stalled { verdict.message.as_str() } else { "" };
        set(condition::RECONCILING, verdict.reconciling, reconciling_reason, reconciling_message);
        set(condition::STALLED, verdict.stalled, stalled_reason, stalled_message);
    }
    if facts.spec.switchover.is_some() {
        let (value, reason, message) = switchover(&mut status, facts.switch);
        set_condition(&mut status.conditions, condition::SWITCHED_OVER, value, reason, message, generation, &time);
    }
    let mut set = |type_: &str, value: bool, reason: &str, message: &str| {
        set_condition(&mut status.conditions, type_, value, reason, message, generation, &time);
    };
    match facts.problem {
        Some(problem) => set(condition::SYNCED, false, problem.synced_reason(), problem.message()),
        None if matches!(facts.remote, Remote::NotLookedUp) && !facts.paused => {}
        None if facts.paused => {}
        None => set(condition::SYNCED, true, reason::SYNCED, ""),
    }
    status
}

/// Records what the task's detail says about the switch-over; answers the `SwitchedOver`
/// condition.
fn switchover(status: &mut RedisMigrationStatus, view: Option<&SwitchView>) -> (bool, &'static str, &'static str) {
    let recorded = status.switchover.get_or_insert_with(Default::default);
    if let Some(view) = view {
        if view.exchanging {
            return (false, reason::SWITCHING, "the IP exchange is under way");
        }
        if recorded.source_ip.is_none() && recorded.actions == 0 {
            recorded.source_ip.clone_from(&view.source_ip);
        }
        recorded.serving = Some(view.serving(recorded.source_ip.as_deref()));
    }
    match (recorded.serving, recorded.actions) {
        (Some(ServingSide::Target), _) => (true, reason::SWITCHED_OVER, "the target serves the source's addresses"),
        (Some(ServingSide::Source), n) if n > 0 => {
            (false, reason::ROLLED_BACK, "the source serves its addresses again")
        }
        (None, n) if n > 0 => (false, reason::SWITCHING, "the IP exchange was sent; confirming it"),
        _ => (false, reason::SWITCH_PENDING, "the switch-over waits for the migration to be Ready"),
    }
}

fn mirror_remote(status: &mut RedisMigrationStatus, task: &RemoteTask) {
    status.task_id = Some(task.task_id.clone());
    if task.task_name.is_some() {
        status.task_name = task.task_name.clone();
    }
    status.remote_status = Some(task.status.word().to_owned()).filter(|w| !w.is_empty());
    let keep = |old: &mut Option<String>, new: &Option<String>| {
        if new.is_some() {
            old.clone_from(new);
        }
    };
    keep(&mut status.ecs_private_ip, &task.ecs_private_ip);
    keep(&mut status.created_at, &task.created_at);
    keep(&mut status.updated_at, &task.updated_at);
    keep(&mut status.released_at, &task.released_at);
}

fn remote_error(task: &RemoteTask) -> String {
    task.error_message.clone().filter(|m| !m.is_empty()).unwrap_or_default()
}

fn verdict(facts: &Facts<'_>) -> Verdict {
    let prior_phase = facts.prior.phase;
    if facts.deleting {
        return Verdict::progressing(Phase::Terminating, reason::DELETING, "the resource is being deleted");
    }
    if facts.paused {
        // Conditions stay as they were; only phase and message say so.
        return Verdict::ready(
            Phase::Paused,
            reason::STABLE,
            "reconciliation is paused by the dcs.migration.io/paused annotation",
        );
    }
    if let Some(stall) = facts.problem.and_then(|p| p.stall_reason().map(|r| (r, p.message()))) {
        let phase = prior_phase.filter(|p| *p != Phase::Paused).unwrap_or(Phase::Pending);
        return Verdict::stalled(phase, stall.0, stall.1);
    }
    let mut v = verdict_unpaused(facts);
    if v.reconciling && deadline_exceeded(facts, v.phase) {
        let message = format!(
            "the task has been {:?} for more than spec.progressDeadlineSeconds ({} s)",
            v.phase, facts.spec.progress_deadline_seconds
        );
        v = Verdict::stalled(v.phase, reason::PROGRESS_DEADLINE_EXCEEDED, message);
    }
    v
}

fn verdict_unpaused(facts: &Facts<'_>) -> Verdict {
    let prior_phase = facts.prior.phase.filter(|p| *p != Phase::Paused);
    let task = match facts.remote {
        Remote::Present(task) => task,
        Remote::Absent
            if facts.prior.task_id.is_some() || facts.spec.online.as_ref().is_some_and(|o| o.task_id.is_some()) =>
        {
            let id = facts.prior.task_id.as_deref().or(facts.spec.online.as_ref().and_then(|o| o.task_id.as_deref()));
            return Verdict::stalled(
                Phase::Terminated,
                reason::REMOTE_TASK_GONE,
                format!("the remote task {} no longer exists", id.unwrap_or_default()),
            );
        }
        _ => {
            let (phase, message) = if facts.creating {
                (Phase::Creating, format!("creating the remote task {}", facts.task_name))
            } else {
                (Phase::Pending, "the remote task has not been created yet".to_owned())
            };
            return Verdict::progressing(phase, reason::CREATING, message);
        }
    };
    let word = task.status.word();
    match task.state() {
        TaskState::Creating => {
            Verdict::progressing(Phase::Provisioning, reason::CONFIGURING, "the migration ECS is being provisioned")
        }
        TaskState::Running => {
            Verdict::progressing(Phase::AwaitingConfiguration, reason::CONFIGURING, "the task awaits configuration")
        }
        TaskState::Migrating | TaskState::FullMigrating => {
            Verdict::progressing(Phase::FullMigrating, reason::MIGRATING, "full migration in progress")
        }
        TaskState::IncrementalMigrating => Verdict::ready(
            Phase::IncrementalMigrating,
            reason::INCREMENTAL_SYNCING,
            "full migration done; streaming changes until stopped",
        ),
        TaskState::Success | TaskState::MigrationSuccess => {
            Verdict::ready(Phase::Succeeded, reason::SUCCEEDED, "the migration succeeded")
        }
        TaskState::Terminating => {
            Verdict::progressing(Phase::Terminating, reason::STOPPING, "the task is being stopped")
        }
        // Stopped as asked: the desired state is reached. Ready is True (reason StoppedByUser) so
        // that kstatus, which falls back to Ready, reports Current as design.md §3 wants; Argo CD's
        // check maps the reason to Suspended.
        TaskState::Terminated if facts.spec.stopped => {
            Verdict::ready(Phase::Terminated, reason::STOPPED_BY_USER, "the task was stopped as spec.stopped asks")
        }
        TaskState::Terminated if stopped_by_user(facts.prior) => {
            Verdict::progressing(Phase::Terminated, reason::CREATING, "restarting the stopped task")
        }
        TaskState::Terminated => {
            Verdict::stalled(Phase::Terminated, reason::STOPPED_REMOTELY, "the task was stopped outside this resource")
        }
        TaskState::Deleted => {
            Verdict::stalled(Phase::Terminated, reason::REMOTE_TASK_GONE, "the remote task was deleted")
        }
        TaskState::Failed | TaskState::MigrationFailed | TaskState::Error => {
            let detail = remote_error(task);
            let message = if detail.is_empty() {
                format!("the task ended with {word}")
            } else {
                format!("the task ended with {word}: {detail}")
            };
            Verdict::stalled(Phase::Failed, reason::FAILED, message)
        }
        TaskState::Released => released(prior_phase, task),
        TaskState::Unknown => Verdict::progressing(
            prior_phase.unwrap_or(Phase::Creating),
            reason::UNKNOWN_REMOTE_STATUS,
            format!("the remote status {word:?} is not known to this operator; treating it as in progress"),
        ),
    }
}

/// `RELEASED` (the migration ECS was released) keeps the outcome reached before it.
fn released(prior: Option<Phase>, task: &RemoteTask) -> Verdict {
    let detail = remote_error(task);
    match prior {
        Some(Phase::Failed) => Verdict::stalled(
            Phase::Failed,
            reason::FAILED,
            format!("the task failed; its migration ECS was released{}", suffix(&detail)),
        ),
        Some(Phase::Terminated) => Verdict::stalled(
            Phase::Terminated,
            reason::STOPPED_REMOTELY,
            "the task was stopped; its migration ECS was released",
        ),
        _ if !detail.is_empty() => Verdict::stalled(
            Phase::Failed,
            reason::FAILED,
            format!("the task failed; its migration ECS was released: {detail}"),
        ),
        _ => Verdict::ready(
            Phase::Succeeded,
            reason::SUCCEEDED,
            "the migration succeeded; its migration ECS was released",
        ),
    }
}

fn suffix(detail: &str) -> String {
    if detail.is_empty() { String::new() } else { format!(": {detail}") }
}

fn deadline_exceeded(facts: &Facts<'_>, phase: Phase) -> bool {
    if facts.prior.phase != Some(phase) {
        return false;
    }
    let Some(since) = facts.prior.last_phase_transition_time.as_deref().and_then(|t| t.parse::<Timestamp>().ok())
    else {
        return false;
    };
    let limit = jiff::SignedDuration::from_secs(i64::from(facts.spec.progress_deadline_seconds));
    facts.now.duration_since(since) > limit
}

/// Sets a condition, keeping `lastTransitionTime` unless the status flips.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    value: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    let status = if value { "True" } else { "False" }.to_owned();
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => {
            if existing.status != status {
                existing.last_transition_time = now.clone();
            }
            existing.status = status;
            existing.reason = reason.to_owned();
            existing.message = message.to_owned();
            existing.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.to_owned(),
            status,
            reason: reason.to_owned(),
            message: message.to_owned(),
            observed_generation: generation,
            last_transition_time: now.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::decision::tests::{spec, task};
    use crate::crd::MigrationType;

    struct Row {
        phase: Phase,
        ready: &'static str,
        reason: &'static str,
        reconciling: &'static str,
        stalled: &'static str,
    }

    fn facts<'a>(spec: &'a RedisMigrationSpec, prior: &'a RedisMigrationStatus, remote: &'a Remote) -> Facts<'a> {
        Facts {
            spec,
            generation: Some(3),
            prior,
            remote,
            task_name: "rmig-ns-name-12345678",
            creating: false,
            paused: false,
            deleting: false,
            switch: None,
            progress: None,
            problem: None,
            handled_request: None,
            now: "2026-11-23T12:00:00Z".parse().unwrap(),
        }
    }

    fn condition<'a>(s: &'a RedisMigrationStatus, type_: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == type_).unwrap_or_else(|| panic!("no {type_} condition"))
    }

    fn check(status: &RedisMigrationStatus, want: &Row, case: &str) {
        assert_eq!(status.phase, Some(want.phase), "{case}: phase");
        let ready = condition(status, condition::READY);
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), (want.ready, want.reason), "{case}: Ready");
        assert_eq!(condition(status, condition::RECONCILING).status, want.reconciling, "{case}: Reconciling");
        assert_eq!(condition(status, condition::STALLED).status, want.stalled, "{case}: Stalled");
        assert!(status.conditions.iter().all(|c| c.observed_generation == Some(3)), "{case}: observedGeneration");
        assert_eq!(status.observed_generation, Some(3));
    }

    fn row(
        phase: Phase,
        ready: &'static str,
        reason: &'static str,
        reconciling: &'static str,
        stalled: &'static str,
    ) -> Row {
        Row { phase, ready, reason, reconciling, stalled }
    }

    #[test]
    fn every_remote_status_word_maps_to_the_design_table() {
        let online = spec(MigrationType::Online);
        let prior = RedisMigrationStatus { task_id: Some("t1".into()), ..Default::default() };
        let table = [
            ("CREATING", row(Phase::Provisioning, "False", reason::CONFIGURING, "True", "False")),
            ("RUNNING", row(Phase::AwaitingConfiguration, "False", reason::CONFIGURING, "True", "False")),
            ("MIGRATING", row(Phase::FullMigrating, "False", reason::MIGRATING, "True", "False")),
            ("FULLMIGRATING", row(Phase::FullMigrating, "False", reason::MIGRATING, "True", "False")),
            ("INCRMIGEATING", row(Phase::IncrementalMigrating, "True", reason::INCREMENTAL_SYNCING, "False", "False")),
            ("INCRMIGRATING", row(Phase::IncrementalMigrating, "True", reason::INCREMENTAL_SYNCING, "False", "False")),
            ("SUCCESS", row(Phase::Succeeded, "True", reason::SUCCEEDED, "False", "False")),
            ("MIGRATION_SUCCESS", row(Phase::Succeeded, "True", reason::SUCCEEDED, "False", "False")),
            ("RELEASED", row(Phase::Succeeded, "True", reason::SUCCEEDED, "False", "False")),
            ("TERMINATING", row(Phase::Terminating, "False", reason::STOPPING, "True", "False")),
            ("FAILED", row(Phase::Failed, "False", reason::FAILED, "False", "True")),
            ("MIGRATION_FAILED", row(Phase::Failed, "False", reason::FAILED, "False", "True")),
            ("ERROR", row(Phase::Failed, "False", reason::FAILED, "False", "True")),
            ("TERMINATED", row(Phase::Terminated, "False", reason::STOPPED_REMOTELY, "False", "True")),
            ("DELETED", row(Phase::Terminated, "False", reason::REMOTE_TASK_GONE, "False", "True")),
            ("WARPING", row(Phase::Creating, "False", reason::UNKNOWN_REMOTE_STATUS, "True", "False")),
        ];
        for (word, want) in table {
            let remote = Remote::Present(task(word));
            let status = compute(&facts(&online, &prior, &remote));
            check(&status, &want, word);
            assert_eq!(status.remote_status.as_deref(), Some(word), "remoteStatus is verbatim");
        }
    }

    #[test]
    fn design_table_rows_without_a_remote_word() {
        let online = spec(MigrationType::Online);
        let none = RedisMigrationStatus::default();
        let recorded = RedisMigrationStatus {
            task_id: Some("t1".into()),
            phase: Some(Phase::FullMigrating),
            ..Default::default()
        };
        let mut stopped = online.clone();
        stopped.stopped = true;

        let nothing = Remote::NotLookedUp;
        check(
            &compute(&facts(&online, &none, &nothing)),
            &row(Phase::Pending, "False", reason::CREATING, "True", "False"),
            "none yet",
        );
        let creating = Facts { creating: true, ..facts(&online, &none, &nothing) };
        check(&compute(&creating), &row(Phase::Creating, "False", reason::CREATING, "True", "False"), "creating");

        let terminated = Remote::Present(task("TERMINATED"));
        check(
            &compute(&facts(&stopped, &recorded, &terminated)),
            &row(Phase::Terminated, "True", reason::STOPPED_BY_USER, "False", "False"),
            "stopped by user",
        );

        let gone = Remote::Absent;
        check(
            &compute(&facts(&online, &recorded, &gone)),
            &row(Phase::Terminated, "False", reason::REMOTE_TASK_GONE, "False", "True"),
            "task gone",
        );

        let deleting = Facts { deleting: true, ..facts(&online, &recorded, &nothing) };
        check(&compute(&deleting), &row(Phase::Terminating, "False", reason::DELETING, "True", "False"), "deleting");

        for (problem, reason) in [
            (Problem::InvalidSpec("DCS.4062".into()), reason::INVALID_SPEC),
            (Problem::CredentialsMissing("Secret ns/x not found".into()), reason::CREDENTIALS_MISSING),
            (Problem::CredentialsRejected("APIGW.0301".into()), reason::CREDENTIALS_REJECTED),
            (Problem::PermissionDenied("DCS.2003".into()), reason::PERMISSION_DENIED),
        ] {
            let f = Facts { problem: Some(&problem), ..facts(&online, &none, &nothing) };
            let status = compute(&f);
            check(&status, &row(Phase::Pending, "False", reason, "False", "True"), reason);
            assert_eq!(condition(&status, condition::SYNCED).status, "False");
        }
    }

    #[test]
    fn a_transient_error_keeps_phase_and_ready_and_only_unsyncs() {
        let online = spec(MigrationType::Online);
        let remote = Remote::Present(task("INCRMIGEATING"));
        let before = compute(&facts(&online, &RedisMigrationStatus::default(), &remote));
        let problem = Problem::Transient("ShowMigrationTask failed: APIGW.0308 throttled (HTTP 429)".into());
        let f = Facts { problem: Some(&problem), ..facts(&online, &before, &remote) };
        let after = compute(&f);
        assert_eq!(after.phase, before.phase);
        assert_eq!(condition(&after, condition::READY), condition(&before, condition::READY));
        let synced = condition(&after, condition::SYNCED);
        assert_eq!((synced.status.as_str(), synced.reason.as_str()), ("False", reason::API_ERROR));
        assert!(synced.message.contains("APIGW.0308"));
    }

    #[test]
    fn paused_keeps_conditions_and_says_paused() {
        let online = spec(MigrationType::Online);
        let remote = Remote::Present(task("FULLMIGRATING"));
        let before = compute(&facts(&online, &RedisMigrationStatus::default(), &remote));
        let nothing = Remote::NotLookedUp;
        let f = Facts { paused: true, ..facts(&online, &before, &nothing) };
        let paused = compute(&f);
        assert_eq!(paused.phase, Some(Phase::Paused));
        assert_eq!(paused.conditions, before.conditions);
    }

    #[test]
    fn a_transitional_task_past_its_progress_deadline_stalls() {
        let online = spec(MigrationType::Online);
        let remote = Remote::Present(task("FULLMIGRATING"));
        let prior = RedisMigrationStatus {
            task_id: Some("t1".into()),
            phase: Some(Phase::FullMigrating),
            last_phase_transition_time: Some("2026-11-23T11:00:00Z".into()),
            ..Default::default()
        };
        check(
            &compute(&facts(&online, &prior, &remote)),
            &row(Phase::FullMigrating, "False", reason::PROGRESS_DEADLINE_EXCEEDED, "False", "True"),
            "deadline",
        );
        let recent = RedisMigrationStatus { last_phase_transition_time: Some("2026-11-23T11:50:00Z".into()), ..prior };
        check(
            &compute(&facts(&online, &recent, &remote)),
            &row(Phase::FullMigrating, "False", reason::MIGRATING, "True", "False"),
            "within deadline",
        );
    }

    #[test]
    fn released_keeps_the_outcome_reached_before_it() {
        let online = spec(MigrationType::Online);
        let remote = Remote::Present(task("RELEASED"));
        let failed =
            RedisMigrationStatus { task_id: Some("t1".into()), phase: Some(Phase::Failed), ..Default::default() };
        check(
            &compute(&facts(&online, &failed, &remote)),
            &row(Phase::Failed, "False", reason::FAILED, "False", "True"),
            "failed then released",
        );
        let succeeded = RedisMigrationStatus { phase: Some(Phase::Succeeded), ..failed };
        check(
            &compute(&facts(&online, &succeeded, &remote)),
            &row(Phase::Succeeded, "True", reason::SUCCEEDED, "False", "False"),
            "succeeded then released",
        );
    }

    #[test]
    fn a_pass_that_learnt_nothing_about_a_known_task_changes_nothing() {
        let online = spec(MigrationType::Online);
        let gone = Remote::Absent;
        let prior = RedisMigrationStatus { task_id: Some("t1".into()), ..Default::default() };
        let reported = compute(&facts(&online, &prior, &gone));
        let nothing = Remote::NotLookedUp;
        assert_eq!(compute(&facts(&online, &reported, &nothing)), reported);
    }

    #[test]
    fn unchanged_facts_give_an_identical_status() {
        let online = spec(MigrationType::Online);
        let remote = Remote::Present(task("FULLMIGRATING"));
        let first = compute(&facts(&online, &RedisMigrationStatus::default(), &remote));
        let later = Facts { now: "2026-11-23T12:05:00Z".parse().unwrap(), ..facts(&online, &first, &remote) };
        assert_eq!(compute(&later), first, "no status patch when nothing changed");
    }

    #[test]
    fn the_remote_error_message_lands_in_status() {
        let online = spec(MigrationType::Online);
        let mut failed = task("FAILED");
        failed.error_message = Some("source Redis unreachable".into());
        let remote = Remote::Present(failed);
        let status = compute(&facts(&online, &RedisMigrationStatus::default(), &remote));
        assert!(status.message.unwrap().contains("source Redis unreachable"));
    }
}
