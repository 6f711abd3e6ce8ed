//! The condition vocabulary (design.md §3): condition types, their reasons and the problems a
//! pass can report, as enums. metav1 `Condition` stays on the wire; nothing outside this module
//! spells a type or a reason as a string.

use super::credentials::CredentialError;
use crate::crd::Condition;
use crate::dcs::{DcsError, ErrorClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use smol_str::SmolStr;
use std::fmt;

/// Condition types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionType {
    Ready,
    Synced,
    Reconciling,
    Stalled,
    SwitchedOver,
}

impl ConditionType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "Ready",
            Self::Synced => "Synced",
            Self::Reconciling => "Reconciling",
            Self::Stalled => "Stalled",
            Self::SwitchedOver => "SwitchedOver",
        }
    }
}

/// Condition reasons (CamelCase, as Kubernetes conventions want).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Creating,
    Configuring,
    Migrating,
    IncrementalSyncing,
    Succeeded,
    Stopping,
    StoppedByUser,
    Failed,
    StoppedRemotely,
    RemoteTaskGone,
    InvalidSpec,
    CredentialsMissing,
    CredentialsRejected,
    PermissionDenied,
    ProgressDeadlineExceeded,
    Deleting,
    UnknownRemoteStatus,
    Synced,
    ApiError,
    InProgress,
    Stable,
    SwitchedOver,
    Switching,
    RolledBack,
    SwitchFailed,
    SwitchUnconfirmed,
    Pending,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "Creating",
            Self::Configuring => "Configuring",
            Self::Migrating => "Migrating",
            Self::IncrementalSyncing => "IncrementalSyncing",
            Self::Succeeded => "Succeeded",
            Self::Stopping => "Stopping",
            Self::StoppedByUser => "StoppedByUser",
            Self::Failed => "Failed",
            Self::StoppedRemotely => "StoppedRemotely",
            Self::RemoteTaskGone => "RemoteTaskGone",
            Self::InvalidSpec => "InvalidSpec",
            Self::CredentialsMissing => "CredentialsMissing",
            Self::CredentialsRejected => "CredentialsRejected",
            Self::PermissionDenied => "PermissionDenied",
            Self::ProgressDeadlineExceeded => "ProgressDeadlineExceeded",
            Self::Deleting => "Deleting",
            Self::UnknownRemoteStatus => "UnknownRemoteStatus",
            Self::Synced => "Synced",
            Self::ApiError => "ApiError",
            Self::InProgress => "InProgress",
            Self::Stable => "Stable",
            Self::SwitchedOver => "SwitchedOver",
            Self::Switching => "Switching",
            Self::RolledBack => "RolledBack",
            Self::SwitchFailed => "SwitchFailed",
            Self::SwitchUnconfirmed => "SwitchUnconfirmed",
            Self::Pending => "Pending",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// True when `conditions` holds a condition of this type, status and reason (and, when given,
/// observed generation).
pub fn holds(conditions: &[Condition], type_: ConditionType, value: bool, reason: Reason) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == truth(value) && c.reason == reason.as_str())
}

/// The condition of this type when it has this status.
pub fn find_with(conditions: &[Condition], type_: ConditionType, value: bool) -> Option<&Condition> {
    find(conditions, type_).filter(|c| c.status == truth(value))
}

/// The condition of this type, if set.
pub fn find(conditions: &[Condition], type_: ConditionType) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == type_.as_str())
}

fn truth(value: bool) -> &'static str {
    if value { "True" } else { "False" }
}

/// Sets a condition, keeping `lastTransitionTime` unless the status flips.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: ConditionType,
    value: bool,
    reason: Reason,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    let status = SmolStr::new_static(truth(value));
    match conditions.iter_mut().find(|c| c.type_ == type_.as_str()) {
        Some(existing) => {
            if existing.status != status {
                existing.last_transition_time = now.clone();
            }
            existing.status = status;
            existing.reason = SmolStr::new_static(reason.as_str());
            existing.message = SmolStr::new(message);
            existing.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: SmolStr::new_static(type_.as_str()),
            status,
            reason: SmolStr::new_static(reason.as_str()),
            message: SmolStr::new(message),
            observed_generation: generation,
            last_transition_time: now.clone(),
        }),
    }
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
    /// A Secret, key or identity cannot be had, or no credentials are configured. Stalled.
    CredentialsMissing(String),
    /// The request was refused as invalid (4xx), or the spec cannot be acted on. Stalled.
    InvalidSpec(String),
}

