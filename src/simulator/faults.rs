//! Fault injection (`PUT /_sim/faults`): errors, throttling, dropped connections, lost replies and
//! latency, optionally limited to some operations.

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
    /// SDK operation names the faults apply to; absent: every operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<Vec<String>>,
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
}

impl Faults {
    /// Checks ranges and operation names.
    pub fn validate(&self) -> Result<(), FaultsError> {
        for (field, value) in [
            ("errorRate", self.error_rate),
            ("throttleRate", self.throttle_rate),
            ("dropRate", self.drop_rate),
            ("lostReplyRate", self.lost_reply_rate),
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
            && self.latency_ms == 0
    }

    fn applies_to(&self, operation: Operation) -> bool {
        self.operations
            .as_ref()
            .is_none_or(|ops| ops.iter().any(|name| name == operation.name()))
    }

    /// The delay and the fault (if any) for one call of `operation`.
    pub fn decide(&self, operation: Operation) -> (Duration, Option<Fault>) {
        if self.is_inactive() || !self.applies_to(operation) {
            return (Duration::ZERO, None);
        }
        let mut rng = rand::rng();
        let latency = Duration::from_millis(self.latency_ms);
        let fault = [
            (self.drop_rate, Fault::Drop),
            (self.throttle_rate, Fault::Throttle),
            (self.error_rate, Fault::Error),
            (self.lost_reply_rate, Fault::LostReply),
        ]
        .into_iter()
        .find(|(rate, _)| *rate > 0.0 && rng.random::<f64>() < *rate)
        .map(|(_, fault)| fault);
        (latency, fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_apply_only_to_the_listed_operations() {
        let faults = Faults {
            error_rate: 1.0,
            operations: Some(vec!["ShowMigrationTask".into()]),
            ..Faults::default()
        };
        assert_eq!(
            faults.decide(Operation::ShowMigrationTask).1,
            Some(Fault::Error)
        );
        assert_eq!(faults.decide(Operation::ListMigrationTask).1, None);
    }

    #[test]
    fn rates_outside_zero_to_one_and_unknown_operations_are_refused() {
        let bad = Faults {
            drop_rate: 1.5,
            ..Faults::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(FaultsError::RateOutOfRange {
                field: "dropRate",
                ..
            })
        ));
        let nan = Faults {
            error_rate: f64::NAN,
            ..Faults::default()
        };
        assert!(nan.validate().is_err());
        let unknown = Faults {
            operations: Some(vec!["Nope".into()]),
            ..Faults::default()
        };
        assert!(matches!(
            unknown.validate(),
            Err(FaultsError::UnknownOperation(_))
        ));
    }
}
