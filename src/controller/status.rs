//! Status mapping (design.md §3): from the remote task and this pass's outcome to `phase`,
//! `message` and the `Ready` / `Synced` / `Reconciling` / `Stalled` conditions that `kubectl wait`,
//! kstatus (Flux) and the Argo CD health check read. Pure; tested as a table.

use super::conditions::{self, ConditionType, Problem, Reason};
use super::observed::{Remote, RemoteTask, stopped_by_user};
use super::switchover;
use crate::crd::{LastError, Phase, Progress, RedisMigrationSpec, RedisMigrationStatus, SwitchoverStatus};
use crate::dcs::model::TaskState;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

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
    /// The switch-over record as it must be written (`None`: as it is).
    pub switch: Option<&'a SwitchoverStatus>,
    /// The provisioning job of an online task, when this pass learnt it.
    pub job_id: Option<&'a str>,
    /// Why the task or its provisioning failed, when this pass learnt it.
    pub last_error: Option<&'a LastError>,
    /// Progress counters fetched in this pass (`None`: keep the previous ones).
    pub progress: Option<Progress>,
    /// Counters are written at most this often while the phase holds.
    pub progress_interval: std::time::Duration,
    pub problem: Option<&'a Problem>,
    /// The `reconcile-requested-at` value this pass acted on.
    pub handled_request: Option<&'a str>,
    pub now: Timestamp,
}

/// The Ready condition and the kstatus pair, as one row of the design's table.
struct Verdict {
    phase: Phase,
    ready: bool,
    reason: Reason,
    message: String,
    reconciling: bool,
    stalled: bool,
}

impl Verdict {
    fn progressing(phase: Phase, reason: Reason, message: impl Into<String>) -> Self {
        Self { phase, ready: false, reason, message: message.into(), reconciling: true, stalled: false }
    }
    fn ready(phase: Phase, reason: Reason, message: impl Into<String>) -> Self {
        Self { phase, ready: true, reason, message: message.into(), reconciling: false, stalled: false }
    }
    fn stalled(phase: Phase, reason: Reason, message: impl Into<String>) -> Self {
        Self { phase, ready: false, reason, message: message.into(), reconciling: false, stalled: true }
    }
}

/// Computes the new status. Unchanged facts give an identical status, so the shell patches only
/// on change.
pub fn compute(facts: &Facts<'_>) -> RedisMigrationStatus {
    let mut status = facts.prior.clone();
    // Conditions carry whole seconds on the wire: the same here, so that what was written equals what the
    // watch brings back (`written::Written` drops its record on that equality).
    let time = Time(Timestamp::from_second(facts.now.as_second()).unwrap_or(facts.now));
    let task_known = status.task_id.is_some() || facts.spec.online.as_ref().is_some_and(|o| o.task_id.is_some());
    let learnt_nothing = task_known && matches!(facts.remote, Remote::NotLookedUp) && !facts.paused && !facts.deleting;
    if learnt_nothing && facts.problem.is_none_or(|p| !p.stalls()) {
        // Nothing was learnt about the task in this pass: what status says still stands, but for
        // a failed exchange with the API (throttling, 5xx, network, an unreadable answer).
        if let Some(problem) = facts.problem {
            let reason = synced_reason(problem);
            conditions::set(
                &mut status.conditions,
                ConditionType::Synced,
                false,
                reason,
                problem.message(),
                facts.generation,
                &time,
            );
        }
        return status;
    }
    let verdict = verdict(facts);
    learn(&mut status, facts, verdict.phase);
    if status.phase != Some(verdict.phase) {
        status.last_phase_transition_time = Some(facts.now.to_string());
    }
    status.phase = Some(verdict.phase);
    status.message = Some(verdict.message.clone()).filter(|m| !m.is_empty());
    status.observed_generation = facts.generation;
    if let Some(request) = facts.handled_request {
        status.last_handled_reconcile_at = Some(request.to_owned());
    }
    let mut set = |type_: ConditionType, value: bool, reason: Reason, message: &str| {
        conditions::set(&mut status.conditions, type_, value, reason, message, facts.generation, &time);
    };
    if !facts.paused || facts.deleting {
        set(ConditionType::Ready, verdict.ready, verdict.reason, &verdict.message);
        let (reconciling_reason, stalled_reason) = if verdict.reconciling {
            (verdict.reason, Reason::InProgress)
        } else if verdict.stalled {
            (Reason::Stable, verdict.reason)
        } else {
            (Reason::Stable, Reason::Stable)
        };
        let reconciling_message = if verdict.reconciling { verdict.message.as_str() } else { "" };
        let stalled_message = if verdict.stalled { verdict.message.as_str() } else { "" };
        set(ConditionType::Reconciling, verdict.reconciling, reconciling_reason, reconciling_message);
        set(ConditionType::Stalled, verdict.stalled, stalled_reason, stalled_message);
    }
    if facts.spec.switchover.is_some() {
        let (value, reason, message) = switchover::condition(facts.switch.or(facts.prior.switchover.as_deref()));
        set(ConditionType::SwitchedOver, value, reason, &message);
    }
    match facts.problem {
        Some(problem) => set(ConditionType::Synced, false, synced_reason(problem), problem.message()),
        None if matches!(facts.remote, Remote::NotLookedUp) || facts.paused => {}
        None => set(ConditionType::Synced, true, Reason::Synced, ""),
    }
    status
}