impl Problem {
    /// Maps a DCS error; the message carries the DCS code, never a body.
    pub fn from_dcs(e: &DcsError) -> Self {
        let message = e.to_string();
        match e.class() {
            ErrorClass::Throttled | ErrorClass::Server | ErrorClass::Network | ErrorClass::Decode => {
                Self::Transient(message)
            }
            ErrorClass::Authentication => Self::CredentialsRejected(message),
            ErrorClass::Permission => Self::PermissionDenied(message),
            ErrorClass::NotFound | ErrorClass::BadRequest => Self::InvalidSpec(message),
            ErrorClass::NoCredentials => Self::CredentialsMissing(message),
        }
    }

    /// Maps a credentials error: whatever cannot be had is `CredentialsMissing`, for every kind
    /// of migration and every step that reads a Secret.
    pub fn from_credentials(e: &CredentialError) -> Self {
        match e {
            _ if e.is_transient() => Self::Transient(e.to_string()),
            CredentialError::InvalidEndpoint(_)
            | CredentialError::EndpointNotAllowed { .. }
            | CredentialError::InvalidIdentityEndpoint(_) => Self::InvalidSpec(e.to_string()),
            _ => Self::CredentialsMissing(e.to_string()),
        }
    }

    /// The reason this problem is reported with: on `Synced`, and on `Ready`/`Stalled` when it
    /// stalls the resource.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Transient(_) => Reason::ApiError,
            Self::CredentialsRejected(_) => Reason::CredentialsRejected,
            Self::PermissionDenied(_) => Reason::PermissionDenied,
            Self::CredentialsMissing(_) => Reason::CredentialsMissing,
            Self::InvalidSpec(_) => Reason::InvalidSpec,
        }
    }

    /// True when the problem holds the resource until something changes (a Secret, the spec);
    /// transient ones are retried with backoff.
    pub fn stalls(&self) -> bool {
        !matches!(self, Self::Transient(_))
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_set_from_the_vocabulary_allocates_nothing_of_its_own() {
        let mut conditions = Vec::new();
        let now = Time(jiff::Timestamp::UNIX_EPOCH);
        set(&mut conditions, ConditionType::Reconciling, false, Reason::ProgressDeadlineExceeded, "", Some(1), &now);
        set(&mut conditions, ConditionType::Ready, true, Reason::Succeeded, "the migration succeeded", Some(1), &now);
        for c in &conditions {
            let texts = [&c.type_, &c.status, &c.reason, &c.message];
            assert!(texts.iter().all(|t| !t.is_heap_allocated()), "{c:?}");
        }
    }

    #[test]
    fn a_missing_secret_is_a_credentials_problem_and_an_unreadable_one_is_transient() {
        let missing = CredentialError::SecretNotFound { namespace: "a".into(), name: "s".into() };
        assert_eq!(Problem::from_credentials(&missing).reason(), Reason::CredentialsMissing);
        let key = CredentialError::KeyMissing { namespace: "a".into(), name: "s".into(), key: "k".into() };
        assert_eq!(Problem::from_credentials(&key).reason(), Reason::CredentialsMissing);
        let unreadable = CredentialError::Unreadable { namespace: "a".into(), name: "s".into(), reason: "x".into() };
        assert!(!Problem::from_credentials(&unreadable).stalls());
    }

    #[test]
    fn setting_a_condition_keeps_its_transition_time_unless_it_flips() {
        let t0 = Time(jiff::Timestamp::UNIX_EPOCH);
        let t1 = Time(jiff::Timestamp::from_second(60).unwrap());
        let mut conditions = Vec::new();
        set(&mut conditions, ConditionType::Ready, false, Reason::Creating, "a", Some(1), &t0);
        set(&mut conditions, ConditionType::Ready, false, Reason::Migrating, "b", Some(1), &t1);
        assert_eq!(conditions[0].last_transition_time, t0);
        assert!(holds(&conditions, ConditionType::Ready, false, Reason::Migrating));
        set(&mut conditions, ConditionType::Ready, true, Reason::Succeeded, "", Some(1), &t1);
        assert_eq!(conditions[0].last_transition_time, t1);
    }
}
