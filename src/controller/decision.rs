//! The pure decision core: given the resource and what is known of its remote task, which one
//! remote step comes next. No I/O here; the shell (`reconcile`) gathers the inputs, performs the
//! step and reports. Tested as a table.

use crate::crd::{MigrationType, Phase, RedisMigrationSpec, RedisMigrationStatus, ResumeMode, ServingSide};
use crate::dcs::model::{TaskState, TaskStatus};
use std::time::Duration;

/// What is known of the remote task, whichever call it came from (list row or detail).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RemoteTask {
    pub task_id: String,
    pub task_name: Option<String>,
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

/// What the task's detail says about an IP switch-over.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SwitchView {
    /// `task_status` reads `EXCHANGING`: a switch is under way.
    pub exchanging: bool,
    pub source_ip: Option<String>,
    pub target_ip: Option<String>,
}

impl SwitchView {
    /// Which side serves the source's original address: after an exchange the target carries
    /// the source's old IP.
    pub fn serving(&self, original_source_ip: Option<&str>) -> ServingSide {
        match (original_source_ip, self.target_ip.as_deref()) {
            (Some(source), Some(target)) if source == target => ServingSide::Target,
            _ => ServingSide::Source,
        }
    }
}

/// The crash-safety mark `dcs.migration.io/create-pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMark {
    /// No mark: no create was ever attempted for this resource.
    None,
    /// Written earlier (a create may have been sent, possibly by a process that crashed)
    /// this long ago.
    Earlier { age: Duration },
    /// Written in this very reconcile: no create can have been sent yet.
    JustWritten,
}

/// Everything the core decides from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub spec: &'a RedisMigrationSpec,
    pub status: &'a RedisMigrationStatus,
    pub mark: CreateMark,
    pub remote: &'a Remote,
    /// The switch-over view, when the shell looked at the task's detail in this pass.
    pub switch: Option<&'a SwitchView>,
    /// `metadata.generation` of the resource.
    pub generation: Option<i64>,
    /// How long a create with an unknown outcome is given to show up in the list before it is
    /// sent again (the list may lag behind a create).
    pub create_grace: Duration,
}

/// The next remote step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Write the `create-pending` mark before anything is created.
    MarkCreatePending,
    /// List tasks by the deterministic name (a previous attempt may have created one).
    FindByName,
    /// Record this existing task as ours.
    Adopt(String),
    /// The task id is recorded: the `create-pending` mark (left by a crash) has done its job.
    ClearCreateMark,
    /// A create with unknown outcome may still appear in the list: check again later.
    AwaitCreateGrace(Duration),
    /// Create the task (CreateMigrationTask or CreateOnlineMigrationTask).
    Create,
    /// Configure the online task that awaits configuration (SetOnlineMigrationTask).
    Configure,
    /// Look at the task's detail to see which side serves the addresses (ShowMigrationTask).
    InspectSwitchover,
    /// Exchange source and target IPs (ExchangeInstanceIp).
    ExchangeIp,
    /// Revert the switch-over (RollbackExchangeInstanceIp).
    RollbackIp,
    /// Apply the spec's resume mode (UpdateMigrationTask).
    UpdateResumeMode(ResumeMode),
    /// Stop the task (`spec.stopped`).
    Stop,
    /// Restart the online task the user had stopped (BatchRestartOnlineMigrationTasks).
    Restart,
    /// Nothing to change remotely: observe and report.
    Observe,
}

/// The task id this resource refers to: the recorded one, else the one it adopts by spec.
pub fn known_task_id<'a>(spec: &'a RedisMigrationSpec, status: &'a RedisMigrationStatus) -> Option<&'a str> {
    status.task_id.as_deref().or_else(|| spec.online.as_ref().and_then(|o| o.task_id.as_deref()))
}

