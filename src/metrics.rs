//! Prometheus metrics of `dcs-migration-operator run` (served on `--metrics-addr` at `/metrics`).
//!
//! Every label is bounded: results, SDK operation names, HTTP statuses and DCS/APIGW error codes,
//! phases. No object name, namespace, task id or anything read from a Secret is ever a label.
//!
//! | series | type | labels |
//! |---|---|---|
//! | `dcs_migration_reconcile_total` | counter | `result` = `success` \| `error` |
//! | `dcs_migration_reconcile_duration_seconds` | histogram | |
//! | `dcs_migration_dcs_calls_total` | counter | `operation` (SDK name), `code` (HTTP status on success; the `DCS.xxxx`/`APIGW.xxxx` code, else the HTTP status, on an error answer; `network` when no answer came; `other` for a code outside [`KNOWN_CODES`] or a malformed status) |
//! | `dcs_migration_dcs_retries_total` | counter | `operation` |
//! | `dcs_migration_resources` | gauge | `phase` (resources without a phase yet count as `Pending`) |
//! | `dcs_migration_resources_stalled` | gauge | |
//! | `dcs_migration_queue_depth` | gauge | |
//! | `dcs_migration_leader` | gauge | |
//!
//! The resource gauges are computed on each scrape from the controller's cache, so a standby
//! replica (which runs no controller) reports no `dcs_migration_resources` series and 0 stalled.

use crate::crd::{Phase, RedisMigration};
use crate::dcs::{CallObserver, Operation};
use kube::runtime::reflector::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// The content type of [`Metrics::encode`] (OpenMetrics text, which Prometheus scrapes natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The DCS and gateway error codes that may be `code` label values: those of `dcs-api.md` §6
/// (which include every code the client and the simulator act on or answer). Any other code an
/// endpoint sends is counted as `other`, so that no endpoint can grow the label set.
pub const KNOWN_CODES: [&str; 41] = [
    "DCS.1001",
    "DCS.1002",
    "DCS.1003",
    "DCS.1004",
    "DCS.2003",
    "DCS.2007",
    "DCS.3002",
    "DCS.3003",
    "DCS.4001",
    "DCS.4002",
    "DCS.4004",
    "DCS.4005",
    "DCS.4013",
    "DCS.4014",
    "DCS.4016",
    "DCS.4018",
    "DCS.4026",
    "DCS.4046",
    "DCS.4049",
    "DCS.4061",
    "DCS.4062",
    "DCS.4063",
    "DCS.4068",
    "DCS.4070",
    "DCS.4080",
    "DCS.4133",
    "DCS.4800",
    "DCS.4842",
    "DCS.4855",
    "DCS.4911",
    "DCS.4957",
    "DCS.5000",
    "DCS.5001",
    "DCS.5006",
    "APIGW.0101",
    "APIGW.0201",
    "APIGW.0301",
    "APIGW.0303",
    "APIGW.0308",
    "111400063",
    "111404022",
];

/// The `code` label of an exchange's outcome: an HTTP status (100–599), a known code, `network`,
/// else `other`.
fn code_label(code: &str) -> String {
    let http_status = code.len() == 3 && code.parse::<u16>().is_ok_and(|s| (100..600).contains(&s));
    if http_status || code == "network" || KNOWN_CODES.contains(&code) { code.to_owned() } else { "other".to_owned() }
}

