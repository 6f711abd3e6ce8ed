//! The I/O shell around the decision core: gathers the inputs (Secrets, the account's view of
//! the remote task), performs the one step the core chose, writes status (server-side apply,
//! only on change) and Events, and picks the requeue.

use super::account::Account;
use super::batch::Outcome;
use super::context::Context;
use super::credentials::{self, AccountAccess, CredentialError};
use super::decision::{self, CreateMark, Inputs, Remote, RemoteTask, Step, SwitchView, known_task_id};
use super::deletion;
use super::naming::default_task_name;
use super::status::{self, Facts, Problem};
use super::{ANNOTATION_CREATE_PENDING, ANNOTATION_PAUSED, ANNOTATION_RECONCILE_REQUESTED, FIELD_MANAGER, FINALIZER};
use crate::crd::{
    BackupSource, Method, MigrationType, Phase, Progress, RedisMigration, RedisMigrationStatus, ResumeMode,
};
use crate::dcs::model::*;
use crate::dcs::{DcsError, ErrorClass};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Why a reconcile failed; the controller retries it with per-object backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    #[error("the resource has no namespace")]
    NotNamespaced,
    /// Throttling, 5xx, network or an unreachable API server: retried with backoff.
    #[error("{0}")]
    Transient(String),
}

/// Most steps one reconcile takes before it reports (mark, find, create, configure...).
const MAX_STEPS: usize = 6;

/// Reconciles one RedisMigration.
#[tracing::instrument(skip_all, fields(namespace = rm.namespace().unwrap_or_default(), name = rm.name_any(), generation = rm.metadata.generation))]
pub async fn reconcile(rm: Arc<RedisMigration>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = ObjectRef::from_obj(&*rm);
    let pass = Pass::new(rm, &ctx)?;
    let result = if pass.rm.metadata.deletion_timestamp.is_some() {
        deletion::run(pass).await
    } else if !pass.rm.finalizers().iter().any(|f| f == FINALIZER) {
        pass.add_finalizer().await
    } else {
        apply(pass).await
    };
    if result.is_ok() {
        ctx.forget_failures(&key);
    }
    result
}

/// The state of one reconcile: the object, its API, and the status being built.
pub struct Pass<'c> {
    pub rm: Arc<RedisMigration>,
    pub ctx: &'c Context,
    pub api: Api<RedisMigration>,
    pub secrets: Api<Secret>,
    pub namespace: String,
    /// The status as written so far in this pass (starts as the object's).
    pub written: RedisMigrationStatus,
    pub task_name: String,
    /// The switch-over view read in this pass, if any.
    pub switch: Option<SwitchView>,
}

impl<'c> Pass<'c> {
    fn new(rm: Arc<RedisMigration>, ctx: &'c Context) -> Result<Self, Error> {
        let namespace = rm.namespace().ok_or(Error::NotNamespaced)?;
        let task_name = rm.spec.task_name.clone().unwrap_or_else(|| {
            default_task_name(&namespace, &rm.name_any(), rm.metadata.uid.as_deref().unwrap_or_default())
        });
        Ok(Self {
            api: Api::namespaced(ctx.client.clone(), &namespace),
            secrets: Api::namespaced(ctx.client.clone(), &namespace),
            written: rm.status.clone().unwrap_or_default(),
            rm,
            ctx,
            namespace,
            task_name,
            switch: None,
        })
    }

    pub fn owner(&self) -> ObjectRef<RedisMigration> {
        ObjectRef::from_obj(&*self.rm)
    }

    fn annotation(&self, key: &str) -> Option<&str> {
        self.rm.metadata.annotations.as_ref().and_then(|a| a.get(key)).map(String::as_str)
    }

    pub fn paused(&self) -> bool {
        self.annotation(ANNOTATION_PAUSED) == Some("true")
    }

    /// The `create-pending` mark's age, if set.
    pub fn create_mark(&self) -> CreateMark {
        match self.annotation(ANNOTATION_CREATE_PENDING) {
            None => CreateMark::None,
            Some(value) => {
                let age = value
                    .parse::<Timestamp>()
                    .ok()
                    .and_then(|t| Timestamp::now().duration_since(t).try_into().ok())
                    .unwrap_or(Duration::MAX);
                CreateMark::Earlier { age }
            }
        }
    }