/// Decides the next remote step (deletion is decided in `deletion`).
pub fn decide(inputs: &Inputs<'_>) -> Step {
    let Inputs { spec, status, mark, remote, switch, generation, create_grace } = *inputs;
    if known_task_id(spec, status).is_none() {
        if refused_for_generation(status, generation) {
            // The API refused this spec as invalid: terminal until the spec changes.
            return Step::Observe;
        }
        return match (remote, mark) {
            (Remote::Present(task), _) => Step::Adopt(task.task_id.clone()),
            (_, CreateMark::None) => Step::MarkCreatePending,
            (Remote::NotLookedUp, _) => Step::FindByName,
            (Remote::Absent, CreateMark::JustWritten) => Step::Create,
            (Remote::Absent, CreateMark::Earlier { age }) if age >= create_grace => Step::Create,
            (Remote::Absent, CreateMark::Earlier { age }) => Step::AwaitCreateGrace(create_grace - age),
        };
    }
    if mark != CreateMark::None {
        return Step::ClearCreateMark;
    }
    let Remote::Present(task) = remote else {
        return Step::Observe;
    };
    let state = task.state();
    let online = spec.migration_type == MigrationType::Online;
    if spec.stopped {
        let stoppable = !state.is_terminal() && state != TaskState::Terminating;
        return if stoppable { Step::Stop } else { Step::Observe };
    }
    if online && state == TaskState::Terminated && stopped_by_user(status) {
        return Step::Restart;
    }
    if online && state == TaskState::Running {
        return Step::Configure;
    }
    if online
        && matches!(state, TaskState::FullMigrating | TaskState::IncrementalMigrating)
        && let Some(step) = resume_mode_step(spec, task)
    {
        return step;
    }
    if online
        && matches!(state, TaskState::IncrementalMigrating | TaskState::Success)
        && let Some(step) = switchover_step(spec, status, switch)
    {
        return step;
    }
    Step::Observe
}

/// True when the API refused this very generation of the spec as invalid (a 4xx on create).
fn refused_for_generation(status: &RedisMigrationStatus, generation: Option<i64>) -> bool {
    status.conditions.iter().any(|c| {
        c.type_ == "Stalled"
            && c.status == "True"
            && c.reason == crate::controller::status::reason::INVALID_SPEC
            && c.observed_generation == generation
    })
}

/// True when the resource reports a task stopped on the user's request (`spec.stopped`).
pub fn stopped_by_user(status: &RedisMigrationStatus) -> bool {
    status.phase == Some(Phase::Terminated)
        && status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.reason == crate::controller::status::reason::STOPPED_BY_USER)
}

/// Which side should serve the source's addresses, per spec.
pub fn wanted_serving(spec: &RedisMigrationSpec) -> Option<ServingSide> {
    spec.switchover.as_ref().map(|s| if s.rollback { ServingSide::Source } else { ServingSide::Target })
}

/// Switch-over is decided from what the task reports, not from what was sent: a crash after an
/// exchange finds it under way (EXCHANGING) or done (the IPs swapped), never sends it twice.
fn switchover_step(
    spec: &RedisMigrationSpec,
    status: &RedisMigrationStatus,
    switch: Option<&SwitchView>,
) -> Option<Step> {
    let wanted = wanted_serving(spec)?;
    let recorded = status.switchover.as_ref();
    // `serving` is the last observed side; the shell clears it when it sends an action.
    let serving = recorded.and_then(|s| s.serving);
    let acted = recorded.is_some_and(|s| s.actions > 0);
    if serving == Some(wanted) || (serving.is_none() && !acted && wanted == ServingSide::Source) {
        return None;
    }
    let Some(view) = switch else { return Some(Step::InspectSwitchover) };
    if view.exchanging {
        return None;
    }
    let original = recorded.and_then(|s| s.source_ip.as_deref()).or(view.source_ip.as_deref());
    match (view.serving(original), wanted) {
        (ServingSide::Source, ServingSide::Target) => Some(Step::ExchangeIp),
        (ServingSide::Target, ServingSide::Source) => Some(Step::RollbackIp),
        _ => None,
    }
}

