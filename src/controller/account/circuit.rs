//! The account's 401 circuit (design.md §4): the real API locks an access key for 5 minutes after
//! more than 5 failed authentications in a row, so a refused key pauses every call of its
//! account, from 1 minute doubling up to 16, instead of being retried from every resource.

use crate::dcs::{DcsClient, DcsError, ErrorClass};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const FIRST: Duration = Duration::from_secs(60);
const MAX: Duration = Duration::from_secs(16 * 60);

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
        self.record(result.as_ref().err(), Instant::now());
        result
    }

    /// The error to answer with while the circuit is open at `now`.
    fn refusal(&self, now: Instant) -> Option<DcsError> {
        let open = self.open.lock().expect("circuit lock");
        open.as_ref().filter(|o| now < o.until).map(|o| o.error.clone())
    }

    /// A refused key opens (or reopens, for twice as long) the circuit; a success closes it.
    fn record(&self, error: Option<&DcsError>, now: Instant) {
        let mut open = self.open.lock().expect("circuit lock");
        match error {
            Some(e) if e.class() == ErrorClass::Authentication => {
                let wait = open.as_ref().map_or(FIRST, |o| o.next);
                tracing::warn!(
                    wait_s = wait.as_secs(),
                    code = e.code(),
                    "DCS refused the credentials; pausing calls for this account"
                );
                *open = Some(Open { until: now + wait, next: (wait * 2).min(MAX), error: e.clone() });
            }
            Some(_) => {}
            None => *open = None,
        }
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
}
