//! Errors of the DCS client: the API's own error bodies (DCS, API gateway and legacy shapes),
//! refused redirects, network failures and undecodable answers, classified for the retry policy
//! and the controller. No variant holds a request or response body; the bounded text kept from an
//! answer is scrubbed of every secret the request carried (see [`super::scrub`]).

use super::operation::Operation;
use super::scrub::Scrubber;
use serde_json::Value;

/// What kind of failure an error is; decides retries and how the controller reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The task does not exist (`DCS.4133`, an HTTP 400).
    NotFound,
    /// The request was refused as invalid (other 4xx); retrying the same request cannot help.
    BadRequest,
    /// The credentials were refused (401, `APIGW.0301`, `APIGW.0303`).
    Authentication,
    /// The credentials lack a permission (403).
    Permission,
    /// Throttled (429, `APIGW.0308`).
    Throttled,
    /// The service failed (5xx).
    Server,
    /// No answer: connection refused/reset, timeout, or the reply was lost.
    Network,
    /// An answer came but could not be understood.
    Decode,
    /// Not sent: no credentials could be had (a keyless identity's exchange was refused or failed).
    NoCredentials,
}

impl ErrorClass {
    /// Stable lower-case name, used in metrics labels and condition reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::BadRequest => "bad_request",
            Self::Authentication => "authentication",
            Self::Permission => "permission",
            Self::Throttled => "throttled",
            Self::Server => "server",
            Self::Network => "network",
            Self::Decode => "decode",
            Self::NoCredentials => "no_credentials",
        }
    }
}

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// `error_code`, e.g. `DCS.4133` or `APIGW.0301` (the HTTP status when the body had none).
    pub code: String,
    /// `error_msg` (at most [`MAX_MESSAGE`] bytes kept).
    pub message: String,
    /// The `X-Request-Id` header (or the gateway body's `request_id`), for support tickets.
    pub request_id: Option<String>,
}

/// An error of one DCS call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DcsError {
    /// The API answered with an error status.
    #[error("{operation} failed: {code} {message} (HTTP {status}{})", request_id_suffix(.error.request_id.as_deref()), code = .error.code, message = .error.message, status = .error.status)]
    Api { operation: Operation, error: ApiError },
    /// No usable answer arrived. `sent` tells whether the request may have reached the service.
    #[error("{operation} failed: network error{}: {detail}", if *.sent { " after the request was sent" } else { "" })]
    Network { operation: Operation, sent: bool, detail: String },
    /// The endpoint answered a redirect. Redirects are never followed: the request carried
    /// credentials, and nothing may be sent to wherever `Location` points.
    #[error("{operation} failed: the endpoint answered HTTP {status} (redirects are not followed)")]
    Redirected { operation: Operation, status: u16 },
    /// An answer arrived that is not the documented JSON.
    #[error("{operation} failed: cannot decode the HTTP {status} answer: {detail}")]
    Decode { operation: Operation, status: u16, detail: String },
    /// Not sent: the account already has this many calls in flight (a slow endpoint).
    #[error("not sent: {in_flight} calls to this endpoint are already waiting for an answer")]
    Busy { in_flight: usize },
    /// A list walk found more pages than an account may have.
    #[error("ListMigrationTask failed: the project lists more than {pages} pages of tasks")]
    TooManyTasks { pages: u32 },
    /// The request could not be built (bad endpoint, bad argument).
    #[error("invalid DCS request: {0}")]
    InvalidRequest(String),
    /// Not sent: the client's credential provider has none (its exchange was refused or failed).
    #[error("not sent: no credentials: {message}")]
    NoCredentials { message: String },
}

fn request_id_suffix(id: Option<&str>) -> String {
    id.map(|id| format!(", request id {id}")).unwrap_or_default()
}

