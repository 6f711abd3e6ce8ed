//! Signature verification: SDK-HMAC-SHA256 (via [`crate::dcs::signer`]) for the configured key,
//! `X-Sdk-Date` freshness (15 minutes) and the project id.

use jiff::{SignedDuration, Timestamp};
use percent_encoding::percent_decode_str;

use super::error::ApiError;
use crate::dcs::signer::{self, AuthorizationHeader, SignableRequest};

/// How far `X-Sdk-Date` may be from the simulator's clock.
pub const MAX_CLOCK_SKEW: SignedDuration = SignedDuration::from_secs(15 * 60);

/// The access key the simulator accepts.
#[derive(Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("access_key", &self.access_key).field("secret_key", &"***").finish()
    }
}

/// Decodes a raw query string into `(key, value)` pairs as the signer canonicalises them.
pub fn query_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (
                percent_decode_str(k).decode_utf8_lossy().into_owned(),
                percent_decode_str(v).decode_utf8_lossy().into_owned(),
            )
        })
        .collect()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Accepts the request when it is signed by `credentials` within the allowed clock skew.
pub fn verify(req: &SignableRequest<'_>, credentials: &Credentials, now: Timestamp) -> Result<(), ApiError> {
    let Some(value) = header(req.headers, "Authorization") else {
        return Err(ApiError::authentication("Authorization not found in header"));
    };
    let Some(auth) = AuthorizationHeader::parse(value) else {
        return Err(ApiError::authentication("verify aksk signature fail, unsupported authorization header"));
    };
    if auth.access_key != credentials.access_key {
        return Err(ApiError::authentication(&format!(
            "Get secretKey failed,ak:{},err:ak not exist",
            auth.access_key.chars().take(64).collect::<String>()
        )));
    }
    let date = header(req.headers, signer::DATE_HEADER)
        .and_then(signer::parse_sdk_date)
        .ok_or_else(|| ApiError::authentication("verify aksk signature fail, X-Sdk-Date missing or malformed"))?;
    if now.duration_since(date).abs() > MAX_CLOCK_SKEW {
        return Err(ApiError::signature_expired());
    }
    let lower: Vec<String> = auth.signed_headers.iter().map(|h| h.to_ascii_lowercase()).collect();
    if !lower.iter().any(|h| h == "x-sdk-date") || !lower.iter().any(|h| h == "host") {
        return Err(ApiError::authentication("verify aksk signature fail, host and x-sdk-date must be signed"));
    }
    if !auth.verifies(req, &credentials.secret_key) {
        return Err(ApiError::authentication("verify aksk signature fail"));
    }
    Ok(())
}

/// Accepts the request when the path's project id (and `X-Project-Id`, if sent) is the configured one.
pub fn check_project(path_project: &str, headers: &[(String, String)], configured: &str) -> Result<(), ApiError> {
    if path_project != configured {
        return Err(ApiError::project_mismatch());
    }
    match header(headers, "X-Project-Id") {
        Some(p) if p.trim() != configured => Err(ApiError::project_mismatch()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_decode_percent_escapes_but_not_plus() {
        assert_eq!(
            query_pairs("limit=10&name=my%20task+%C3%BC&flag"),
            vec![("limit".into(), "10".into()), ("name".into(), "my task+ü".into()), ("flag".into(), "".into())]
        );
    }

    #[test]
    fn a_request_signed_with_the_configured_key_verifies_and_a_stale_one_does_not() {
        let creds = Credentials { access_key: "AK".into(), secret_key: "SK".into() };
        let now = Timestamp::from_second(1_732_609_800).unwrap();
        let mut headers = vec![
            ("Host".to_owned(), "127.0.0.1:1".to_owned()),
            ("X-Sdk-Date".to_owned(), signer::format_sdk_date(now)),
        ];
        let sig = signer::sign(
            &SignableRequest { method: "GET", path: "/v2/p/migration-tasks", query: &[], headers: &headers, body: b"" },
            "SK",
        );
        headers.push(("Authorization".to_owned(), sig.authorization("AK")));
        let req =
            SignableRequest { method: "GET", path: "/v2/p/migration-tasks", query: &[], headers: &headers, body: b"" };
        assert_eq!(verify(&req, &creds, now), Ok(()));
        let later = now.checked_add(SignedDuration::from_secs(16 * 60)).unwrap();
        assert_eq!(verify(&req, &creds, later).unwrap_err().code, "APIGW.0303");
        let other = Credentials { access_key: "AK".into(), secret_key: "other".into() };
        assert_eq!(verify(&req, &other, now).unwrap_err().code, "APIGW.0301");
    }
}
