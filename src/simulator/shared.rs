//! The simulator's state shared by every connection: tasks, the call log, faults, the
//! accepted credentials and the keyless identities. The server and the admin API both work on it.

use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use jiff::Timestamp;

use super::auth::Credentials;
use super::faults::Faults;
use super::handlers::lock;
use super::identity::Registry;
use super::routes::Operation;
use super::store::{CallLog, Caller, TaskStore};

/// State shared by every connection.
pub struct Shared {
    pub store: Mutex<TaskStore>,
    pub calls: Mutex<CallLog>,
    faults: RwLock<Faults>,
    credentials: RwLock<Arc<Credentials>>,
    pub project_id: String,
    /// Keyless identities: trust, issued temporary credentials, refusal counters.
    pub identity: Mutex<Registry>,
}

impl Shared {
    pub fn new(store: TaskStore, credentials: Credentials, project_id: String, identity: Registry) -> Self {
        Self {
            store: Mutex::new(store),
            calls: Mutex::new(CallLog::default()),
            faults: RwLock::new(Faults::default()),
            credentials: RwLock::new(Arc::new(credentials)),
            project_id,
            identity: Mutex::new(identity),
        }
    }

    pub fn faults(&self) -> RwLockReadGuard<'_, Faults> {
        self.faults.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.faults.write().unwrap_or_else(|p| p.into_inner()) = faults;
    }

    pub fn credentials(&self) -> Arc<Credentials> {
        self.credentials.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_credentials(&self, credentials: Credentials) {
        *self.credentials.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(credentials);
    }

    pub fn record(&self, operation: Operation, status: u16, received: Timestamp, caller: Option<Caller>) {
        lock(&self.calls).record_received(operation, status, received, Timestamp::now(), caller);
    }
}
