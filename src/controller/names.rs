//! The fixed names the operator writes and reads on objects (design.md §1).

/// Finalizer that guarantees the remote task is handled before the resource goes.
pub const FINALIZER: &str = "dcs.migration.io/stop-remote-task";
/// `"true"`: no remote calls except deletion; status says Paused.
pub const ANNOTATION_PAUSED: &str = "dcs.migration.io/paused";
/// Any new value: reconcile now with a fresh observation (as Flux's `requestedAt`).
pub const ANNOTATION_RECONCILE_REQUESTED: &str = "dcs.migration.io/reconcile-requested-at";
/// Internal crash-safety mark: a create may have been sent (RFC 3339 time of the mark).
pub const ANNOTATION_CREATE_PENDING: &str = "dcs.migration.io/create-pending";
/// What the operator's annotations start with.
pub const ANNOTATION_PREFIX: &str = "dcs.migration.io/";
/// Server-side apply field manager.
pub const FIELD_MANAGER: &str = "dcs-migration-operator";