impl DcsError {
    /// The class of this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Api { error, .. } => classify(error.status, &error.code),
            Self::Redirected { .. } => ErrorClass::BadRequest,
            Self::Network { .. } => ErrorClass::Network,
            Self::Busy { .. } => ErrorClass::Throttled,
            Self::TooManyTasks { .. } => ErrorClass::Server,
            Self::Decode { .. } => ErrorClass::Decode,
            Self::InvalidRequest(_) => ErrorClass::BadRequest,
            Self::NoCredentials { .. } => ErrorClass::NoCredentials,
        }
    }

    /// The DCS or gateway error code, when the API gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { error, .. } => Some(&error.code),
            _ => None,
        }
    }

    /// The HTTP status, when an answer arrived.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Api { error, .. } => Some(error.status),
            Self::Redirected { status, .. } | Self::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when the endpoint did not answer in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Network { detail, .. } if detail.starts_with("timed out"))
    }

    /// True when the task the call named does not exist.
    pub fn is_not_found(&self) -> bool {
        self.class() == ErrorClass::NotFound
    }

    /// True when retrying the same call later may succeed (throttling, 5xx, network).
    pub fn is_transient(&self) -> bool {
        matches!(self.class(), ErrorClass::Throttled | ErrorClass::Server | ErrorClass::Network)
    }

    /// True when the request certainly had no effect (it never left this process or was
    /// refused before reaching the service), so even a non-idempotent call may be sent again.
    pub fn certainly_not_applied(&self) -> bool {
        match self {
            Self::Network { sent, .. } => !sent,
            Self::Busy { .. } | Self::NoCredentials { .. } => true,
            Self::Api { error, .. } => {
                matches!(classify(error.status, &error.code), ErrorClass::Throttled | ErrorClass::Authentication)
            }
            _ => false,
        }
    }
}

/// Classifies an error answer by HTTP status and code (`dcs-api.md` §6).
pub fn classify(status: u16, code: &str) -> ErrorClass {
    match (status, code) {
        (_, "DCS.4133") => ErrorClass::NotFound,
        (429, _) | (_, "APIGW.0308") => ErrorClass::Throttled,
        (401, _) | (_, "APIGW.0301" | "APIGW.0303") => ErrorClass::Authentication,
        (403, _) => ErrorClass::Permission,
        (s, _) if s >= 500 => ErrorClass::Server,
        _ => ErrorClass::BadRequest,
    }
}

/// Most bytes of an error message kept from an answer (`dcs-api.md` §6 bounds `error_msg` to 1024).
pub const MAX_MESSAGE: usize = 1024;
/// Most bytes of an error code or request id kept from an answer.
const MAX_TOKEN: usize = 64;
/// Most bytes of a non-JSON error page read for its text.
const MAX_PAGE_SCAN: usize = 16 * 1024;

/// Parses an error body of any of the shapes the API uses — DCS `{"error_code","error_msg"}`,
/// gateway `{"error_code","error_msg","request_id"}`, `errorCode`/`errorMsg`, `code`/`message`,
/// legacy `{"error":{"code","message"}}` — falling back to the status and the text (for HTML
/// gateway pages, the text without markup). Every text kept is scrubbed with `scrubber` first,
/// then bounded (so that no cut can leave part of a secret).
pub fn parse_error_body(status: u16, body: &[u8], header_request_id: Option<&str>, scrubber: &Scrubber) -> ApiError {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let found = json.as_ref().and_then(find_code_and_message);
    let body_request_id = json.as_ref().and_then(|v| v.get("request_id")).and_then(Value::as_str);
    let bounded = |text: &str, max: usize| truncate(&scrubber.scrub(text), max);
    let (code, message) = match found {
        Some((code, message)) => (bounded(&code, MAX_TOKEN), bounded(&message, MAX_MESSAGE)),
        None => (status.to_string(), truncate(&plain_text(&scrubber.scrub(&lossy_prefix(body))), MAX_MESSAGE)),
    };
    ApiError {
        status,
        code,
        message,
        request_id: header_request_id.or(body_request_id).map(|id| bounded(id, MAX_TOKEN)),
    }
}

fn lossy_prefix(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(MAX_PAGE_SCAN)]).into_owned()
}