/// Every phase, so that each appears (with 0) once the controller runs.
const PHASES: [Phase; 11] = [
    Phase::Pending,
    Phase::Creating,
    Phase::Provisioning,
    Phase::AwaitingConfiguration,
    Phase::FullMigrating,
    Phase::IncrementalMigrating,
    Phase::Succeeded,
    Phase::Failed,
    Phase::Terminating,
    Phase::Terminated,
    Phase::Paused,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    operation: &'static str,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

/// The operator's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    reconcile_duration: Histogram,
    dcs_calls: Family<CallLabels, Counter>,
    dcs_retries: Family<OperationLabels, Counter>,
    resources: Family<PhaseLabels, Gauge>,
    stalled: Gauge,
    queue_depth: Gauge,
    leader: Gauge,
    in_flight: AtomicI64,
    backlog: AtomicI64,
    store: Mutex<Option<Store<RedisMigration>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All series, registered and at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconciles = Family::<ResultLabels, Counter>::default();
        let reconcile_duration =
            Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]);
        let dcs_calls = Family::<CallLabels, Counter>::default();
        let dcs_retries = Family::<OperationLabels, Counter>::default();
        let resources = Family::<PhaseLabels, Gauge>::default();
        let (stalled, queue_depth, leader) = (Gauge::default(), Gauge::default(), Gauge::default());
        registry.register("dcs_migration_reconcile", "Reconciles of RedisMigrations, by result", reconciles.clone());
        registry.register(
            "dcs_migration_reconcile_duration_seconds",
            "Duration of one reconcile of a RedisMigration",
            reconcile_duration.clone(),
        );
        registry.register(
            "dcs_migration_dcs_calls",
            "HTTP exchanges with the DCS API (every attempt, retries included), by SDK operation and HTTP status or DCS/APIGW error code",
            dcs_calls.clone(),
        );
        registry.register(
            "dcs_migration_dcs_retries",
            "DCS calls sent again after a transient failure (throttling, 5xx, network), by SDK operation",
            dcs_retries.clone(),
        );
        registry.register(
            "dcs_migration_resources",
            "RedisMigrations by status phase (leader only)",
            resources.clone(),
        );
        registry.register(
            "dcs_migration_resources_stalled",
            "RedisMigrations whose Stalled condition is True (leader only)",
            stalled.clone(),
        );
        registry.register(
            "dcs_migration_queue_depth",
            "Reconciles in flight plus wake-ups from the DCS observation loops not yet taken by the controller",
            queue_depth.clone(),
        );
        registry.register(
            "dcs_migration_leader",
            "1 while this replica runs the controller (holds the Lease, or leader election is off)",
            leader.clone(),
        );
        for result in ["success", "error"] {
            reconciles.get_or_create(&ResultLabels { result }).get();
        }
        Self {
            registry,
            reconciles,
            reconcile_duration,
            dcs_calls,
            dcs_retries,
            resources,
            stalled,
            queue_depth,
            leader,
            in_flight: AtomicI64::new(0),
            backlog: AtomicI64::new(0),
            store: Mutex::new(None),
        }
    }

    /// Records the end of one reconcile.
    pub fn reconciled(&self, success: bool, took: Duration) {
        let result = if success { "success" } else { "error" };
        self.reconciles.get_or_create(&ResultLabels { result }).inc();
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    /// Counts a reconcile in flight until the guard is dropped.
    pub fn reconcile_started(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Wake-ups from the observation loops waiting to be taken by the controller.
    pub fn set_backlog(&self, n: usize) {
        self.backlog.store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// Whether this replica runs the controller.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// The controller's cache, from which the resource gauges are computed on each scrape.
    pub fn watch_store(&self, store: Store<RedisMigration>) {
        *self.store.lock().expect("metrics store lock") = Some(store);
    }

    /// The registry in the OpenMetrics text format, with the gauges brought up to date.
    pub fn encode(&self) -> String {
        self.refresh_gauges();
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    fn refresh_gauges(&self) {
        let depth = self.in_flight.load(Ordering::Relaxed) + self.backlog.load(Ordering::Relaxed);
        self.queue_depth.set(depth.max(0));
        let Some(store) = self.store.lock().expect("metrics store lock").clone() else { return };
        let mut counts = [0i64; PHASES.len()];
        let mut stalled = 0;
        for rm in store.state() {
            let status = rm.status.as_ref();
            let phase = status.and_then(|s| s.phase).unwrap_or(Phase::Pending);
            if let Some(i) = PHASES.iter().position(|p| *p == phase) {
                counts[i] += 1;
            }
            if status.is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Stalled" && c.status == "True")) {
                stalled += 1;
            }
        }
        for (phase, n) in PHASES.iter().zip(counts) {
            self.resources.get_or_create(&PhaseLabels { phase: phase_name(*phase) }).set(n);
        }
        self.stalled.set(stalled);
    }
}

/// A reconcile in flight (see [`Metrics::reconcile_started`]).
pub struct InFlight<'m>(&'m Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl CallObserver for Metrics {
    fn exchanged(&self, operation: Operation, code: &str) {
        self.dcs_calls.get_or_create(&CallLabels { operation: operation.name(), code: code_label(code) }).inc();
    }

    fn retrying(&self, operation: Operation) {
        self.dcs_retries.get_or_create(&OperationLabels { operation: operation.name() }).inc();
    }
}

/// The phase as the status spells it.
fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Pending => "Pending",
        Phase::Creating => "Creating",
        Phase::Provisioning => "Provisioning",
        Phase::AwaitingConfiguration => "AwaitingConfiguration",
        Phase::FullMigrating => "FullMigrating",
        Phase::IncrementalMigrating => "IncrementalMigrating",
        Phase::Succeeded => "Succeeded",
        Phase::Failed => "Failed",
        Phase::Terminating => "Terminating",
        Phase::Terminated => "Terminated",
        Phase::Paused => "Paused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_series_is_exposed_with_its_labels() {
        let m = Metrics::new();
        m.reconciled(true, Duration::from_millis(30));
        m.exchanged(Operation::ShowMigrationTask, "200");
        m.exchanged(Operation::ShowMigrationTask, "APIGW.0308");
        m.retrying(Operation::ShowMigrationTask);
        m.set_leader(true);
        let text = m.encode();
        for line in [
            "dcs_migration_reconcile_total{result=\"success\"} 1",
            "dcs_migration_reconcile_total{result=\"error\"} 0",
            "dcs_migration_reconcile_duration_seconds_count 1",
            "dcs_migration_dcs_calls_total{operation=\"ShowMigrationTask\",code=\"200\"} 1",
            "dcs_migration_dcs_calls_total{operation=\"ShowMigrationTask\",code=\"APIGW.0308\"} 1",
            "dcs_migration_dcs_retries_total{operation=\"ShowMigrationTask\"} 1",
            "dcs_migration_resources_stalled 0",
            "dcs_migration_queue_depth 0",
            "dcs_migration_leader 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn only_statuses_and_known_error_codes_become_code_labels() {
        for code in ["200", "204", "429", "502", "DCS.4133", "APIGW.0308", "111400063", "network"] {
            assert_eq!(code_label(code), code);
        }
        for code in ["DCS.9999", "APIGW.0999", "DCS.4133x", "999", "20", "2000", "not a code", ""] {
            assert_eq!(code_label(code), "other", "{code:?}");
        }
        let m = Metrics::new();
        m.exchanged(Operation::ShowMigrationTask, "DCS.7777");
        assert!(
            m.encode()
                .lines()
                .any(|l| l == "dcs_migration_dcs_calls_total{operation=\"ShowMigrationTask\",code=\"other\"} 1")
        );
    }

    #[test]
    fn in_flight_reconciles_count_in_the_queue_depth_until_they_end() {
        let m = Metrics::new();
        let guard = m.reconcile_started();
        m.set_backlog(2);
        assert!(m.encode().lines().any(|l| l == "dcs_migration_queue_depth 3"));
        drop(guard);
        m.set_backlog(0);
        assert!(m.encode().lines().any(|l| l == "dcs_migration_queue_depth 0"));
    }

    #[test]
    fn phase_names_are_the_status_spelling() {
        for phase in PHASES {
            assert_eq!(serde_json::to_value(phase).unwrap(), phase_name(phase));
        }
    }
}