fn resume_mode_step(spec: &RedisMigrationSpec, task: &RemoteTask) -> Option<Step> {
    let wanted = spec.online.as_ref()?.resume_mode;
    let wire = match wanted {
        ResumeMode::Auto => "auto",
        ResumeMode::Manual => "manual",
    };
    let remote = task.resume_mode.as_deref()?;
    (!remote.eq_ignore_ascii_case(wire)).then_some(Step::UpdateResumeMode(wanted))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crd::{MigrationType, OnlineSpec, RedisEndpoint};

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
            spec.online = Some(OnlineSpec {
                task_id: None,
                network: None,
                resume_mode: ResumeMode::Auto,
                bandwidth_limit_mb: None,
            });
            spec.source = Some(RedisEndpoint {
                instance_id: None,
                address: Some("10.0.0.1:6379".into()),
                password_secret_ref: None,
            });
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

    fn run(spec: &RedisMigrationSpec, status: &RedisMigrationStatus, mark: CreateMark, remote: &Remote) -> Step {
        decide(&Inputs { spec, status, mark, remote, switch: None, generation: Some(1), create_grace: GRACE })
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
    fn a_spec_the_api_refused_is_not_sent_again_until_it_changes() {
        let s = spec(MigrationType::BackupImport);
        let refused = |generation| RedisMigrationStatus {
            conditions: vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
                type_: "Stalled".into(),
                status: "True".into(),
                reason: crate::controller::status::reason::INVALID_SPEC.into(),
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
            ("FAILED", Step::Observe, Step::Observe),
            ("MIGRATION_FAILED", Step::Observe, Step::Observe),
            ("ERROR", Step::Observe, Step::Observe),
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
            ("FAILED", Step::Observe),
        ] {
            assert_eq!(run(&s, &with_task_id(), CreateMark::None, &Remote::Present(task(word))), want, "{word}");
        }
    }

    #[test]
    fn unstopping_restarts_only_a_task_the_user_stopped() {
        let s = spec(MigrationType::Online);
        let mut stopped_by_user = with_task_id();
        stopped_by_user.phase = Some(Phase::Terminated);
        stopped_by_user.conditions.push(k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
            type_: "Ready".into(),
            status: "False".into(),
            reason: crate::controller::status::reason::STOPPED_BY_USER.into(),
            message: String::new(),
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
    fn switchover_is_decided_from_what_the_task_reports() {
        use crate::crd::{SwitchoverSpec, SwitchoverStatus};
        let mut s = spec(MigrationType::Online);
        s.switchover =
            Some(SwitchoverSpec { exchange_ips: vec!["10.0.0.1".into()], exchange_domain: false, rollback: false });
        let streaming = Remote::Present(task("INCRMIGEATING"));
        let with = |serving: Option<ServingSide>, actions: i32| RedisMigrationStatus {
            task_id: Some("t1".into()),
            switchover: Some(SwitchoverStatus {
                serving,
                actions,
                source_ip: Some("10.0.0.1".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let view = |exchanging: bool, source: &str, target: &str| SwitchView {
            exchanging,
            source_ip: Some(source.into()),
            target_ip: Some(target.into()),
        };
        let step =
            |spec: &RedisMigrationSpec, status: &RedisMigrationStatus, remote: &Remote, v: Option<&SwitchView>| {
                decide(&Inputs {
                    spec,
                    status,
                    mark: CreateMark::None,
                    remote,
                    switch: v,
                    generation: Some(1),
                    create_grace: GRACE,
                })
            };
        let not_yet = with(None, 0);
        assert_eq!(step(&s, &not_yet, &streaming, None), Step::InspectSwitchover);
        assert_eq!(step(&s, &not_yet, &streaming, Some(&view(false, "10.0.0.1", "10.0.0.2"))), Step::ExchangeIp);
        assert_eq!(step(&s, &not_yet, &Remote::Present(task("FULLMIGRATING")), None), Step::Observe, "only once Ready");
        let sent = with(None, 1);
        assert_eq!(
            step(&s, &sent, &streaming, Some(&view(true, "10.0.0.1", "10.0.0.2"))),
            Step::Observe,
            "under way: wait"
        );
        assert_eq!(
            step(&s, &sent, &streaming, Some(&view(false, "10.0.0.2", "10.0.0.1"))),
            Step::Observe,
            "done: never twice"
        );
        assert_eq!(step(&s, &with(Some(ServingSide::Target), 1), &streaming, None), Step::Observe);
        s.switchover.as_mut().unwrap().rollback = true;
        assert_eq!(step(&s, &with(Some(ServingSide::Target), 1), &streaming, None), Step::InspectSwitchover);
        assert_eq!(
            step(&s, &with(Some(ServingSide::Target), 1), &streaming, Some(&view(false, "10.0.0.2", "10.0.0.1"))),
            Step::RollbackIp
        );
        assert_eq!(
            step(&s, &with(None, 0), &streaming, None),
            Step::Observe,
            "rollback before any exchange: nothing to do"
        );
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
}