    /// Adds the finalizer before any remote call, so no task can be orphaned. The patch is
    /// conditional on the object's resourceVersion; its watch event starts the next reconcile.
    async fn add_finalizer(&self) -> Result<Action, Error> {
        let mut finalizers = self.rm.finalizers().to_vec();
        finalizers.push(FINALIZER.to_owned());
        let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": self.rm.resource_version()}});
        self.api.patch(&self.rm.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
        crate::crash::point("finalizer-added");
        Ok(Action::await_change())
    }

    /// Removes the finalizer: the resource may go.
    pub async fn remove_finalizer(&self) -> Result<(), Error> {
        let finalizers: Vec<&String> = self.rm.finalizers().iter().filter(|f| *f != FINALIZER).collect();
        let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": self.rm.resource_version()}});
        match self.api.patch(&self.rm.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets or clears an annotation, conditional on the resourceVersion the pass started from
    /// (a stale view fails with 409 instead of acting twice).
    async fn annotate(&self, key: &str, value: Option<String>) -> Result<(), Error> {
        let patch = json!({"metadata": {"annotations": {key: value}, "resourceVersion": self.rm.resource_version()}});
        self.api.patch(&self.rm.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
        Ok(())
    }

    /// Clears an annotation without a precondition (the pass already wrote the object).
    async fn clear_annotation(&self, key: &str) -> Result<(), Error> {
        let patch = json!({"metadata": {"annotations": {key: null}}});
        self.api.patch(&self.rm.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
        Ok(())
    }

    /// Writes `status` with server-side apply when it differs from what was last written;
    /// emits an Event when the phase changes.
    pub async fn write_status(&mut self, status: RedisMigrationStatus) -> Result<(), Error> {
        if status == self.written {
            return Ok(());
        }
        let old_phase = self.written.phase;
        let patch = json!({
            "apiVersion": "dcs.migration.io/v1alpha1",
            "kind": "RedisMigration",
            "status": status,
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match self.api.patch_status(&self.rm.name_any(), &params, &Patch::Apply(&patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        crate::crash::point("status-written");
        if old_phase != status.phase
            && let Some(phase) = status.phase
        {
            let kind = match phase {
                Phase::Failed => EventType::Warning,
                Phase::Terminated if !self.rm.spec.stopped && self.rm.metadata.deletion_timestamp.is_none() => {
                    EventType::Warning
                }
                _ => EventType::Normal,
            };
            let note = status.message.clone().unwrap_or_else(|| format!("phase is now {phase:?}"));
            self.event(kind, &format!("{phase:?}"), "PhaseChanged", note).await;
        }
        self.written = status;
        Ok(())
    }

    /// Publishes an Event; failures (e.g. a Terminating namespace refusing new objects) are
    /// logged, never fatal.
    pub async fn event(&self, type_: EventType, reason: &str, action: &str, note: String) {
        let event =
            Event { type_, reason: reason.to_owned(), note: Some(note), action: action.to_owned(), secondary: None };
        if let Err(e) = self.ctx.events.publish(&event, &self.rm.object_ref(&())).await {
            tracing::debug!(error = %e, "could not publish an Event");
        }
    }

    /// Resolves the account of this resource.
    pub async fn account(&self) -> Result<(AccountAccess, Arc<Account>), Problem> {
        let access = credentials::resolve(&self.rm.spec, &self.namespace, &self.secrets, &self.ctx.defaults)
            .await
            .map_err(|e| credential_problem(&e))?;
        let account = self.ctx.accounts.get(&access).map_err(|e| Problem::InvalidSpec(e.to_string()))?;
        Ok((access, account))
    }

    /// Computes and writes the status for this pass.
    pub async fn report(
        &mut self,
        remote: &Remote,
        problem: Option<&Problem>,
        progress: Option<Progress>,
        handled: Option<&str>,
    ) -> Result<(), Error> {
        let status = status::compute(&Facts {
            spec: &self.rm.spec,
            generation: self.rm.metadata.generation,
            prior: &self.written,
            remote,
            task_name: &self.task_name,
            creating: self.annotation(ANNOTATION_CREATE_PENDING).is_some(),
            paused: self.paused(),
            deleting: self.rm.metadata.deletion_timestamp.is_some(),
            switch: self.switch.as_ref(),
            progress,
            problem,
            handled_request: handled,
            now: Timestamp::now(),
        });
        self.write_status(status).await
    }
}

/// Maps a credentials error to what status says.
pub fn credential_problem(e: &CredentialError) -> Problem {
    match e {
        CredentialError::Unreadable { .. } => Problem::Transient(e.to_string()),
        CredentialError::InvalidEndpoint(_) | CredentialError::EndpointNotAllowed { .. } => {
            Problem::InvalidSpec(e.to_string())
        }
        _ => Problem::CredentialsMissing(e.to_string()),
    }
}

/// Maps a DCS error to what status says; the message carries the DCS code, never a body.
pub fn dcs_problem(e: &DcsError) -> Problem {
    let message = e.to_string();
    match e.class() {
        ErrorClass::Throttled | ErrorClass::Server | ErrorClass::Network | ErrorClass::Decode => {
            Problem::Transient(message)
        }
        ErrorClass::Authentication => Problem::CredentialsRejected(message),
        ErrorClass::Permission => Problem::PermissionDenied(message),
        ErrorClass::NotFound | ErrorClass::BadRequest => Problem::InvalidSpec(message),
    }
}

/// The desired-state path.
async fn apply(mut pass: Pass<'_>) -> Result<Action, Error> {
    let ctx = pass.ctx;
    let requested = pass.annotation(ANNOTATION_RECONCILE_REQUESTED).map(str::to_owned);
    let fresh = requested.is_some() && requested.as_deref() != pass.written.last_handled_reconcile_at.as_deref();
    let handled = requested.as_deref().filter(|_| fresh);

    if pass.paused() {
        // No remote calls while paused: not even the account loop's observation of the task.
        if let (Some(id), Ok((_, account))) = (known_task_id(&pass.rm.spec, &pass.written), pass.account().await) {
            account.unwatch(id);
        }
        pass.report(&Remote::NotLookedUp, None, None, handled).await?;
        return Ok(Action::requeue(ctx.settings.resync));
    }
    // Before any remote call, the Secrets this resource needs must survive until it is released.
    ctx.guard.protect(&ctx.client, &pass.rm).await?;
    let (_access, account) = match pass.account().await {
        Ok(found) => found,
        Err(problem) => return stalled(pass, problem, handled).await,
    };

    let mut remote = Remote::NotLookedUp;
    let mut mark = pass.create_mark();
    let mut problem: Option<Problem> = None;
    let mut requeue: Option<Duration> = None;
    if let Some(id) = known_task_id(&pass.rm.spec, &pass.written).map(str::to_owned) {
        match account.observe(&id, pass.owner(), fresh).await {
            Ok(r) => remote = r,
            Err(e) => problem = Some(dcs_problem(&e)),
        }
    }
    for _ in 0..MAX_STEPS {
        if problem.is_some() {
            break;
        }
        let step = decision::decide(&Inputs {
            spec: &pass.rm.spec,
            status: &pass.written,
            mark,
            remote: &remote,
            switch: pass.switch.as_ref(),
            generation: pass.rm.metadata.generation,
            create_grace: ctx.settings.create_grace,
        });
        tracing::debug!(?step, "decided");
        match step {
            Step::Observe => break,
            Step::MarkCreatePending => {
                pass.annotate(ANNOTATION_CREATE_PENDING, Some(Timestamp::now().to_string())).await?;
                crate::crash::point("create-marked");
                mark = CreateMark::JustWritten;
            }
            Step::FindByName => {
                match account.find_by_name(&pass.task_name).await {
                    Ok(Some(task)) => remote = Remote::Present(task),
                    Ok(None) => remote = Remote::Absent,
                    Err(e) => problem = Some(dcs_problem(&e)),
                }
                crate::crash::point("create-looked-up");
            }
            Step::Adopt(id) => {
                pass.report(&remote, None, None, handled).await?;
                crate::crash::point("adopt-recorded");
                pass.clear_annotation(ANNOTATION_CREATE_PENDING).await?;
                mark = CreateMark::None;
                pass.event(
                    EventType::Normal,
                    "Adopted",
                    "Adopt",
                    format!("adopted the existing remote task {id} named {}", pass.task_name),
                )
                .await;
            }
            Step::ClearCreateMark => {
                pass.clear_annotation(ANNOTATION_CREATE_PENDING).await?;
                mark = CreateMark::None;
            }
            Step::AwaitCreateGrace(wait) => {
                requeue = Some(wait);
                break;
            }
            Step::Create => match create(&pass, &account).await {
                Ok(id) => {
                    crate::crash::point("created");
                    pass.report(
                        &Remote::Present(RemoteTask {
                            task_id: id.clone(),
                            task_name: Some(pass.task_name.clone()),
                            ..Default::default()
                        }),
                        None,
                        None,
                        handled,
                    )
                    .await?;
                    crate::crash::point("create-recorded");
                    pass.clear_annotation(ANNOTATION_CREATE_PENDING).await?;
                    mark = CreateMark::None;
                    crate::crash::point("create-mark-cleared");
                    pass.event(
                        EventType::Normal,
                        "Created",
                        "Create",
                        format!("created the remote task {id} named {}", pass.task_name),
                    )
                    .await;
                    remote = Remote::NotLookedUp;
                    account.observe(&id, pass.owner(), true).await.map(|r| remote = r).ok();
                }
                Err(e) => {
                    if e.certainly_not_applied() {
                        pass.clear_annotation(ANNOTATION_CREATE_PENDING).await?;
                    }
                    problem = Some(dcs_problem(&e));
                }
            },
            Step::Configure => match configure(&pass, &account, &remote).await {
                Ok(word) => {
                    crate::crash::point("configured");
                    set_remote_status(&mut remote, word);
                    record(&account, &remote, &pass);
                    pass.event(EventType::Normal, "Configured", "Configure", "configured the online migration".into())
                        .await;
                }
                Err(Configure::Refused(p)) => problem = Some(p),
                // No readable answer, or "not allowed in the current state" (a configure whose
                // answer was lost already went through): look again before anything else.
                Err(Configure::Unknown(p)) => {
                    account.touched(&task_id_of(&remote));
                    problem = p;
                    requeue = Some(ctx.settings.tick);
                    break;
                }
            },
            Step::UpdateResumeMode(mode) => {
                let id = task_id_of(&remote);
                match account.call(|c| async move { c.update_migration_task(&id, wire_resume_mode(mode)).await }).await
                {
                    Ok(()) => {
                        if let Remote::Present(t) = &mut remote {
                            t.resume_mode = Some(resume_word(mode).to_owned());
                        }
                        record(&account, &remote, &pass);
                    }
                    Err(e) => problem = Some(dcs_problem(&e)),
                }
            }
            Step::Stop => {
                let id = task_id_of(&remote);
                match account.stop(&id).await {
                    Ok(Outcome::Accepted) => {
                        crate::crash::point("stop-sent");
                        set_remote_status(&mut remote, TaskStatus::new("TERMINATING"));
                    }
                    // Ended meanwhile, or gone: the next observation tells.
                    Ok(Outcome::WrongState(_)) => {}
                    Ok(Outcome::Gone) => remote = Remote::Absent,
                    Ok(Outcome::Failed(message)) => {
                        problem = Some(Problem::Transient(format!("stopping task {id}: {message}")))
                    }
                    Err(e) => problem = Some(dcs_problem(&e)),
                }
            }
            Step::InspectSwitchover => match account.detail(&task_id_of(&remote)).await {
                Ok(task) => pass.switch = Some(switch_view(&task)),
                Err(e) => problem = Some(dcs_problem(&e)),
            },
            Step::ExchangeIp | Step::RollbackIp => {
                let id = task_id_of(&remote);
                let exchange = step == Step::ExchangeIp;
                // Written before the call: the original source IP (how the outcome is read back
                // after a crash) and that an action is out (so it is confirmed, never resent blind).
                let view = pass.switch.take().unwrap_or_default();
                let recorded = pass.written.switchover.get_or_insert_with(Default::default);
                if recorded.source_ip.is_none() {
                    recorded.source_ip = view.source_ip.clone();
                }
                recorded.serving = None;
                recorded.actions += 1;
                recorded.last_action = Some(if exchange { "exchange-ip" } else { "rollback-ip" }.to_owned());
                recorded.last_action_at = Some(Timestamp::now().to_string());
                pass.report(&remote, None, None, handled).await?;
                crate::crash::point("switchover-recorded");
                let switchover = pass.rm.spec.switchover.clone().unwrap_or_default();
                let result = if exchange {
                    let body = ExchangeInstanceIpBody {
                        exchanged_ip: switchover.exchange_ips,
                        is_exchange_domain: switchover.exchange_domain,
                    };
                    account.call(|c| async move { c.exchange_instance_ip(&id, &body).await }).await
                } else {
                    account.call(|c| async move { c.rollback_exchange_instance_ip(&id).await }).await
                };
                match result {
                    Ok(()) => {
                        crate::crash::point("switchover-sent");
                        let (reason, note) = if exchange {
                            ("SwitchingOver", "exchanging the source and target IPs")
                        } else {
                            ("RollingBack", "rolling the IP exchange back")
                        };
                        pass.event(EventType::Normal, reason, "Switchover", note.to_owned()).await;
                    }
                    Err(e) => problem = Some(dcs_problem(&e)),
                }
                requeue = Some(ctx.settings.tick);
                break;
            }
            Step::Restart => {
                let id = task_id_of(&remote);
                match account.restart(&id).await {
                    Ok(Outcome::Accepted) => {
                        crate::crash::point("restart-sent");
                        set_remote_status(&mut remote, TaskStatus::new("FULLMIGRATING"));
                    }
                    Ok(Outcome::Gone) => remote = Remote::Absent,
                    Ok(Outcome::WrongState(message) | Outcome::Failed(message)) => {
                        problem = Some(Problem::Transient(format!("restarting task {id}: {message}")))
                    }
                    Err(e) => problem = Some(dcs_problem(&e)),
                }
            }
        }
    }

    let progress = match (&remote, &problem) {
        (Remote::Present(task), None) => account.stats(&task.task_id).map(|s| progress_of(&s)),
        _ => None,
    };
    if let Some(p) = &problem {
        warn_event(&pass, p).await;
    }
    pass.report(&remote, problem.as_ref(), progress, handled).await?;

    if let Some(Problem::Transient(message)) = problem {
        return Err(Error::Transient(message));
    }
    // Ended (or gone): the account loop stops looking; the resync looks again.
    if matches!(pass.written.phase, Some(Phase::Succeeded | Phase::Failed | Phase::Terminated))
        && let Some(id) = known_task_id(&pass.rm.spec, &pass.written)
    {
        account.unwatch(id);
    }
    Ok(Action::requeue(requeue.unwrap_or_else(|| next_requeue(&pass, problem.as_ref()))))
}

/// Reports a problem that stops progress until something changes (a Secret or the spec).
async fn stalled(mut pass: Pass<'_>, problem: Problem, handled: Option<&str>) -> Result<Action, Error> {
    warn_event(&pass, &problem).await;
    pass.report(&Remote::NotLookedUp, Some(&problem), None, handled).await?;
    if let Problem::Transient(message) = problem {
        return Err(Error::Transient(message));
    }
    Ok(Action::requeue(pass.ctx.settings.stalled_retry))
}

async fn warn_event(pass: &Pass<'_>, problem: &Problem) {
    let (reason, message) = match problem {
        Problem::Transient(m) => ("ApiError", m),
        Problem::CredentialsRejected(m) => ("CredentialsRejected", m),
        Problem::PermissionDenied(m) => ("PermissionDenied", m),
        Problem::CredentialsMissing(m) => ("CredentialsMissing", m),
        Problem::InvalidSpec(m) => ("InvalidSpec", m),
    };
    let already =
        pass.written.conditions.iter().any(|c| c.type_ == "Synced" && c.status == "False" && &c.message == message);
    if !already {
        pass.event(EventType::Warning, reason, "Reconcile", message.clone()).await;
    }
}

/// Requeue after a successful pass: the account's loop wakes the resource on any remote change,
/// so this is a safety net (or the time until the progress deadline).
fn next_requeue(pass: &Pass<'_>, problem: Option<&Problem>) -> Duration {
    let settings = &pass.ctx.settings;
    if problem.is_some() {
        return settings.stalled_retry;
    }
    match pass.written.phase {
        // Spread over +20 % so that resources that ended together do not resync together.
        Some(Phase::Succeeded | Phase::Failed | Phase::Terminated | Phase::Paused) => {
            settings.resync.mul_f64(rand::random_range(1.0..1.2))
        }
        _ => settings.active_resync,
    }
}

/// What the task's detail says about a switch-over.
fn switch_view(task: &MigrationTask) -> SwitchView {
    let exchanging = [
        task.task_status.as_deref(),
        task.source_instance.as_ref().and_then(|i| i.task_status.as_deref()),
        task.target_instance.as_ref().and_then(|i| i.task_status.as_deref()),
    ]
    .into_iter()
    .any(|s| s == Some("EXCHANGING"));
    SwitchView {
        exchanging,
        source_ip: task.source_instance.as_ref().and_then(|i| i.ip.clone()),
        target_ip: task.target_instance.as_ref().and_then(|i| i.ip.clone()),
    }
}

/// Tells the account what an action just did, so a stale observation cannot repeat it.
fn record(account: &Account, remote: &Remote, pass: &Pass<'_>) {
    if let Remote::Present(task) = remote {
        account.record(task, pass.owner());
    }
}

fn task_id_of(remote: &Remote) -> String {
    match remote {
        Remote::Present(t) => t.task_id.clone(),
        _ => String::new(),
    }
}

fn set_remote_status(remote: &mut Remote, word: TaskStatus) {
    if let Remote::Present(t) = remote
        && !word.word().is_empty()
    {
        t.status = word;
    }
}

fn wire_resume_mode(mode: ResumeMode) -> crate::dcs::model::ResumeMode {
    match mode {
        ResumeMode::Auto => crate::dcs::model::ResumeMode::Auto,
        ResumeMode::Manual => crate::dcs::model::ResumeMode::Manual,
    }
}

fn resume_word(mode: ResumeMode) -> &'static str {
    match mode {
        ResumeMode::Auto => "auto",
        ResumeMode::Manual => "manual",
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
    }
}

/// Creates the remote task; answers its id. Passwords are read from their Secrets just now.
async fn create(pass: &Pass<'_>, account: &Account) -> Result<String, DcsError> {
    let spec = &pass.rm.spec;
    match spec.migration_type {
        MigrationType::BackupImport => {
            let import = spec
                .backup_import
                .as_ref()
                .ok_or_else(|| DcsError::InvalidRequest("spec.backupImport is missing".into()))?;
            let target_password = match &spec.target.password_secret_ref {
                Some(r) => Some(
                    credentials::password(r, &pass.namespace, &pass.secrets)
                        .await
                        .map_err(|e| DcsError::InvalidRequest(e.to_string()))?,
                ),
                None => None,
            };
            let body = CreateMigrationTaskBody {
                task_name: pass.task_name.clone(),
                description: spec.description.clone(),
                migration_type: MIGRATION_TYPE_BACKUP_IMPORT.to_owned(),
                migration_method: MigrationMethod::Full,
                backup_files: BackupFilesBody {
                    file_source: Some(
                        match import.source {
                            BackupSource::ObsBucket => "self_build_obs",
                            BackupSource::BackupRecord => "backup_record",
                        }
                        .to_owned(),
                    ),
                    bucket_name: import.bucket.clone(),
                    files: import
                        .files
                        .iter()
                        .map(|f| BackupFile {
                            file_name: Some(f.name.clone()),
                            size: f.size.clone(),
                            update_at: f.updated_at.clone(),
                        })
                        .collect(),
                    backup_id: import.backup_id.clone(),
                },
                target_instance: TargetInstanceBody {
                    id: spec.target.instance_id.clone().unwrap_or_default(),
                    password: target_password,
                },
            };
            let accepted = account.call(|c| async move { c.create_migration_task(&body).await }).await?;
            accepted.id.ok_or_else(|| DcsError::Decode {
                operation: crate::dcs::Operation::CreateMigrationTask,
                status: 200,
                detail: "the answer has no task id".into(),
            })
        }
        MigrationType::Online => {
            let network = spec
                .online
                .as_ref()
                .and_then(|o| o.network.as_ref())
                .ok_or_else(|| DcsError::InvalidRequest("spec.online.network is missing".into()))?;
            let body = CreateOnlineMigrationTaskBody {
                name: pass.task_name.clone(),
                description: spec.description.clone(),
                vpc_id: network.vpc_id.clone(),
                subnet_id: network.subnet_id.clone(),
                security_group_id: network.security_group_id.clone(),
            };
            let created = account.call(|c| async move { c.create_online_migration_task(&body).await }).await?;
            created.instance_id.ok_or_else(|| DcsError::Decode {
                operation: crate::dcs::Operation::CreateOnlineMigrationTask,
                status: 200,
                detail: "the answer has no instance_id".into(),
            })
        }
    }
}

/// Why a configure did not report a new state.
enum Configure {
    /// It did not take effect: refused, not sent, or not buildable (a password Secret is missing).
    Refused(Problem),
    /// It may have taken effect: no readable answer (with the transient problem, if any), or
    /// DCS.4957 (the task no longer awaits configuration).
    Unknown(Option<Problem>),
}

/// Configures an online task that awaits configuration; answers the status word it reported.
async fn configure(pass: &Pass<'_>, account: &Account, remote: &Remote) -> Result<TaskStatus, Configure> {
    let spec = &pass.rm.spec;
    let Some(source) = &spec.source else {
        return Err(Configure::Refused(Problem::InvalidSpec(
            "the adopted task awaits configuration but spec.source is not set".into(),
        )));
    };
    let instance = |endpoint: &crate::crd::RedisEndpoint, password| ConfigMigrationInstanceBody {
        id: endpoint.instance_id.clone(),
        addrs: endpoint.address.clone(),
        password,
    };
    let read = |reference: Option<crate::crd::SecretKeyRef>| async move {
        match reference {
            Some(r) => credentials::password(&r, &pass.namespace, &pass.secrets)
                .await
                .map(Some)
                .map_err(|e| Configure::Refused(credential_problem(&e))),
            None => Ok(None),
        }
    };
    let source_password = read(source.password_secret_ref.clone()).await?;
    let target_password = read(spec.target.password_secret_ref.clone()).await?;
    let online = spec.online.as_ref();
    let body = SetOnlineMigrationTaskBody {
        migration_method: match spec.method {
            Method::Full => MigrationMethod::Full,
            Method::Incremental => MigrationMethod::Incremental,
        },
        resume_mode: wire_resume_mode(online.map(|o| o.resume_mode).unwrap_or_default()),
        bandwidth_limit_mb: online.and_then(|o| o.bandwidth_limit_mb).map(|b| b.to_string()),
        source_instance: instance(source, source_password),
        target_instance: instance(&spec.target, target_password),
    };
    let id = task_id_of(remote);
    match account.call(|c| async move { c.set_online_migration_task(&id, &body).await }).await {
        Ok(accepted) => Ok(accepted.status),
        Err(e) if e.code() == Some("DCS.4957") => Err(Configure::Unknown(None)),
        Err(e) if (e.is_transient() && !e.certainly_not_applied()) || matches!(e, DcsError::Decode { .. }) => {
            Err(Configure::Unknown(Some(dcs_problem(&e))))
        }
        Err(e) => Err(Configure::Refused(dcs_problem(&e))),
    }
}
