//! Fault injection (`PUT /_sim/faults`): errors, throttling, dropped connections, lost replies,
//! latency, hostile answers (`garbageRate` with a `garbage` kind: a gateway's HTML 502, a 200
//! with wrong JSON types, a body larger than any client should buffer, truncated JSON) and
//! doomed effects (`switchFailRate`: an accepted exchange/rollback ends `EXCHANGE_FAILED` /
//! `ROLLBACK_FAILED`; `provisionFailRate`: a created online task's job ends `FAIL`), optionally
//! limited to some operations.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::routes::Operation;

/// The fault configuration, as `PUT /_sim/faults` takes it (every field optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Faults {
    /// Share of calls answered 500 `DCS.5000` (0–1).
    #[serde(default)]
    pub error_rate: f64,
    /// Share of calls answered 429 `APIGW.0308` (0–1).
    #[serde(default)]
    pub throttle_rate: f64,
    /// Share of calls whose connection is closed before the call takes effect (0–1).
    #[serde(default)]
    pub drop_rate: f64,
    /// Share of calls that take effect and then lose their reply (connection closed) (0–1).
    #[serde(default)]
    pub lost_reply_rate: f64,
    /// Delay added to every affected call, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// Share of calls answered with garbage of kind `garbage` (0–1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub garbage_rate: f64,
    /// The kind of garbage (default `mixed`: a kind drawn per call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub garbage: Option<Garbage>,
    /// Share of accepted exchange-ip / rollback-ip calls whose switch ends failed (0–1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub switch_fail_rate: f64,
    /// Share of CreateOnlineMigrationTask calls whose provisioning job ends `FAIL` (0–1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub provision_fail_rate: f64,
    /// SDK operation names the faults apply to; absent: every operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<Vec<String>>,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// Hostile or malformed answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Garbage {
    /// 502 with a gateway's HTML error page; the call has no effect.
    Html,
    /// The call takes effect; the answer is a 200 whose JSON has the wrong type in every field.
    WrongTypes,
    /// The call takes effect; the answer is a 200 with a 20 MiB body (beyond any sane client limit).
    Huge,
    /// The call takes effect; the answer is a 200 with JSON cut in the middle.
    Truncated,
    /// One of the above, drawn per call.
    Mixed,
}

impl Garbage {
    /// The concrete kinds `Mixed` draws from.
    pub const CONCRETE: [Garbage; 4] = [Garbage::Html, Garbage::WrongTypes, Garbage::Huge, Garbage::Truncated];

    /// True when the call takes effect before the garbage answer replaces its reply.
    pub fn applies_call(self) -> bool {
        !matches!(self, Garbage::Html)
    }
}

/// Why a fault configuration was refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FaultsError {
    #[error("{field} must be between 0 and 1, got {value}")]
    RateOutOfRange { field: &'static str, value: f64 },
    #[error("latencyMs must be at most 600000, got {0}")]
    LatencyTooLong(u64),
    #[error("unknown operation {0:?} (use the SDK operation names, e.g. ShowMigrationTask)")]
    UnknownOperation(String),
}

/// What happens to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Close the connection before the call takes effect.
    Drop,
    /// Answer 429 `APIGW.0308` without effect.
    Throttle,
    /// Answer 500 `DCS.5000` without effect.
    Error,
    /// Apply the call, then close the connection without a reply.
    LostReply,
    /// Answer garbage of a concrete kind (never `Mixed`).
    Garbage(Garbage),
}

