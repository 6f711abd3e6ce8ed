//! One reconcile's view of its resource and the Kubernetes writes it makes: finalizer and
//! annotation patches, status (server-side apply, only on change) and Events. Shared by the
//! desired-state path (`reconcile`) and the finalizer (`deletion`).

use super::account::Account;
use super::conditions::{ConditionType, Problem};
use super::context::Context;
use super::credentials::{self, AccountAccess};
use super::names::{ANNOTATION_CREATE_PENDING, ANNOTATION_PAUSED, FIELD_MANAGER, FINALIZER};
use super::naming::{self, default_task_name};
use super::observed::{Remote, RemoteTask};
use super::secret_cache::NamespaceSecrets;
use super::status::{self, Facts};
use crate::crd::{LastError, Phase, Progress, RedisMigration, RedisMigrationStatus, SwitchoverStatus};
use jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

use super::decision::CreateMark;

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

/// What a pass learnt, for the status it writes.
#[derive(Debug, Default)]
pub struct Report<'a> {
    pub remote: Option<&'a Remote>,
    pub problem: Option<&'a Problem>,
    pub progress: Option<Progress>,
    /// The `reconcile-requested-at` value this pass acted on.
    pub handled: Option<&'a str>,
    /// The switch-over record as it must be written (`None`: as it is).
    pub switch: Option<&'a SwitchoverStatus>,
    pub job_id: Option<&'a str>,
    pub last_error: Option<&'a LastError>,
}

/// The state of one reconcile: the object, its API, and the status as the server has it.
pub struct Pass<'c> {
    pub rm: Arc<RedisMigration>,
    pub ctx: &'c Context,
    pub api: Api<RedisMigration>,
    pub secrets: NamespaceSecrets<'c>,
    pub namespace: String,
    /// The status as last written (starts as the object's).
    pub written: RedisMigrationStatus,
    pub task_name: String,
}

impl<'c> Pass<'c> {
    pub fn new(rm: Arc<RedisMigration>, ctx: &'c Context) -> Result<Self, Error> {
        let namespace = rm.namespace().ok_or(Error::NotNamespaced)?;
        let task_name = rm.spec.task_name.clone().unwrap_or_else(|| {
            default_task_name(&namespace, &rm.name_any(), rm.metadata.uid.as_deref().unwrap_or_default())
        });
        Ok(Self {
            api: Api::namespaced(ctx.client.clone(), &namespace),
            secrets: NamespaceSecrets::new(ctx.client.clone(), &namespace, &ctx.guard.cache),
            written: ctx.written.current(&rm),
            rm,
            ctx,
            namespace,
            task_name,
        })
    }

    /// True when a task found by name may be adopted: the deterministic name carries a hash of
    /// this resource's UID; a name the user chose must also carry the UID marker that the
    /// operator writes into the description of the tasks it creates.
    pub fn owns(&self, task: &RemoteTask) -> bool {
        self.rm.spec.task_name.is_none()
            || naming::carries_marker(task.description.as_deref(), self.rm.metadata.uid.as_deref().unwrap_or_default())
    }

    /// The description sent on create: the user's, then this resource's UID marker.
    pub fn description(&self) -> String {
        naming::description_with_marker(
            self.rm.spec.description.as_deref(),
            self.rm.metadata.uid.as_deref().unwrap_or_default(),
        )
    }

    pub fn owner(&self) -> ObjectRef<RedisMigration> {
        ObjectRef::from_obj(&*self.rm)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.rm.metadata.annotations.as_ref().and_then(|a| a.get(key)).map(String::as_str)
    }

    pub fn paused(&self) -> bool {
        self.annotation(ANNOTATION_PAUSED) == Some("true")
    }

    /// True when status says the current phase began less than `within` ago.
    pub fn phase_entered_within(&self, within: Duration) -> bool {
        let entered = self.written.last_phase_transition_time.as_deref().and_then(|t| t.parse::<Timestamp>().ok());
        entered.is_some_and(|t| Timestamp::now().duration_since(t).unsigned_abs() < within)
    }

    pub fn has_finalizer(&self) -> bool {
        self.rm.finalizers().iter().any(|f| f == FINALIZER)
    }