/// What this pass learnt of the task, its progress, its switch-over and its failures.
fn learn(status: &mut RedisMigrationStatus, facts: &Facts<'_>, phase: Phase) {
    if let Remote::Present(task) = facts.remote {
        mirror_remote(status, task);
    } else if status.task_name.is_none() {
        status.task_name = Some(facts.task_name.to_owned());
    }
    if let Some(progress) = facts.progress.as_ref().filter(|p| progress_due(facts, p, phase)) {
        status.progress = Some(Box::new(Progress { updated_at: Some(facts.now.to_string()), ..progress.clone() }));
    }
    if let Remote::Present(task) = facts.remote {
        // The full copy is complete in these states, whatever the last sampled counters said.
        if matches!(task.state(), TaskState::Success | TaskState::MigrationSuccess | TaskState::IncrementalMigrating) {
            status.progress.get_or_insert_with(Box::default).percent = Some(100);
        }
    }
    if let Some(record) = facts.switch {
        status.switchover = Some(Box::new(record.clone()));
    }
    if let Some(job) = facts.job_id {
        status.job_id = Some(job.to_owned());
    }
    if let Some(error) = facts.last_error {
        status.last_error = Some(Box::new(error.clone()));
    }
}

/// New counters are written when they differ: with a phase change, or, while the phase holds, at most once per
/// `progress_interval` since the status was last written for either (the phase's own write counts, so the first
/// sample of a phase waits too): progress moves slowly, and every write is load on the API server.
fn progress_due(facts: &Facts<'_>, new: &Progress, phase: Phase) -> bool {
    let prior = &facts.prior;
    let counters = |p: &Progress| Progress { updated_at: None, ..p.clone() };
    if prior.progress.as_ref().is_some_and(|p| counters(p) == counters(new)) {
        return false;
    }
    if prior.phase != Some(phase) {
        return true;
    }
    let written =
        [prior.progress.as_ref().and_then(|p| p.updated_at.as_deref()), prior.last_phase_transition_time.as_deref()]
            .into_iter()
            .flatten()
            .filter_map(|t| t.parse::<Timestamp>().ok())
            .max();
    let interval = jiff::SignedDuration::try_from(facts.progress_interval).unwrap_or(jiff::SignedDuration::ZERO);
    written.is_none_or(|t| facts.now.duration_since(t) >= interval)
}