impl Faults {
    /// Checks ranges and operation names.
    pub fn validate(&self) -> Result<(), FaultsError> {
        for (field, value) in [
            ("errorRate", self.error_rate),
            ("throttleRate", self.throttle_rate),
            ("dropRate", self.drop_rate),
            ("lostReplyRate", self.lost_reply_rate),
            ("garbageRate", self.garbage_rate),
            ("switchFailRate", self.switch_fail_rate),
            ("provisionFailRate", self.provision_fail_rate),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(FaultsError::RateOutOfRange { field, value });
            }
        }
        if self.latency_ms > 600_000 {
            return Err(FaultsError::LatencyTooLong(self.latency_ms));
        }
        for name in self.operations.iter().flatten() {
            if Operation::from_name(name).is_none() {
                return Err(FaultsError::UnknownOperation(name.clone()));
            }
        }
        Ok(())
    }

    /// True when no fault is configured.
    pub fn is_inactive(&self) -> bool {
        self.error_rate == 0.0
            && self.throttle_rate == 0.0
            && self.drop_rate == 0.0
            && self.lost_reply_rate == 0.0
            && self.garbage_rate == 0.0
            && self.latency_ms == 0
    }

    fn applies_to(&self, operation: Operation) -> bool {
        self.operations.as_ref().is_none_or(|ops| ops.iter().any(|name| name == operation.name()))
    }

    /// True when the switch-over or provisioning job this call of `operation` starts is to fail
    /// (drawn per call; false for every other operation).
    pub fn dooms(&self, operation: Operation) -> bool {
        let rate = match operation {
            Operation::ExchangeInstanceIp | Operation::RollbackExchangeInstanceIp => self.switch_fail_rate,
            Operation::CreateOnlineMigrationTask => self.provision_fail_rate,
            _ => 0.0,
        };
        rate > 0.0 && self.applies_to(operation) && rand::rng().random::<f64>() < rate
    }

    /// The delay and the fault (if any) for one call of `operation`.
    pub fn decide(&self, operation: Operation) -> (Duration, Option<Fault>) {
        if self.is_inactive() || !self.applies_to(operation) {
            return (Duration::ZERO, None);
        }
        let mut rng = rand::rng();
        let latency = Duration::from_millis(self.latency_ms);
        let garbage = match self.garbage.unwrap_or(Garbage::Mixed) {
            Garbage::Mixed => Garbage::CONCRETE[rng.random_range(0..Garbage::CONCRETE.len())],
            kind => kind,
        };
        let fault = [
            (self.drop_rate, Fault::Drop),
            (self.throttle_rate, Fault::Throttle),
            (self.error_rate, Fault::Error),
            (self.garbage_rate, Fault::Garbage(garbage)),
            (self.lost_reply_rate, Fault::LostReply),
        ]
        .into_iter()
        .find(|(rate, _)| *rate > 0.0 && rng.random::<f64>() < *rate)
        .map(|(_, fault)| fault);
        (latency, fault)
    }
}

/// Size of the [`Garbage::Huge`] body: 20 MiB, beyond every cap of the operator's client (4 MiB at most).
pub const HUGE_BODY_BYTES: usize = 20 * 1024 * 1024;

/// A gateway's error page, as nginx-based API gateways send it.
pub const HTML_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/// JSON where every field the migration-task answers use has the wrong type: objects where
/// scalars belong, scalars where lists and objects belong.
pub const WRONG_TYPES: &str = r#"{"count":{"n":1},"migration_tasks":"none","task_id":["x"],"task_name":{"a":1},"status":[1,2],"id":{"id":1},"name":[false],"instance_id":[true],"job_id":{"j":1},"migration_type":7,"migration_method":[],"error_message":{"e":1},"source_instance":"gone","target_instance":42,"migration_tasks_result":17,"result":{"r":[]},"src_ip":{"ip":1},"tgt_ip":[1]}"#;

/// A list answer cut in the middle of a task.
pub const TRUNCATED: &str = r#"{"count":2,"migration_tasks":[{"task_id":"0123456789abcdef0123456789abcdef","task_name":"rmig-cut","status":"MIGR"#;

