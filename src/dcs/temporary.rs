//! Temporary credentials (dcs-api.md §13): one parser for every answer that carries them (IAM
//! security tokens, STS, ECS metadata, CCE pod identity) and when to refresh them. Nothing here
//! prints a key or a token: errors name only what is missing.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};
use thiserror::Error;

use super::credentials::Credentials;

/// The longest refresh margin, however long the credential lives.
pub const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Why an answer holds no usable temporary credential.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemporaryCredentialError {
    #[error("the credential answer is not a JSON object")]
    NotAnObject,
    #[error("the credential answer has no {0}")]
    Missing(&'static str),
    #[error("the credential answer's expiry is not an RFC 3339 time")]
    Expiry,
}

/// Temporary AK/SK with their security token, when they expire and how long they lived when received.
#[derive(Debug, Clone)]
pub struct TemporaryCredentials {
    pub credentials: Credentials,
    pub expires_at: Timestamp,
    /// From receipt to expiry (zero for an answer that was already expired).
    pub lifetime: Duration,
}

impl TemporaryCredentials {
    /// Permanent keys that a link of a chain gave (the environment's AK/SK): never due for refresh.
    pub fn lasting(credentials: Credentials) -> Self {
        Self { credentials, expires_at: Timestamp::MAX, lifetime: Duration::MAX }
    }

    /// When to get new ones: [`refresh_margin`] of the lifetime before expiry.
    pub fn refresh_at(&self) -> Timestamp {
        let margin = SignedDuration::try_from(refresh_margin(self.lifetime)).unwrap_or(SignedDuration::ZERO);
        self.expires_at.checked_sub(margin).unwrap_or(self.expires_at)
    }

    /// True once they must not be used for another request.
    pub fn refresh_due(&self, now: Timestamp) -> bool {
        now >= self.refresh_at()
    }
}

/// How long before expiry a credential living `lifetime` is refreshed: a tenth of its lifetime, at most
/// [`MAX_REFRESH_MARGIN`] (a 20-s credential refreshes 2 s early, so at most once per lifetime; a 60-s one
/// 6 s early, a 1-h one 5 min early). Credentials are taken after the rate limiter's wait, right before
/// signing, so the margin only has to cover one exchange and the clocks' skew.
pub fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(MAX_REFRESH_MARGIN)
}

fn first<'a>(object: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| object.get(*k).and_then(Value::as_str).filter(|v| !v.is_empty()))
}