fn find_code_and_message(v: &Value) -> Option<(String, String)> {
    const KEYS: [(&str, &str); 3] = [("error_code", "error_msg"), ("errorCode", "errorMsg"), ("code", "message")];
    let obj = v.as_object()?;
    for (code_key, msg_key) in KEYS {
        if let Some(code) = obj.get(code_key).and_then(scalar_text) {
            let msg = obj.get(msg_key).and_then(scalar_text).unwrap_or_default();
            return Some((code, msg));
        }
    }
    obj.values().find_map(find_code_and_message)
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The readable text of a non-JSON body: markup dropped, whitespace collapsed.
fn plain_text(text: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dcs_body_is_parsed_and_missing_task_is_not_found() {
        let e = parse_error_body(
            400,
            br#"{"error_code":"DCS.4133","error_msg":"Instance job is not found."}"#,
            Some("rid"),
            &Scrubber::default(),
        );
        assert_eq!(e.code, "DCS.4133");
        assert_eq!(e.message, "Instance job is not found.");
        assert_eq!(e.request_id.as_deref(), Some("rid"));
        assert_eq!(classify(e.status, &e.code), ErrorClass::NotFound);
    }

    #[test]
    fn gateway_body_keeps_its_request_id() {
        let e = parse_error_body(
            401,
            br#"{"error_msg":"Incorrect IAM authentication information","error_code":"APIGW.0301","request_id":"abc"}"#,
            None,
            &Scrubber::default(),
        );
        assert_eq!(e.code, "APIGW.0301");
        assert_eq!(e.request_id.as_deref(), Some("abc"));
        assert_eq!(classify(e.status, &e.code), ErrorClass::Authentication);
    }

    #[test]
    fn legacy_nested_error_body_is_parsed() {
        let e = parse_error_body(
            400,
            br#"{"error":{"code":"111400063","message":"Invalid resume_mode parameter in the request."}}"#,
            None,
            &Scrubber::default(),
        );
        assert_eq!(e.code, "111400063");
        assert_eq!(e.message, "Invalid resume_mode parameter in the request.");
        assert_eq!(classify(e.status, &e.code), ErrorClass::BadRequest);
    }

    #[test]
    fn html_gateway_page_becomes_its_text() {
        let e =
            parse_error_body(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", None, &Scrubber::default());
        assert_eq!(e.code, "502");
        assert_eq!(e.message, "502 Bad Gateway");
        assert_eq!(classify(e.status, &e.code), ErrorClass::Server);
    }

    #[test]
    fn secrets_are_scrubbed_before_text_is_cut() {
        let secret = "S3cretPassw0rd";
        let scrubber = Scrubber::new([secret]);
        let message = format!("{}{secret}", "x".repeat(MAX_MESSAGE - 4));
        let body = serde_json::json!({"error_code": "DCS.4063", "error_msg": message, "request_id": secret});
        let e = parse_error_body(400, body.to_string().as_bytes(), None, &scrubber);
        assert_eq!(e.code, "DCS.4063");
        assert!(!format!("{e:?}").contains("S3cr"), "{e:?}");
        let page = format!("<html><body><pre>{{\"password\": \"{secret}\"}}</pre></body></html>");
        let e = parse_error_body(400, page.as_bytes(), Some(secret), &scrubber);
        assert!(!format!("{e:?}").contains(secret), "{e:?}");
        assert_eq!(e.request_id.as_deref(), Some("***"));
    }

    #[test]
    fn long_request_ids_are_bounded() {
        let id = "r".repeat(10_000);
        let e = parse_error_body(500, b"{}", Some(&id), &Scrubber::default());
        assert!(e.request_id.unwrap().len() <= MAX_TOKEN + 4);
    }

    #[test]
    fn classes_follow_status_and_code() {
        assert_eq!(classify(429, "APIGW.0308"), ErrorClass::Throttled);
        assert_eq!(classify(400, "APIGW.0308"), ErrorClass::Throttled);
        assert_eq!(classify(401, "APIGW.0303"), ErrorClass::Authentication);
        assert_eq!(classify(403, "DCS.2003"), ErrorClass::Permission);
        assert_eq!(classify(500, "DCS.5000"), ErrorClass::Server);
        assert_eq!(classify(400, "DCS.4957"), ErrorClass::BadRequest);
        assert_eq!(classify(404, "APIGW.0101"), ErrorClass::BadRequest);
    }

    #[test]
    fn display_names_operation_code_and_status() {
        let e = DcsError::Api {
            operation: Operation::ShowMigrationTask,
            error: parse_error_body(
                400,
                br#"{"error_code":"DCS.4133","error_msg":"Instance job is not found."}"#,
                None,
                &Scrubber::default(),
            ),
        };
        assert_eq!(e.to_string(), "ShowMigrationTask failed: DCS.4133 Instance job is not found. (HTTP 400)");
    }
}
