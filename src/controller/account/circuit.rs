//! The account's circuit (design.md §4). A 401: the real API locks an access key for 5 minutes
//! after more than 5 failed authentications in a row, so a refused key pauses every call of its
//! account, from 1 minute doubling up to 16, instead of being retried from every resource. An
//! endpoint that times out again and again pauses its account too (from 30 s doubling up to 5
//! minutes), so that one slow endpoint does not keep calls of other tenants waiting behind it.

use crate::dcs::{DcsClient, DcsError, ErrorClass};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const FIRST: Duration = Duration::from_secs(60);
const MAX: Duration = Duration::from_secs(16 * 60);
const FIRST_SLOW: Duration = Duration::from_secs(30);
const MAX_SLOW: Duration = Duration::from_secs(5 * 60);
/// Timeouts in a row that open the circuit.
const TIMEOUTS: u32 = 3;

#[derive(Debug)]
struct Open {
    until: Instant,
    next: Duration,
    error: DcsError,
}

/// Shared by every caller of one account: its reconciles, its observation loop, its batches.
#[derive(Debug, Default)]
pub struct Circuit {
    open: Mutex<Option<Open>>,
    /// Timeouts in a row since the last answer.
    timeouts: Mutex<u32>,
}

impl Circuit {
    /// Runs one API call through the circuit: while it is open, calls fail at once with the
    /// error that opened it.
    pub async fn call<T, F, Fut>(&self, client: &DcsClient, f: F) -> Result<T, DcsError>
    where
        F: FnOnce(DcsClient) -> Fut,
        Fut: Future<Output = Result<T, DcsError>>,
    {
        if let Some(error) = self.refusal(Instant::now()) {
            return Err(error);
        }
        let result = f(client.clone()).await;
        // Refused temporary credentials are not retried: the client's provider gets fresh ones.
        let error = result
            .as_ref()
            .err()
            .filter(|e| !(client.rotates_credentials() && e.class() == ErrorClass::Authentication));
        self.record(error, Instant::now());
        result
    }

    /// The error to answer with while the circuit is open at `now`.
    fn refusal(&self, now: Instant) -> Option<DcsError> {
        let open = self.open.lock().expect("circuit lock");
        open.as_ref().filter(|o| now < o.until).map(|o| o.error.clone())
    }

    /// A refused key opens (or reopens, for twice as long) the circuit, and so do timeouts in a
    /// row; an answer closes it.
    fn record(&self, error: Option<&DcsError>, now: Instant) {
        let mut timeouts = self.timeouts.lock().expect("circuit lock");
        *timeouts = if error.is_some_and(DcsError::is_timeout) { *timeouts + 1 } else { 0 };
        let mut open = self.open.lock().expect("circuit lock");
        let (first, max) = match error {
            Some(e) if e.class() == ErrorClass::Authentication => (FIRST, MAX),
            Some(e) if e.is_timeout() && *timeouts >= TIMEOUTS => (FIRST_SLOW, MAX_SLOW),
            Some(_) => return,
            None => {
                *open = None;
                return;
            }
        };
        let e = error.expect("an error opens the circuit");
        let wait = open.as_ref().map_or(first, |o| o.next.min(max));
        tracing::warn!(wait_s = wait.as_secs(), code = e.code(), error = %e, "pausing calls for this account");
        *open = Some(Open { until: now + wait, next: (wait * 2).min(max), error: e.clone() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcs::{ApiError, Operation};

    fn refused() -> DcsError {
        DcsError::Api {
            operation: Operation::ListMigrationTask,
            error: ApiError { status: 401, code: "APIGW.0301".into(), message: "m".into(), request_id: None },
        }
    }

    #[test]
    fn a_refused_key_opens_the_circuit_for_longer_each_time_and_a_success_closes_it() {
        let circuit = Circuit::default();
        let t0 = Instant::now();
        circuit.record(Some(&refused()), t0);
        assert!(circuit.refusal(t0 + Duration::from_secs(59)).is_some());
        assert!(circuit.refusal(t0 + Duration::from_secs(61)).is_none());
        circuit.record(Some(&refused()), t0 + Duration::from_secs(61));
        assert!(circuit.refusal(t0 + Duration::from_secs(61 + 119)).is_some(), "twice as long");
        circuit.record(None, t0 + Duration::from_secs(200));
        assert!(circuit.refusal(t0 + Duration::from_secs(200)).is_none());
    }

    #[test]
    fn other_errors_leave_the_circuit_as_it_is() {
        let circuit = Circuit::default();
        let t0 = Instant::now();
        let network = DcsError::Network { operation: Operation::ListMigrationTask, sent: false, detail: "x".into() };
        circuit.record(Some(&network), t0);
        assert!(circuit.refusal(t0).is_none());
    }

    #[test]
    fn timeouts_in_a_row_open_the_circuit_and_an_answer_resets_the_count() {
        let circuit = Circuit::default();
        let t0 = Instant::now();
        let slow =
            DcsError::Network { operation: Operation::ListMigrationTask, sent: true, detail: "timed out".into() };
        circuit.record(Some(&slow), t0);
        circuit.record(Some(&slow), t0);
        circuit.record(None, t0);
        circuit.record(Some(&slow), t0);
        assert!(circuit.refusal(t0).is_none(), "an answer in between resets the count");
        circuit.record(Some(&slow), t0);
        circuit.record(Some(&slow), t0);
        assert!(circuit.refusal(t0 + Duration::from_secs(29)).is_some());
        assert!(circuit.refusal(t0 + Duration::from_secs(31)).is_none());
    }
}
