//! Request routing: which of the 15 migration-task operations or ShowJobInfo (named as in the
//! official SDK), or which admin endpoint, a method and path address.

use hyper::Method;
use percent_encoding::percent_decode_str;

pub use crate::dcs::Operation;

/// A routed API call: the operation, the project id from the path and the task id (the job id of
/// ShowJobInfo), if the path carries one (percent-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRoute {
    pub operation: Operation,
    pub project_id: String,
    pub task_id: Option<String>,
}

/// The admin endpoints under `/_sim/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRoute {
    State,
    GetFaults,
    SetFaults,
    ClearFaults,
    Log,
    ForceTask(String),
    RemoveTask(String),
    /// Every task vanishes out of band (no tombstones): the state a restarted simulator has.
    RemoveAllTasks,
    Credentials,
    /// Replace the trust lists of the keyless identities.
    Trust,
}

/// The identity endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityRoute {
    IdToken,
    SecurityToken,
    AssumeWithOidc,
    MetadataToken,
    MetadataSecurityKey,
    PodIdentity,
}

impl IdentityRoute {
    /// The identity endpoint a method and (already split) path address, if any.
    pub fn of(method: &str, segments: &[&str]) -> Option<Self> {
        Some(match (method, segments) {
            ("POST", ["v3.0", "OS-AUTH", "id-token", "tokens"]) => Self::IdToken,
            ("POST", ["v3.0", "OS-CREDENTIAL", "securitytokens"]) => Self::SecurityToken,
            ("POST", ["v5", "agencies", "assume-with-oidc"]) => Self::AssumeWithOidc,
            ("PUT", ["meta-data", "latest", "api", "token"]) => Self::MetadataToken,
            ("GET", ["openstack", "latest", "securitykey"]) => Self::MetadataSecurityKey,
            ("POST", ["_sim", "pod-identity"]) => Self::PodIdentity,
            _ => return None,
        })
    }
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Api(ApiRoute),
    Admin(AdminRoute),
    /// A keyless-identity endpoint (IAM, STS, metadata, pod identity).
    Identity(IdentityRoute),
    /// Admin path with an unsupported method or unknown name, or any other unknown path.
    NotFound,
}

/// True for paths served by the admin API.
pub fn is_admin_path(path: &str) -> bool {
    path == "/_sim" || path.starts_with("/_sim/")
}

fn segments(path: &str) -> Vec<String> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    trimmed.split('/').map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned()).collect()
}

/// Routes a method and a raw (percent-encoded) path.
pub fn route(method: &Method, path: &str) -> Route {
    let segs = segments(path);
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    if let Some(identity) = IdentityRoute::of(method.as_str(), &s) {
        return Route::Identity(identity);
    }
    if s.first() == Some(&"_sim") && is_admin_path(path) {
        return admin_route(method, &s[1..]);
    }
    if s.len() < 3 || s[0] != "v2" || s[1].is_empty() {
        return Route::NotFound;
    }
    let project_id = s[1].to_owned();
    let rest = &s[2..];
    use Operation::*;
    let (operation, task_id) = match (method.as_str(), rest) {
        ("POST", ["migration-task"]) => (CreateMigrationTask, None),
        ("POST", ["migration", "instance"]) => (CreateOnlineMigrationTask, None),
        ("POST", ["migration", id, "task"]) => (SetOnlineMigrationTask, Some(*id)),
        ("GET", ["migration-tasks"]) => (ListMigrationTask, None),
        ("POST", ["migration-task", "batch-stop"]) => (BatchStopMigrationTasks, None),
        ("POST", ["migration-tasks", "batch-restart"]) => (BatchRestartOnlineMigrationTasks, None),
        ("DELETE", ["migration-tasks", "delete"]) => (DeleteMigrationTask, None),
        ("GET", ["migration-task", id]) => (ShowMigrationTask, Some(*id)),
        ("PUT", ["migration-task", id]) => (UpdateMigrationTask, Some(*id)),
        ("GET", ["migration-task", id, "stats"]) => (ShowMigrationTaskStats, Some(*id)),
        ("GET", ["migration-task", id, "logs"]) => (ListMigrationTaskLogs, Some(*id)),
        ("POST", ["migration-task", id, "stop"]) => (StopMigrationTask, Some(*id)),
        ("POST", ["migration-task", id, "sync-stop"]) => (StopMigrationTaskSync, Some(*id)),
        ("POST", ["migration-task", id, "exchange-ip"]) => (ExchangeInstanceIp, Some(*id)),
        ("POST", ["migration-task", id, "rollback-ip"]) => (RollbackExchangeInstanceIp, Some(*id)),
        ("GET", ["jobs", id]) => (ShowJobInfo, Some(*id)),
        _ => return Route::NotFound,
    };
    Route::Api(ApiRoute { operation, project_id, task_id: task_id.map(str::to_owned) })
}

