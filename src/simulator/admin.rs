//! The unsigned admin API under `/_sim/` (design.md §6): state, faults, call log, forced task
//! statuses, out-of-band task removal, key rotation and trust lists.

use std::sync::Arc;

use hyper::StatusCode;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Credentials, query_pairs};
use super::faults::Faults;
use super::handlers::lock;
use super::lifecycle::Status;
use super::routes::AdminRoute;
use super::shared::Shared;
use super::trust::Trust;

/// An admin answer: status and JSON body (none for 204).
pub struct AdminReply {
    pub status: StatusCode,
    pub body: Option<Vec<u8>>,
}

fn ok(value: &Value) -> AdminReply {
    AdminReply { status: StatusCode::OK, body: Some(value.to_string().into_bytes()) }
}

fn fail(status: StatusCode, message: impl std::fmt::Display) -> AdminReply {
    let code = format!("SIM.{:04}", status.as_u16());
    AdminReply {
        status,
        body: Some(json!({"error_code": code, "error_msg": message.to_string()}).to_string().into_bytes()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ForceStatus {
    status: String,
    #[serde(default)]
    error_message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewCredentials {
    access_key: String,
    secret_key: String,
}

/// Serves one admin call.
pub fn handle(shared: &Arc<Shared>, route: &AdminRoute, raw_query: &str, body: &[u8], now: Timestamp) -> AdminReply {
    match route {
        AdminRoute::State => state(shared, now),
        AdminRoute::GetFaults => ok(&json!(*shared.faults())),
        AdminRoute::SetFaults => match serde_json::from_slice::<Faults>(body) {
            Err(e) => fail(StatusCode::BAD_REQUEST, format!("invalid faults: {e}")),
            Ok(faults) => match faults.validate() {
                Err(e) => fail(StatusCode::BAD_REQUEST, e),
                Ok(()) => {
                    let echo = json!(faults);
                    shared.set_faults(faults);
                    ok(&echo)
                }
            },
        },
        AdminRoute::ClearFaults => {
            shared.set_faults(Faults::default());
            ok(&json!(Faults::default()))
        }
        AdminRoute::Log => {
            let since = query_pairs(raw_query)
                .into_iter()
                .find(|(k, _)| k == "sinceMs")
                .and_then(|(_, v)| v.parse::<i64>().ok())
                .unwrap_or(i64::MIN);
            let calls = lock(&shared.calls);
            let records: Vec<_> = calls.records().filter(|r| r.at_ms >= since).collect();
            ok(&json!(records))
        }
        AdminRoute::ForceTask(id) => force_status(shared, id, body, now),
        AdminRoute::RemoveTask(id) => match lock(&shared.store).remove(id, false) {
            Some(_) => AdminReply { status: StatusCode::NO_CONTENT, body: None },
            None => fail(StatusCode::NOT_FOUND, format!("no task {id}")),
        },
        AdminRoute::RemoveAllTasks => {
            let removed = lock(&shared.store).clear();
            ok(&json!({"removed": removed}))
        }
        AdminRoute::Credentials => match serde_json::from_slice::<NewCredentials>(body) {
            Ok(c) if !c.access_key.is_empty() && !c.secret_key.is_empty() => {
                let access_key = c.access_key.clone();
                shared.set_credentials(Credentials { access_key: c.access_key, secret_key: c.secret_key });
                ok(&json!({"accessKey": access_key}))
            }
            Ok(_) => fail(StatusCode::BAD_REQUEST, "accessKey and secretKey must not be empty"),
            Err(e) => fail(StatusCode::BAD_REQUEST, format!("invalid credentials: {e}")),
        },
        AdminRoute::Trust => match serde_json::from_slice::<Trust>(body) {
            Ok(trust) => {
                let echo = json!(trust);
                lock(&shared.identity).set_trust(trust);
                ok(&echo)
            }
            Err(e) => fail(StatusCode::BAD_REQUEST, format!("invalid trust: {e}")),
        },
    }
}

fn state(shared: &Arc<Shared>, now: Timestamp) -> AdminReply {
    let body = {
        let mut store = lock(&shared.store);
        let mut tasks = store.newest_first(now, |_| true);
        tasks.reverse();
        let switchovers: serde_json::Map<String, Value> = tasks
            .iter()
            .filter(|t| t.switchover.exchanges + t.switchover.rollbacks > 0)
            .map(|t| (t.id.clone(), json!(t.switchover)))
            .collect();
        let views: Vec<Value> = tasks.iter().map(|t| json!(t.show_view())).collect();
        let calls = lock(&shared.calls).counts();
        let identity = lock(&shared.identity);
        json!({
            "tasks": views,
            "calls": calls,
            "switchovers": switchovers,
            "identities": identity.identities(),
            "refusals": identity.refusals(),
        })
    };
    ok(&body)
}

fn force_status(shared: &Arc<Shared>, id: &str, body: &[u8], now: Timestamp) -> AdminReply {
    let force = match serde_json::from_slice::<ForceStatus>(body) {
        Ok(f) if !f.status.is_empty() => f,
        Ok(_) => return fail(StatusCode::BAD_REQUEST, "status must not be empty"),
        Err(e) => return fail(StatusCode::BAD_REQUEST, format!("invalid body: {e}")),
    };
    let mut store = lock(&shared.store);
    let timing = *store.timing();
    let Some(task) = store.get_mut(id, now) else {
        return fail(StatusCode::NOT_FOUND, format!("no task {id}"));
    };
    let status = Status::from_word(&force.status);
    if !matches!(status, Status::Migrating | Status::FullMigrating | Status::IncrMigrating) {
        task.freeze_progress(now, &timing);
    }
    task.error_message = force.error_message;
    task.enter(status, now);
    let message = match &task.error_message {
        Some(m) => format!("Status set to {}: {m}", force.status),
        None => format!("Status set to {}.", force.status),
    };
    let level = if force.status.contains("FAIL") || force.status == "ERROR" { "ERROR" } else { "INFO" };
    task.log(now, level, "MIGRATION_STATUS_CHANGED", &message);
    ok(&json!(task.show_view()))
}
