//! The simulated API's error answers: DCS errors (`{"error_code","error_msg","error_ext_msg"}`) and
//! API-gateway errors (`{"error_code","error_msg","request_id"}`), each with its HTTP status.

use hyper::StatusCode;
use serde_json::json;
use thiserror::Error;

/// Who answers an error: the DCS service behind the gateway, or the API gateway itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// DCS service errors (`DCS.xxxx`), body `{"error_code","error_msg","error_ext_msg":null}`.
    Dcs,
    /// API gateway errors (`APIGW.xxxx`), body `{"error_code","error_msg","request_id"}`.
    Gateway,
}

/// One error answer of the simulated API.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status of the answer.
    pub status: StatusCode,
    /// `error_code`, e.g. `DCS.4133` or `APIGW.0301`.
    pub code: &'static str,
    /// `error_msg`.
    pub message: String,
    /// Which body shape the answer uses.
    pub origin: ErrorSource,
}

impl ApiError {
    fn dcs(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), origin: ErrorSource::Dcs }
    }

    fn gateway(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), origin: ErrorSource::Gateway }
    }

    /// 400 `DCS.4133`: a well-formed task id that matches no task.
    pub fn task_not_found() -> Self {
        Self::dcs(StatusCode::BAD_REQUEST, "DCS.4133", "Instance job is not found.")
    }

    /// 400 `DCS.4957`: the task's state does not allow the operation.
    pub fn wrong_state() -> Self {
        Self::dcs(
            StatusCode::BAD_REQUEST,
            "DCS.4957",
            "This operation is not allowed when the task is in the current state.",
        )
    }

    /// 400 `DCS.4070`: a malformed task id in the path.
    pub fn invalid_task_id() -> Self {
        Self::dcs(StatusCode::BAD_REQUEST, "DCS.4070", "Invalid task ID format.")
    }

    /// 400 `DCS.4855`: a malformed task id in a batch call's body.
    pub fn invalid_batch_task_id() -> Self {
        Self::dcs(StatusCode::BAD_REQUEST, "DCS.4855", "invalid migration task id in the request.")
    }

    /// 400 `DCS.4800`: a batch call with too many (or no) ids.
    pub fn invalid_batch_size(param: &str) -> Self {
        Self::dcs(StatusCode::BAD_REQUEST, "DCS.4800", format!("Invalid {param} in the request."))
    }

    /// 400 `DCS.4004`: a required body is missing or empty.
    pub fn empty_body() -> Self {
        Self::dcs(StatusCode::BAD_REQUEST, "DCS.4004", "Empty request body.")
    }

    /// 400 `DCS.4005`: the body is not a JSON object.
    pub fn malformed_body() -> Self {
        Self::dcs(StatusCode::BAD_REQUEST, "DCS.4005", "Invalid request body, not a JSON object.")
    }

    /// 400 `DCS.4062`: a required parameter is missing (or null).
    pub fn missing_parameter(param: &str) -> Self {
        Self::dcs(StatusCode::BAD_REQUEST, "DCS.4062", format!("Invalid {param} parameter in the request."))
    }

    /// 400 `DCS.4063`: a parameter has the wrong type or a value outside its range or enum.
    pub fn invalid_parameter(param: &str) -> Self {
        Self::dcs(StatusCode::BAD_REQUEST, "DCS.4063", format!("Invalid {param} in the request."))
    }

    /// 401 `DCS.1004`: the project id in the path does not belong to the credentials.
    pub fn project_mismatch() -> Self {
        Self::dcs(StatusCode::UNAUTHORIZED, "DCS.1004", "Project ID does not match the token.")
    }

    /// 500 `DCS.5000`: an (injected) internal error.
    pub fn internal() -> Self {
        Self::dcs(StatusCode::INTERNAL_SERVER_ERROR, "DCS.5000", "Internal service error.")
    }

    /// 404 `APIGW.0101`: no API on this method and path.
    pub fn no_such_api() -> Self {
        Self::gateway(
            StatusCode::NOT_FOUND,
            "APIGW.0101",
            "The API does not exist or has not been published in the environment",
        )
    }

    /// 413 `APIGW.0201`: the request body exceeds the gateway's limit.
    pub fn body_too_large() -> Self {
        Self::gateway(StatusCode::PAYLOAD_TOO_LARGE, "APIGW.0201", "Request entity too large")
    }

    /// 401 `APIGW.0301`: missing or wrong signature, unknown access key.
    pub fn authentication(detail: &str) -> Self {
        Self::gateway(
            StatusCode::UNAUTHORIZED,
            "APIGW.0301",
            format!("Incorrect IAM authentication information: {detail}"),
        )
    }

    /// 401 `APIGW.0303`: `X-Sdk-Date` more than 15 minutes off.
    pub fn signature_expired() -> Self {
        Self::gateway(
            StatusCode::UNAUTHORIZED,
            "APIGW.0303",
            "Incorrect app authentication information: signature expired",
        )
    }

    /// 401 `APIGW.0307`: the temporary credential (its security token) has expired.
    pub fn token_expired() -> Self {
        Self::gateway(StatusCode::UNAUTHORIZED, "APIGW.0307", "The token must be updated: security token expired")
    }

    /// 429 `APIGW.0308`: (injected) throttling.
    pub fn throttled() -> Self {
        Self::gateway(
            StatusCode::TOO_MANY_REQUESTS,
            "APIGW.0308",
            "The throttling threshold has been reached: policy user over ratelimit,limit:50,time:1 second",
        )
    }

    /// The JSON body of this error, with the request id where the gateway includes it.
    pub fn body(&self, request_id: &str) -> Vec<u8> {
        let value = match self.origin {
            ErrorSource::Dcs => json!({
                "error_code": self.code,
                "error_msg": self.message,
                "error_ext_msg": null,
            }),
            ErrorSource::Gateway => json!({
                "error_code": self.code,
                "error_msg": self.message,
                "request_id": request_id,
            }),
        };
        value.to_string().into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dcs_errors_carry_a_null_ext_msg_and_gateway_errors_a_request_id() {
        let dcs: serde_json::Value = serde_json::from_slice(&ApiError::task_not_found().body("r1")).unwrap();
        assert_eq!(dcs["error_code"], "DCS.4133");
        assert!(dcs["error_ext_msg"].is_null());
        let gw: serde_json::Value = serde_json::from_slice(&ApiError::no_such_api().body("r1")).unwrap();
        assert_eq!(gw["request_id"], "r1");
    }
}