fn admin_route(method: &Method, rest: &[&str]) -> Route {
    let admin = match (method.as_str(), rest) {
        ("GET", ["state"]) => AdminRoute::State,
        ("GET", ["faults"]) => AdminRoute::GetFaults,
        ("PUT", ["faults"]) => AdminRoute::SetFaults,
        ("DELETE", ["faults"]) => AdminRoute::ClearFaults,
        ("GET", ["log"]) => AdminRoute::Log,
        ("PUT", ["tasks", id]) => AdminRoute::ForceTask((*id).to_owned()),
        ("DELETE", ["tasks", id]) => AdminRoute::RemoveTask((*id).to_owned()),
        ("DELETE", ["tasks"]) => AdminRoute::RemoveAllTasks,
        ("PUT", ["credentials"]) => AdminRoute::Credentials,
        ("PUT", ["trust"]) => AdminRoute::Trust,
        _ => return Route::NotFound,
    };
    Route::Admin(admin)
}

/// True for a well-formed task id: 32 lower-case hex characters, or a lower-case UUID with dashes.
pub fn is_well_formed_task_id(id: &str) -> bool {
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if id.len() == 32 {
        return hex(id);
    }
    let parts: Vec<&str> = id.split('-').collect();
    parts.len() == 5 && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12]) && parts.iter().all(|p| hex(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_its_real_path() {
        let p = "/v2/pid";
        let id = "0123456789abcdef0123456789abcdef";
        let cases = [
            (Method::POST, format!("{p}/migration-task"), Operation::CreateMigrationTask),
            (Method::POST, format!("{p}/migration/instance"), Operation::CreateOnlineMigrationTask),
            (Method::POST, format!("{p}/migration/{id}/task"), Operation::SetOnlineMigrationTask),
            (Method::GET, format!("{p}/migration-task/{id}"), Operation::ShowMigrationTask),
            (Method::GET, format!("{p}/migration-task/{id}/stats"), Operation::ShowMigrationTaskStats),
            (Method::GET, format!("{p}/migration-tasks"), Operation::ListMigrationTask),
            (Method::GET, format!("{p}/migration-task/{id}/logs"), Operation::ListMigrationTaskLogs),
            (Method::POST, format!("{p}/migration-task/{id}/stop"), Operation::StopMigrationTask),
            (Method::POST, format!("{p}/migration-task/{id}/sync-stop"), Operation::StopMigrationTaskSync),
            (Method::POST, format!("{p}/migration-task/batch-stop"), Operation::BatchStopMigrationTasks),
            (Method::POST, format!("{p}/migration-tasks/batch-restart"), Operation::BatchRestartOnlineMigrationTasks),
            (Method::PUT, format!("{p}/migration-task/{id}"), Operation::UpdateMigrationTask),
            (Method::DELETE, format!("{p}/migration-tasks/delete"), Operation::DeleteMigrationTask),
            (Method::POST, format!("{p}/migration-task/{id}/exchange-ip"), Operation::ExchangeInstanceIp),
            (Method::POST, format!("{p}/migration-task/{id}/rollback-ip"), Operation::RollbackExchangeInstanceIp),
            (Method::GET, format!("{p}/jobs/{id}"), Operation::ShowJobInfo),
        ];
        for (method, path, op) in cases {
            match route(&method, &path) {
                Route::Api(r) => assert_eq!(r.operation, op, "{method} {path}"),
                other => panic!("{method} {path} routed to {other:?}"),
            }
        }
        assert_eq!(route(&Method::DELETE, &format!("{p}/migration-task/{id}")), Route::NotFound);
        assert_eq!(route(&Method::GET, "/v3/pid/migration-tasks"), Route::NotFound);
    }

    #[test]
    fn identity_endpoints_share_the_listener_with_the_api() {
        let cases = [
            (Method::POST, "/v3.0/OS-AUTH/id-token/tokens", IdentityRoute::IdToken),
            (Method::POST, "/v3.0/OS-CREDENTIAL/securitytokens", IdentityRoute::SecurityToken),
            (Method::POST, "/v5/agencies/assume-with-oidc", IdentityRoute::AssumeWithOidc),
            (Method::PUT, "/meta-data/latest/api/token", IdentityRoute::MetadataToken),
            (Method::GET, "/openstack/latest/securitykey", IdentityRoute::MetadataSecurityKey),
            (Method::POST, "/_sim/pod-identity", IdentityRoute::PodIdentity),
        ];
        for (method, path, wanted) in cases {
            assert_eq!(route(&method, path), Route::Identity(wanted), "{method} {path}");
        }
        assert_eq!(route(&Method::PUT, "/_sim/trust"), Route::Admin(AdminRoute::Trust));
        assert_eq!(route(&Method::GET, "/v5/agencies/assume-with-oidc"), Route::NotFound);
    }

    #[test]
    fn task_ids_are_32_hex_or_dashed_uuids() {
        assert!(is_well_formed_task_id("0123456789abcdef0123456789abcdef"));
        assert!(is_well_formed_task_id("90754308-a156-406f-a837-8f852f38a646"));
        assert!(!is_well_formed_task_id("0123456789ABCDEF0123456789abcdef"));
        assert!(!is_well_formed_task_id("batch-stop"));
        assert!(!is_well_formed_task_id(""));
    }

    #[test]
    fn operation_names_round_trip() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_name(op.name()), Some(op));
            assert_eq!(Operation::ALL[op.index()], op);
        }
    }
}
