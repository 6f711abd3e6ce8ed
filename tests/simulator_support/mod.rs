//! Shared helpers of the `simulator_*` tests: an in-process simulator and a client that signs its
//! requests with `dcs::signer` exactly as the official SDK does. Real HTTP on loopback, no mocks.

#![allow(dead_code)]

use std::time::Duration;

use dcs_migration_operator::dcs::signer;
use dcs_migration_operator::simulator::{self, Config, RunningSimulator};
use serde_json::Value;

pub const AK: &str = "HPUATESTACCESSKEY";
pub const SK: &str = "TestSecretKey0123456789abcdefEXAMPLE000";
pub const PROJECT: &str = "0123456789abcdef0123456789abcdef";

/// A simulator with short phases.
pub fn start(phase: Duration) -> RunningSimulator {
    simulator::spawn(Config::new(AK, SK, PROJECT).with_phase(phase)).expect("simulator starts")
}

/// An answer: status, `X-Request-Id`, body bytes.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub request_id: Option<String>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn error_code(&self) -> String {
        self.json()["error_code"].as_str().unwrap_or_default().to_owned()
    }

    /// Asserts a well-formed error body of the API (DCS or gateway shape) and returns its code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "body: {}", String::from_utf8_lossy(&self.body));
        assert_well_formed_error(&self.json());
        assert_eq!(self.error_code(), code);
    }
}

/// `{"error_code": str, "error_msg": str, ("error_ext_msg": null | "request_id": str)}`.
pub fn assert_well_formed_error(body: &Value) {
    let obj = body.as_object().unwrap_or_else(|| panic!("error body is not an object: {body}"));
    assert!(obj.get("error_code").is_some_and(Value::is_string), "no error_code: {body}");
    assert!(obj.get("error_msg").is_some_and(Value::is_string), "no error_msg: {body}");
    assert!(
        obj.get("error_ext_msg").is_some_and(Value::is_null) || obj.get("request_id").is_some_and(Value::is_string),
        "neither error_ext_msg nor request_id: {body}"
    );
}

/// A client that signs like the SDK.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub access_key: String,
    pub secret_key: String,
    pub project: String,
    pub security_token: Option<String>,
    /// Overrides `X-Sdk-Date` (for stale-date tests).
    pub date: Option<jiff::Timestamp>,
    /// Sends these bytes instead of the signed body (for tamper tests).
    pub send_instead: Option<Vec<u8>>,
    http: reqwest::Client,
}

