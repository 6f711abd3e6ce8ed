//! The API server's audit log (design §7): the requests of the operator, and of the benchmark's peer, by user
//! agent.

use serde_json::Value;
use std::path::Path;

/// Whose request an audit entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agent {
    /// `dcs-migration-operator/<version>`.
    Ours,
    /// Kopf (`kopf/<version>`): the peer.
    Peer,
}

/// One request to the API server, as the audit log has it (watches counted once, when they start).
#[derive(Debug, Clone)]
pub struct Request {
    pub agent: Agent,
    pub at_ms: i64,
    pub verb: String,
    /// `resource` or `resource/subresource`.
    pub resource: String,
    /// `namespace/name` of the object, when the request names one.
    pub key: Option<String>,
    /// The HTTP status of the answer.
    pub code: u64,
}

impl Request {
    pub fn is_write(&self) -> bool {
        matches!(self.verb.as_str(), "create" | "update" | "patch" | "delete" | "deletecollection")
    }

    pub fn on_migration(&self) -> bool {
        self.resource == "redismigrations" || self.resource.starts_with("redismigrations/")
    }

    pub fn on_events(&self) -> bool {
        self.resource == "events"
    }

    pub fn label(&self) -> String {
        format!("{} {}", self.verb, self.resource)
    }
}

/// The operator's and the peer's requests in the audit log (others' are skipped).
pub fn read_audit(path: &Path) -> Vec<Request> {
    use std::io::BufRead;
    let Ok(file) = std::fs::File::open(path) else {
        eprintln!("no audit log at {}", path.display());
        return vec![];
    };
    let mut out = vec![];
    let mut reader = std::io::BufReader::new(file);
    let mut bytes = Vec::new();
    let (mut lines, mut unreadable) = (0usize, 0usize);
    // Byte lines, read lossily: one line that is not UTF-8 must not end the reading (`lines()` would stop there).
    while reader.read_until(b'\n', &mut bytes).is_ok_and(|n| n > 0) {
        let line = String::from_utf8_lossy(&bytes).into_owned();
        bytes.clear();
        lines += 1;
        // Cheap filter before parsing: most lines are the bench's or the API server's own.
        let agent = if line.contains("\"userAgent\":\"dcs-migration-operator/") {
            Agent::Ours
        } else if line.contains("\"userAgent\":\"kopf/") {
            Agent::Peer
        } else {
            continue;
        };
        let Ok(e) = serde_json::from_str::<Value>(&line) else {
            unreadable += 1;
            continue;
        };
        let verb = e["verb"].as_str().unwrap_or("?").to_owned();
        let stage = e["stage"].as_str().unwrap_or("");
        let counted = if verb == "watch" { stage == "ResponseStarted" } else { stage == "ResponseComplete" };
        if !counted {
            continue;
        }
        let Some(at_ms) = e["requestReceivedTimestamp"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| t.as_millisecond())
        else {
            continue;
        };
        let r = &e["objectRef"];
        let mut resource = r["resource"].as_str().unwrap_or("-").to_owned();
        if let Some(sub) = r["subresource"].as_str() {
            resource = format!("{resource}/{sub}");
        }
        let key = match (r["namespace"].as_str(), r["name"].as_str()) {
            (Some(ns), Some(name)) => Some(format!("{ns}/{name}")),
            _ => None,
        };
        let code = e["responseStatus"]["code"].as_u64().unwrap_or(0);
        out.push(Request { agent, at_ms, verb, resource, key, code });
    }
    eprintln!("audit log: {lines} lines read, {unreadable} of the operator or the peer not JSON");
    out
}