/// `Synced` says whether the last exchange with the API went through; a spec the API refused
/// is an API error there (`Ready` and `Stalled` say `InvalidSpec`).
fn synced_reason(problem: &Problem) -> Reason {
    match problem.reason() {
        Reason::InvalidSpec => Reason::ApiError,
        reason => reason,
    }
}

/// Copies what the task says into status; every remote string is bounded (1 KiB), so a hostile
/// endpoint cannot bloat the resource.
fn mirror_remote(status: &mut RedisMigrationStatus, task: &RemoteTask) {
    let bounded = |s: &str| super::decision::bounded(s);
    status.task_id = Some(bounded(&task.task_id));
    if let Some(name) = &task.task_name {
        status.task_name = Some(bounded(name));
    }
    status.remote_status = Some(bounded(task.status.word())).filter(|w| !w.is_empty());
    let keep = |old: &mut Option<String>, new: &Option<String>| {
        if let Some(new) = new {
            *old = Some(bounded(new));
        }
    };
    keep(&mut status.ecs_private_ip, &task.ecs_private_ip);
    keep(&mut status.created_at, &task.created_at);
    keep(&mut status.updated_at, &task.updated_at);
    keep(&mut status.released_at, &task.released_at);
}

/// Why the task failed: the list row's `error_message`, else the last error its log gave.
fn failure_detail(facts: &Facts<'_>, task: &RemoteTask) -> String {
    let logged = facts.last_error.or(facts.prior.last_error.as_deref()).map(|e| e.message.clone());
    Some(remote_error(task)).filter(|m| !m.is_empty()).or(logged).unwrap_or_default()
}

fn remote_error(task: &RemoteTask) -> String {
    task.error_message.as_deref().map(super::decision::bounded).unwrap_or_default()
}

fn verdict(facts: &Facts<'_>) -> Verdict {
    let prior_phase = facts.prior.phase;
    if facts.deleting {
        return Verdict::progressing(Phase::Terminating, Reason::Deleting, "the resource is being deleted");
    }
    if facts.paused {
        // Conditions stay as they were; only phase and message say so.
        return Verdict::ready(
            Phase::Paused,
            Reason::Stable,
            "reconciliation is paused by the dcs.migration.io/paused annotation",
        );
    }
    if let Some(stall) = facts.problem.filter(|p| p.stalls()).map(|p| (p.reason(), p.message())) {
        let phase = prior_phase.filter(|p| *p != Phase::Paused).unwrap_or(Phase::Pending);
        return Verdict::stalled(phase, stall.0, stall.1);
    }
    let mut v = verdict_unpaused(facts);
    if v.reconciling && deadline_exceeded(facts, v.phase) {
        let message = format!(
            "the task has been {:?} for more than spec.progressDeadlineSeconds ({} s)",
            v.phase, facts.spec.progress_deadline_seconds
        );
        v = Verdict::stalled(v.phase, Reason::ProgressDeadlineExceeded, message);
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
                Reason::RemoteTaskGone,
                format!("the remote task {} no longer exists", id.unwrap_or_default()),
            );
        }
        _ => {
            let (phase, message) = if facts.creating {
                (Phase::Creating, format!("creating the remote task {}", facts.task_name))
            } else {
                (Phase::Pending, "the remote task has not been created yet".to_owned())
            };
            return Verdict::progressing(phase, Reason::Creating, message);
        }
    };
    task_verdict(facts, task, prior_phase)
}