    /// The `create-pending` mark's age, if set.
    pub fn create_mark(&self) -> CreateMark {
        match self.annotation(ANNOTATION_CREATE_PENDING) {
            None => CreateMark::None,
            // This process wrote it and sent no create since: no create can have gone out for it.
            Some(value) if self.ctx.written.mark_is_unsent(&self.rm, value) => CreateMark::JustWritten,
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
    pub async fn add_finalizer(&self) -> Result<(), Error> {
        let mut finalizers = self.rm.finalizers().to_vec();
        finalizers.push(FINALIZER.to_owned());
        let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": self.rm.resource_version()}});
        self.patch(&patch).await?;
        crate::crash::point("finalizer-added");
        Ok(())
    }

    /// A merge patch of the object's metadata; its version is remembered until the cache shows it.
    async fn patch(&self, patch: &serde_json::Value) -> Result<(), Error> {
        let updated = self.api.patch(&self.rm.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await?;
        self.ctx.written.wrote(&self.rm, &updated);
        Ok(())
    }

    /// Removes the finalizer: the resource may go.
    pub async fn remove_finalizer(&self) -> Result<(), Error> {
        let finalizers: Vec<&String> = self.rm.finalizers().iter().filter(|f| *f != FINALIZER).collect();
        let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": self.rm.resource_version()}});
        self.ctx.written.mark_spent(&self.rm);
        match self.api.patch(&self.rm.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the `create-pending` mark, conditional on the resourceVersion the pass started
    /// from (a stale view fails with 409 instead of acting twice). A new resource gets its
    /// finalizer in the same write: one write instead of two, still before any remote call.
    pub async fn mark_create_pending(&self) -> Result<(), Error> {
        let value = Timestamp::now().to_string();
        let mut metadata =
            json!({"annotations": {ANNOTATION_CREATE_PENDING: value}, "resourceVersion": self.rm.resource_version()});
        let adds_finalizer = !self.has_finalizer();
        if adds_finalizer {
            let mut finalizers = self.rm.finalizers().to_vec();
            finalizers.push(FINALIZER.to_owned());
            metadata["finalizers"] = json!(finalizers);
        }
        self.patch(&json!({"metadata": metadata})).await?;
        self.ctx.written.marked(&self.rm, &value);
        if adds_finalizer {
            crate::crash::point("finalizer-added");
        }
        crate::crash::point("create-marked");
        Ok(())
    }

    /// Clears the `create-pending` mark without a precondition (the pass already wrote the
    /// object).
    pub async fn clear_create_mark(&self) -> Result<(), Error> {
        let patch = json!({"metadata": {"annotations": {ANNOTATION_CREATE_PENDING: null}}});
        self.patch(&patch).await?;
        self.ctx.written.mark_spent(&self.rm);
        Ok(())
    }

    /// A create is about to go out: the mark's outcome is unknown from now on.
    pub fn create_goes_out(&self) {
        self.ctx.written.mark_spent(&self.rm);
    }

    /// Computes the status for what the pass learnt and writes it when it differs from what the
    /// server has.
    pub async fn report(&mut self, report: Report<'_>) -> Result<(), Error> {
        let status = status::compute(&Facts {
            spec: &self.rm.spec,
            generation: self.rm.metadata.generation,
            prior: &self.written,
            remote: report.remote.unwrap_or(&Remote::NotLookedUp),
            task_name: &self.task_name,
            creating: self.annotation(ANNOTATION_CREATE_PENDING).is_some(),
            paused: self.paused(),
            deleting: self.rm.metadata.deletion_timestamp.is_some(),
            switch: report.switch,
            progress: report.progress,
            progress_interval: self.ctx.settings.progress_update_interval,
            problem: report.problem,
            handled_request: report.handled,
            job_id: report.job_id,
            last_error: report.last_error,
            now: Timestamp::now(),
        });
        self.write_status(status).await
    }

    /// Writes `status` with server-side apply when it differs from what was last written;
    /// emits an Event when the phase changes.
    async fn write_status(&mut self, status: RedisMigrationStatus) -> Result<(), Error> {
        if status == self.written {
            return Ok(());
        }
        let old_phase = self.written.phase;
        let patch = json!({"apiVersion": "dcs.migration.io/v1alpha1", "kind": "RedisMigration", "status": status});
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match self.api.patch_status(&self.rm.name_any(), &params, &Patch::Apply(&patch)).await {
            Ok(updated) => self.ctx.written.wrote(&self.rm, &updated),
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        self.ctx.written.record(&self.rm, &status);
        crate::crash::point("status-written");
        if old_phase != status.phase
            && let Some(phase) = status.phase
        {
            self.phase_event(phase, &status).await;
        }
        self.written = status;
        Ok(())
    }

    async fn phase_event(&self, phase: Phase, status: &RedisMigrationStatus) {
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

    /// Publishes an Event; failures (e.g. a Terminating namespace refusing new objects) are
    /// logged, never fatal.
    pub async fn event(&self, type_: EventType, reason: &str, action: &str, note: String) {
        let event =
            Event { type_, reason: reason.to_owned(), note: Some(note), action: action.to_owned(), secondary: None };
        if let Err(e) = self.ctx.events.publish(&event, &self.rm.object_ref(&())).await {
            tracing::debug!(error = %e, "could not publish an Event");
        }
    }

    /// A Warning Event for a problem, unless status already reports the same one.
    pub async fn warn(&self, reason: &str, action: &str, problem: &Problem) {
        let message = problem.message();
        let already = super::conditions::find_with(&self.written.conditions, ConditionType::Synced, false)
            .is_some_and(|c| c.message == message);
        if !already {
            self.event(EventType::Warning, reason, action, message.to_owned()).await;
        }
    }

    /// Ends a pass whose look the account's loop makes: the loop wakes the resource when the look is in; the
    /// requeue only guards against a lost wake-up.
    pub fn until_woken(&self) -> Action {
        Action::requeue(self.ctx.settings.tick * 3)
    }

    /// When to look again at a resource held by `problem`: a Secret or spec change wakes it at once, but
    /// nothing in the cluster tells when a cloud-side trust (`spec.identity`) is granted or restored, so
    /// a refused identity is tried again after `identity_retry`.
    pub fn retry_after(&self, problem: &Problem) -> Duration {
        let settings = &self.ctx.settings;
        match problem {
            Problem::CredentialsMissing(_) | Problem::CredentialsRejected(_) if self.rm.spec.identity.is_some() => {
                settings.identity_retry.min(settings.stalled_retry)
            }
            _ => settings.stalled_retry,
        }
    }

    /// Resolves the account of this resource.
    pub async fn account(&self) -> Result<(AccountAccess, Arc<Account>), Problem> {
        let ctx = self.ctx;
        let access =
            credentials::resolve(&self.rm.spec, &self.namespace, &self.secrets, &ctx.defaults, &ctx.identities)
                .await
                .map_err(|e| Problem::from_credentials(&e))?;
        let account = self.ctx.accounts.get(&access).map_err(|e| Problem::InvalidSpec(e.to_string()))?;
        Ok((access, account))
    }
}