/// The status, content type and body of a garbage answer.
pub fn garbage_answer(kind: Garbage) -> (u16, &'static str, bytes::Bytes) {
    static HUGE: std::sync::OnceLock<bytes::Bytes> = std::sync::OnceLock::new();
    match kind {
        Garbage::Html => (502, "text/html", bytes::Bytes::from_static(HTML_502.as_bytes())),
        Garbage::WrongTypes => {
            (200, "application/json;charset=UTF-8", bytes::Bytes::from_static(WRONG_TYPES.as_bytes()))
        }
        Garbage::Truncated => (200, "application/json;charset=UTF-8", bytes::Bytes::from_static(TRUNCATED.as_bytes())),
        Garbage::Huge | Garbage::Mixed => {
            let body = HUGE.get_or_init(|| {
                let mut v = Vec::with_capacity(HUGE_BODY_BYTES);
                v.extend_from_slice(br#"{"count":1,"padding":""#);
                v.resize(HUGE_BODY_BYTES - 2, b'a');
                v.extend_from_slice(br#""}"#);
                bytes::Bytes::from(v)
            });
            (200, "application/json;charset=UTF-8", body.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_apply_only_to_the_listed_operations() {
        let faults =
            Faults { error_rate: 1.0, operations: Some(vec!["ShowMigrationTask".into()]), ..Faults::default() };
        assert_eq!(faults.decide(Operation::ShowMigrationTask).1, Some(Fault::Error));
        assert_eq!(faults.decide(Operation::ListMigrationTask).1, None);
    }

    #[test]
    fn garbage_fields_are_optional_and_mixed_draws_a_concrete_kind() {
        let old: Faults = serde_json::from_str(r#"{"errorRate": 0.2, "latencyMs": 5}"#).unwrap();
        assert_eq!(old.garbage_rate, 0.0);
        assert_eq!(serde_json::to_value(&old).unwrap().get("garbageRate"), None, "old shape echoed unchanged");
        let faults: Faults = serde_json::from_str(r#"{"garbageRate": 1.0}"#).unwrap();
        for _ in 0..50 {
            match faults.decide(Operation::ListMigrationTask).1 {
                Some(Fault::Garbage(kind)) => assert_ne!(kind, Garbage::Mixed),
                other => panic!("{other:?}"),
            }
        }
        let html: Faults = serde_json::from_str(r#"{"garbageRate": 1.0, "garbage": "html"}"#).unwrap();
        assert_eq!(html.decide(Operation::ShowMigrationTask).1, Some(Fault::Garbage(Garbage::Html)));
        assert!(serde_json::from_str::<Faults>(r#"{"garbage": "poetry"}"#).is_err());
        assert!(Faults { garbage_rate: 2.0, ..Faults::default() }.validate().is_err());
    }

    #[test]
    fn doomed_effects_touch_only_switches_and_online_creation() {
        let faults: Faults = serde_json::from_str(r#"{"switchFailRate": 1.0, "provisionFailRate": 1.0}"#).unwrap();
        assert!(faults.dooms(Operation::ExchangeInstanceIp));
        assert!(faults.dooms(Operation::RollbackExchangeInstanceIp));
        assert!(faults.dooms(Operation::CreateOnlineMigrationTask));
        assert!(!faults.dooms(Operation::ShowMigrationTask));
        assert_eq!(faults.decide(Operation::ExchangeInstanceIp), (Duration::ZERO, None), "the call itself succeeds");
        let only_rollback = Faults {
            switch_fail_rate: 1.0,
            operations: Some(vec!["RollbackExchangeInstanceIp".into()]),
            ..Faults::default()
        };
        assert!(!only_rollback.dooms(Operation::ExchangeInstanceIp));
        assert!(only_rollback.dooms(Operation::RollbackExchangeInstanceIp));
        assert!(Faults { switch_fail_rate: -0.1, ..Faults::default() }.validate().is_err());
    }

    #[test]
    fn rates_outside_zero_to_one_and_unknown_operations_are_refused() {
        let bad = Faults { drop_rate: 1.5, ..Faults::default() };
        assert!(matches!(bad.validate(), Err(FaultsError::RateOutOfRange { field: "dropRate", .. })));
        let nan = Faults { error_rate: f64::NAN, ..Faults::default() };
        assert!(nan.validate().is_err());
        let unknown = Faults { operations: Some(vec!["Nope".into()]), ..Faults::default() };
        assert!(matches!(unknown.validate(), Err(FaultsError::UnknownOperation(_))));
    }
}