/// The row of the design's table for the task's status word.
fn task_verdict(facts: &Facts<'_>, task: &RemoteTask, prior_phase: Option<Phase>) -> Verdict {
    let word = task.status.word();
    match task.state() {
        // Just created: the API has not given the task a status word yet.
        TaskState::Unknown if word.is_empty() => Verdict::progressing(
            prior_phase.filter(|p| *p != Phase::Pending).unwrap_or(Phase::Creating),
            Reason::Creating,
            format!("created the remote task {}; waiting for its first status", task.task_id),
        ),
        TaskState::Creating => {
            Verdict::progressing(Phase::Provisioning, Reason::Configuring, "the migration ECS is being provisioned")
        }
        TaskState::Running => {
            Verdict::progressing(Phase::AwaitingConfiguration, Reason::Configuring, "the task awaits configuration")
        }
        TaskState::Migrating | TaskState::FullMigrating => {
            Verdict::progressing(Phase::FullMigrating, Reason::Migrating, "full migration in progress")
        }
        TaskState::IncrementalMigrating => Verdict::ready(
            Phase::IncrementalMigrating,
            Reason::IncrementalSyncing,
            "full migration done; streaming changes until stopped",
        ),
        TaskState::Success | TaskState::MigrationSuccess => {
            Verdict::ready(Phase::Succeeded, Reason::Succeeded, "the migration succeeded")
        }
        TaskState::Terminating => {
            Verdict::progressing(Phase::Terminating, Reason::Stopping, "the task is being stopped")
        }
        // Stopped as asked: the desired state is reached. Ready is True (reason StoppedByUser) so
        // that kstatus, which falls back to Ready, reports Current as design.md §3 wants; Argo CD's
        // check maps the reason to Suspended.
        TaskState::Terminated if facts.spec.stopped => {
            Verdict::ready(Phase::Terminated, Reason::StoppedByUser, "the task was stopped as spec.stopped asks")
        }
        TaskState::Terminated if stopped_by_user(facts.prior) => {
            Verdict::progressing(Phase::Terminated, Reason::Creating, "restarting the stopped task")
        }
        TaskState::Terminated => {
            Verdict::stalled(Phase::Terminated, Reason::StoppedRemotely, "the task was stopped outside this resource")
        }
        TaskState::Deleted => {
            Verdict::stalled(Phase::Terminated, Reason::RemoteTaskGone, "the remote task was deleted")
        }
        TaskState::Failed | TaskState::MigrationFailed | TaskState::Error => {
            let detail = failure_detail(facts, task);
            let message = if detail.is_empty() {
                format!("the task ended with {word}")
            } else {
                format!("the task ended with {word}: {detail}")
            };
            Verdict::stalled(Phase::Failed, Reason::Failed, message)
        }
        TaskState::Released => released(prior_phase, task),
        TaskState::Unknown => Verdict::progressing(
            prior_phase.unwrap_or(Phase::Creating),
            Reason::UnknownRemoteStatus,
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
            Reason::Failed,
            format!("the task failed; its migration ECS was released{}", suffix(&detail)),
        ),
        Some(Phase::Terminated) => Verdict::stalled(
            Phase::Terminated,
            Reason::StoppedRemotely,
            "the task was stopped; its migration ECS was released",
        ),
        _ if !detail.is_empty() => Verdict::stalled(
            Phase::Failed,
            Reason::Failed,
            format!("the task failed; its migration ECS was released: {detail}"),
        ),
        _ => Verdict::ready(
            Phase::Succeeded,
            Reason::Succeeded,
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::controller::decision::tests::{spec, task};
    use crate::crd::MigrationType;

    struct Row {
        phase: Phase,
        ready: &'static str,
        reason: Reason,
        reconciling: &'static str,
        stalled: &'static str,
    }

    pub fn facts<'a>(spec: &'a RedisMigrationSpec, prior: &'a RedisMigrationStatus, remote: &'a Remote) -> Facts<'a> {
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
            job_id: None,
            last_error: None,
            progress: None,
            progress_interval: std::time::Duration::from_secs(30),
            problem: None,
            handled_request: None,
            now: "2026-11-23T12:00:00Z".parse().unwrap(),
        }
    }

    fn condition(s: &RedisMigrationStatus, type_: ConditionType) -> &crate::crd::Condition {
        conditions::find(&s.conditions, type_).unwrap_or_else(|| panic!("no {type_:?} condition"))
    }

    fn check(status: &RedisMigrationStatus, want: &Row, case: &str) {
        assert_eq!(status.phase, Some(want.phase), "{case}: phase");
        let ready = condition(status, ConditionType::Ready);
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), (want.ready, want.reason.as_str()), "{case}: Ready");
        assert_eq!(condition(status, ConditionType::Reconciling).status, want.reconciling, "{case}: Reconciling");
        assert_eq!(condition(status, ConditionType::Stalled).status, want.stalled, "{case}: Stalled");
        assert!(status.conditions.iter().all(|c| c.observed_generation == Some(3)), "{case}: observedGeneration");
        assert_eq!(status.observed_generation, Some(3));
    }

    fn row(phase: Phase, ready: &'static str, reason: Reason, reconciling: &'static str, stalled: &'static str) -> Row {
        Row { phase, ready, reason, reconciling, stalled }
    }

    #[test]
    fn every_remote_status_word_maps_to_the_design_table() {
        let online = spec(MigrationType::Online);
        let prior = RedisMigrationStatus { task_id: Some("t1".into()), ..Default::default() };
        let table = [
            ("CREATING", row(Phase::Provisioning, "False", Reason::Configuring, "True", "False")),
            ("RUNNING", row(Phase::AwaitingConfiguration, "False", Reason::Configuring, "True", "False")),
            ("MIGRATING", row(Phase::FullMigrating, "False", Reason::Migrating, "True", "False")),
            ("FULLMIGRATING", row(Phase::FullMigrating, "False", Reason::Migrating, "True", "False")),
            ("INCRMIGEATING", row(Phase::IncrementalMigrating, "True", Reason::IncrementalSyncing, "False", "False")),
            ("INCRMIGRATING", row(Phase::IncrementalMigrating, "True", Reason::IncrementalSyncing, "False", "False")),
            ("SUCCESS", row(Phase::Succeeded, "True", Reason::Succeeded, "False", "False")),
            ("MIGRATION_SUCCESS", row(Phase::Succeeded, "True", Reason::Succeeded, "False", "False")),
            ("RELEASED", row(Phase::Succeeded, "True", Reason::Succeeded, "False", "False")),
            ("TERMINATING", row(Phase::Terminating, "False", Reason::Stopping, "True", "False")),
            ("FAILED", row(Phase::Failed, "False", Reason::Failed, "False", "True")),
            ("MIGRATION_FAILED", row(Phase::Failed, "False", Reason::Failed, "False", "True")),
            ("ERROR", row(Phase::Failed, "False", Reason::Failed, "False", "True")),
            ("TERMINATED", row(Phase::Terminated, "False", Reason::StoppedRemotely, "False", "True")),
            ("DELETED", row(Phase::Terminated, "False", Reason::RemoteTaskGone, "False", "True")),
            ("WARPING", row(Phase::Creating, "False", Reason::UnknownRemoteStatus, "True", "False")),
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
            &row(Phase::Pending, "False", Reason::Creating, "True", "False"),
            "none yet",
        );
        let creating = Facts { creating: true, ..facts(&online, &none, &nothing) };
        check(&compute(&creating), &row(Phase::Creating, "False", Reason::Creating, "True", "False"), "creating");

        let terminated = Remote::Present(task("TERMINATED"));
        check(
            &compute(&facts(&stopped, &recorded, &terminated)),
            &row(Phase::Terminated, "True", Reason::StoppedByUser, "False", "False"),
            "stopped by user",
        );

        let gone = Remote::Absent;
        check(
            &compute(&facts(&online, &recorded, &gone)),
            &row(Phase::Terminated, "False", Reason::RemoteTaskGone, "False", "True"),
            "task gone",
        );

        let deleting = Facts { deleting: true, ..facts(&online, &recorded, &nothing) };
        check(&compute(&deleting), &row(Phase::Terminating, "False", Reason::Deleting, "True", "False"), "deleting");

        for (problem, reason) in [
            (Problem::InvalidSpec("DCS.4062".into()), Reason::InvalidSpec),
            (Problem::CredentialsMissing("Secret ns/x not found".into()), Reason::CredentialsMissing),
            (Problem::CredentialsRejected("APIGW.0301".into()), Reason::CredentialsRejected),
            (Problem::PermissionDenied("DCS.2003".into()), Reason::PermissionDenied),
        ] {
            let f = Facts { problem: Some(&problem), ..facts(&online, &none, &nothing) };
            let status = compute(&f);
            check(&status, &row(Phase::Pending, "False", reason, "False", "True"), reason.as_str());
            assert_eq!(condition(&status, ConditionType::Synced).status, "False");
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
        assert_eq!(condition(&after, ConditionType::Ready), condition(&before, ConditionType::Ready));
        let synced = condition(&after, ConditionType::Synced);
        assert_eq!((synced.status.as_str(), synced.reason.as_str()), ("False", Reason::ApiError.as_str()));
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
            &row(Phase::FullMigrating, "False", Reason::ProgressDeadlineExceeded, "False", "True"),
            "deadline",
        );
        let recent = RedisMigrationStatus { last_phase_transition_time: Some("2026-11-23T11:50:00Z".into()), ..prior };
        check(
            &compute(&facts(&online, &recent, &remote)),
            &row(Phase::FullMigrating, "False", Reason::Migrating, "True", "False"),
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
            &row(Phase::Failed, "False", Reason::Failed, "False", "True"),
            "failed then released",
        );
        let succeeded = RedisMigrationStatus { phase: Some(Phase::Succeeded), ..failed };
        check(
            &compute(&facts(&online, &succeeded, &remote)),
            &row(Phase::Succeeded, "True", Reason::Succeeded, "False", "False"),
            "succeeded then released",
        );
    }

    #[test]
    fn progress_is_written_when_it_moves_but_at_most_once_per_interval_while_the_phase_holds() {
        let online = spec(MigrationType::Online);
        let remote = Remote::Present(task("FULLMIGRATING"));
        let sample = |percent| Progress { percent: Some(percent), ..Default::default() };
        let none = RedisMigrationStatus::default();
        let mut f = facts(&online, &none, &remote);
        f.progress = Some(sample(10));
        let first = compute(&f);
        assert_eq!(first.progress.as_ref().and_then(|p| p.percent), Some(10), "the first sample is written");
        let at = |secs: i64| f.now.checked_add(jiff::SignedDuration::from_secs(secs)).unwrap();
        let next = |prior: &RedisMigrationStatus, percent, now| {
            let mut g = facts(&online, prior, &remote);
            g.progress = Some(sample(percent));
            g.now = now;
            compute(&g)
        };
        let soon = next(&first, 20, at(10));
        assert_eq!(soon, first, "a sample within the interval changes nothing (no patch)");
        let later = next(&first, 20, at(31));
        assert_eq!(later.progress.as_ref().and_then(|p| p.percent), Some(20), "written once the interval passed");
        let same = next(&later, 20, at(120));
        assert_eq!(same, later, "unchanged counters are not written again");
        let entered = RedisMigrationStatus {
            progress: None,
            last_phase_transition_time: Some(f.now.to_string()),
            ..first.clone()
        };
        let early = next(&entered, 20, at(1));
        assert_eq!(early, entered, "the phase was just written: its first sample waits for the interval too");
        let due = next(&entered, 20, at(30));
        assert_eq!(due.progress.as_ref().and_then(|p| p.percent), Some(20), "and is written once it passed");
        let streaming = Remote::Present(task("INCRMIGEATING"));
        let done = facts(&online, &first, &streaming);
        assert_eq!(compute(&done).progress.and_then(|p| p.percent), Some(100), "a phase change shows at once");
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