/// Parses any temporary-credential answer as the SDK does: the object itself or its `credential` /
/// `credentials` member; keys `access|accessKeyId|access_key_id`, `secret|secretAccessKey|secret_access_key`,
/// `securitytoken|securityToken|security_token`, `expires_at|expiration`. `received_at`: when the answer
/// arrived (the lifetime is measured from it).
pub fn parse(body: &[u8], received_at: Timestamp) -> Result<TemporaryCredentials, TemporaryCredentialError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| TemporaryCredentialError::NotAnObject)?;
    let outer = value.as_object().ok_or(TemporaryCredentialError::NotAnObject)?;
    let object = match outer.get("credential").or_else(|| outer.get("credentials")) {
        Some(inner) => inner.as_object().ok_or(TemporaryCredentialError::NotAnObject)?,
        None => outer,
    };
    let access = first(object, &["access", "accessKeyId", "access_key_id"])
        .ok_or(TemporaryCredentialError::Missing("access key"))?;
    let secret = first(object, &["secret", "secretAccessKey", "secret_access_key"])
        .ok_or(TemporaryCredentialError::Missing("secret key"))?;
    let token = first(object, &["securitytoken", "securityToken", "security_token"])
        .ok_or(TemporaryCredentialError::Missing("security token"))?;
    let expiry = first(object, &["expires_at", "expiration"]).ok_or(TemporaryCredentialError::Missing("expiry"))?;
    let expires_at: Timestamp = expiry.parse().map_err(|_| TemporaryCredentialError::Expiry)?;
    let lifetime = Duration::try_from(expires_at.duration_since(received_at)).unwrap_or(Duration::ZERO);
    Ok(TemporaryCredentials {
        credentials: Credentials::new(access, secret).with_security_token(token),
        expires_at,
        lifetime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    const EXPIRES: &str = "2026-11-30T10:00:00.000000Z";

    #[test]
    fn the_iam_answer_wrapped_in_credential_parses() {
        let body = json!({"credential": {"access": "AK", "secret": "SK", "securitytoken": "T", "expires_at": EXPIRES}});
        let received = "2026-11-30T09:00:00Z".parse().unwrap();
        let parsed = parse(body.to_string().as_bytes(), received).unwrap();
        assert_eq!(parsed.credentials.access_key(), "AK");
        assert_eq!(parsed.credentials.secret_key(), "SK");
        assert_eq!(parsed.credentials.security_token(), Some("T"));
        assert_eq!(parsed.expires_at, EXPIRES.parse().unwrap());
        assert_eq!(parsed.lifetime, Duration::from_secs(3600));
    }

    #[test]
    fn the_sts_answer_wrapped_in_credentials_with_snake_case_keys_parses() {
        let body = json!({"credentials": {"access_key_id": "AK", "secret_access_key": "SK",
            "security_token": "T", "expiration": "2026-11-30T18:00:00+08:00"}, "assumed_agency": {}});
        let parsed = parse(body.to_string().as_bytes(), at(0)).unwrap();
        assert_eq!(parsed.credentials.access_key(), "AK");
        assert_eq!(parsed.expires_at, EXPIRES.parse().unwrap());
    }

    #[test]
    fn an_unwrapped_answer_with_camel_case_keys_parses() {
        let body = json!({"accessKeyId": "AK", "secretAccessKey": "SK", "securityToken": "T", "expiration": EXPIRES});
        let parsed = parse(body.to_string().as_bytes(), at(0)).unwrap();
        assert_eq!(parsed.credentials.secret_key(), "SK");
        assert_eq!(parsed.credentials.security_token(), Some("T"));
    }

    #[test]
    fn empty_spellings_fall_through_to_the_next_as_in_the_sdk() {
        let body = json!({"credential": {"access": "", "access_key_id": "AK", "secret": "SK",
            "securitytoken": "T", "expires_at": EXPIRES}});
        assert_eq!(parse(body.to_string().as_bytes(), at(0)).unwrap().credentials.access_key(), "AK");
    }

    #[test]
    fn a_missing_part_is_named_without_echoing_any_value() {
        let body = json!({"credential": {"access": "AKSECRETVALUE", "secret": "SKSECRETVALUE", "expires_at": EXPIRES}});
        let error = parse(body.to_string().as_bytes(), at(0)).unwrap_err();
        assert_eq!(error, TemporaryCredentialError::Missing("security token"));
        assert!(!error.to_string().contains("SECRETVALUE"));
        let bad_expiry = json!({"access": "A", "secret": "S", "securitytoken": "T", "expires_at": "tomorrow"});
        assert_eq!(parse(bad_expiry.to_string().as_bytes(), at(0)).unwrap_err(), TemporaryCredentialError::Expiry);
        assert_eq!(parse(b"[1]", at(0)).unwrap_err(), TemporaryCredentialError::NotAnObject);
        assert_eq!(parse(b"not json", at(0)).unwrap_err(), TemporaryCredentialError::NotAnObject);
    }

    #[test]
    fn the_refresh_margin_scales_with_the_lifetime_and_is_capped() {
        assert_eq!(refresh_margin(Duration::from_secs(60)), Duration::from_secs(6));
        assert_eq!(refresh_margin(Duration::from_secs(20)), Duration::from_secs(2));
        assert_eq!(refresh_margin(Duration::from_secs(3600)), MAX_REFRESH_MARGIN);
        assert_eq!(refresh_margin(Duration::from_secs(6 * 3600)), MAX_REFRESH_MARGIN);
        assert_eq!(refresh_margin(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn a_sixty_second_credential_is_used_for_fifty_four_seconds_then_refreshed() {
        let body = json!({"credential": {"access": "A", "secret": "S", "securitytoken": "T",
            "expires_at": "1970-01-01T00:01:00Z"}});
        let parsed = parse(body.to_string().as_bytes(), at(0)).unwrap();
        assert_eq!(parsed.refresh_at(), at(54));
        assert!(!parsed.refresh_due(at(53)));
        assert!(parsed.refresh_due(at(54)));
    }
}