impl Client {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            access_key: AK.to_owned(),
            secret_key: SK.to_owned(),
            project: PROJECT.to_owned(),
            security_token: None,
            date: None,
            send_instead: None,
            http: reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client"),
        }
    }

    fn host(&self) -> String {
        self.base.trim_start_matches("http://").trim_end_matches('/').to_owned()
    }

    /// A signed call to `/v2/{project}{path}`.
    pub async fn call(&self, method: &str, path: &str, query: &[(&str, &str)], body: Option<&Value>) -> Answer {
        let bytes = body.map(|b| serde_json::to_vec(b).expect("json"));
        self.call_raw(method, &format!("/v2/{}{path}", self.project), query, bytes.as_deref()).await
    }

    /// A signed call with a raw path and raw body bytes.
    pub async fn call_raw(&self, method: &str, path: &str, query: &[(&str, &str)], body: Option<&[u8]>) -> Answer {
        self.try_call_raw(method, path, query, body).await.expect("request succeeds at the transport level")
    }

    /// A signed call to `/v2/{project}{path}` that may fail at the transport level.
    pub async fn try_call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer, reqwest::Error> {
        let bytes = body.map(|b| serde_json::to_vec(b).expect("json"));
        self.try_call_raw(method, &format!("/v2/{}{path}", self.project), &[], bytes.as_deref()).await
    }

    /// A signed call with a raw path and raw body bytes that may fail at the transport level.
    pub async fn try_call_raw(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Answer, reqwest::Error> {
        let query: Vec<(String, String)> = query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let query_string = signer::canonical_query(&query);
        let content_type = if body.is_some() { "application/json;charset=utf-8" } else { "application/json" };
        let mut headers = vec![
            ("Content-Type".to_owned(), content_type.to_owned()),
            ("Host".to_owned(), self.host()),
            ("User-Agent".to_owned(), "simulator-tests/1.0".to_owned()),
            ("X-Project-Id".to_owned(), self.project.clone()),
            (signer::DATE_HEADER.to_owned(), signer::format_sdk_date(self.date.unwrap_or_else(jiff::Timestamp::now))),
        ];
        if let Some(token) = &self.security_token {
            headers.push((signer::SECURITY_TOKEN_HEADER.to_owned(), token.clone()));
        }
        let signature = signer::sign(
            &signer::SignableRequest { method, path, query: &query, headers: &headers, body: body.unwrap_or_default() },
            &self.secret_key,
        );
        headers.push(("Authorization".to_owned(), signature.authorization(&self.access_key)));
        let url = if query_string.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{query_string}", self.base)
        };
        let mut req = self.http.request(method.parse().expect("method"), url);
        for (name, value) in headers.iter().filter(|(n, _)| n != "Host") {
            req = req.header(name.as_str(), value.as_str());
        }
        if let Some(body) = self.send_instead.as_deref().or(body) {
            req = req.body(body.to_vec());
        }
        Ok(answer(req.send().await?).await)
    }

    /// An unsigned request (admin API or garbage).
    pub async fn unsigned(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Answer {
        let mut req = self.http.request(method.parse().expect("method"), format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.body(body);
        }
        answer(req.send().await.expect("request succeeds at the transport level")).await
    }

    /// `GET /_sim/state`.
    pub async fn state(&self) -> Value {
        self.unsigned("GET", "/_sim/state", None).await.json()
    }

    /// `PUT /_sim/faults`.
    pub async fn set_faults(&self, faults: Value) {
        let a = self.unsigned("PUT", "/_sim/faults", Some(faults.to_string().into_bytes())).await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    }

    /// Creates a backup-import task and returns its id.
    pub async fn create_backup_import(&self, name: &str) -> String {
        let a = self.call("POST", "/migration-task", &[], Some(&backup_import_body(name))).await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        a.json()["id"].as_str().expect("id").to_owned()
    }

    /// Creates an online task and returns its id.
    pub async fn create_online(&self, name: &str) -> String {
        let body = serde_json::json!({"name": name, "vpc_id": "v", "subnet_id": "s", "security_group_id": "g"});
        let a = self.call("POST", "/migration/instance", &[], Some(&body)).await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        a.json()["instance_id"].as_str().expect("instance_id").to_owned()
    }

    /// The task's status word from ShowMigrationTask.
    pub async fn status(&self, id: &str) -> String {
        let a = self.call("GET", &format!("/migration-task/{id}"), &[], None).await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        a.json()["status"].as_str().unwrap_or_default().to_owned()
    }

    /// Polls until the task shows `wanted`.
    pub async fn wait_for(&self, id: &str, wanted: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let status = self.status(id).await;
            if status == wanted {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "task {id} stuck in {status}, wanted {wanted}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn answer(resp: reqwest::Response) -> Answer {
    let status = resp.status().as_u16();
    let request_id = resp.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    Answer { status, request_id, body }
}

/// A valid CreateMigrationTask body.
pub fn backup_import_body(name: &str) -> Value {
    serde_json::json!({
        "task_name": name,
        "migration_type": "backupfile_import",
        "migration_method": "full_amount_migration",
        "backup_files": {"file_source": "self_build_obs", "bucket_name": "bucket", "files": [{"file_name": "a.rdb"}]},
        "target_instance": {"id": "d2c8399f-bdba-43c1-8069-3ff17a1a79d5", "password": "pw"}
    })
}

/// A valid SetOnlineMigrationTask body.
pub fn configure_body(method: &str) -> Value {
    serde_json::json!({
        "migration_method": method,
        "resume_mode": "auto",
        "source_instance": {"addrs": "10.0.0.1:6379", "password": "src"},
        "target_instance": {"id": "inst-1", "password": "tgt"}
    })
}
