//! The keyless-identity endpoints of dcs-api.md §13, on the shapes the official SDK parses
//! (`huaweicloudsdkcore/auth/internal.py`):
//! - `POST /v3.0/OS-AUTH/id-token/tokens` (header `X-Idp-Id`, body `{"auth":{"id_token":{"id"}}}`):
//!   201, the unscoped token in `X-Subject-Token` and a non-empty `{"token": {...}}` body;
//! - `POST /v3.0/OS-CREDENTIAL/securitytokens` (body `{"auth":{"identity":{"methods":["token"],
//!   "token":{"id","duration_seconds"}}}}`): 201 `{"credential":{"access","secret","securitytoken","expires_at"}}`;
//! - `POST /v5/agencies/assume-with-oidc` (body `{provider_urn, agency_urn, agency_session_name, id_token,
//!   duration_seconds}`): 200 `{"credentials":{"access_key_id","secret_access_key","security_token","expiration"}}`;
//! - `PUT /meta-data/latest/api/token` (`X-Metadata-Token-Ttl-Seconds`): the token as text; then
//!   `GET /openstack/latest/securitykey` (`X-Metadata-Token`, optional): `{"credential": {...}}`;
//! - `POST /_sim/pod-identity` (`Authorization: <token>`): `{"credential": {...}}`.
//!
//! Times are `%Y-%m-%dT%H:%M:%S.%6fZ` (the SDK's format). Refusals never echo a token.

use hyper::StatusCode;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::identity::{Grant, Issued, Refusal, Registry};
use super::jwt::{self, JwtError};
use super::routes::IdentityRoute;

/// An identity endpoint's answer.
#[derive(Debug)]
pub struct IdentityReply {
    pub status: StatusCode,
    pub content_type: &'static str,
    /// Extra headers (`X-Subject-Token`).
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

fn json_reply(status: StatusCode, body: &Value) -> IdentityReply {
    IdentityReply {
        status,
        content_type: "application/json;charset=UTF-8",
        headers: Vec::new(),
        body: body.to_string().into_bytes(),
    }
}

fn refuse(status: StatusCode, code: &str, message: impl std::fmt::Display) -> IdentityReply {
    json_reply(status, &json!({"error_code": code, "error_msg": message.to_string()}))
}

/// The SDK's time format.
pub fn wire_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

fn iam_credential(issued: &Issued) -> Value {
    json!({"credential": {
        "access": issued.access,
        "secret": issued.secret,
        "securitytoken": issued.security_token,
        "expires_at": wire_time(issued.expires_at),
    }})
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
}

fn refusal_of(error: &JwtError) -> Refusal {
    match error {
        JwtError::Expired | JwtError::NotYetValid => Refusal::Expired,
        JwtError::Issuer | JwtError::Audience => Refusal::Untrusted,
        JwtError::Malformed | JwtError::Algorithm(_) | JwtError::UnknownKey | JwtError::Signature => Refusal::Signature,
    }
}

/// Verifies an id token against the configured issuer; a refusal is counted and answered 401.
fn subject(registry: &mut Registry, id_token: &str, code: &str, now: Timestamp) -> Result<String, IdentityReply> {
    let Some(expected) = &registry.config().oidc else {
        return Err(refuse(StatusCode::UNAUTHORIZED, code, "no OIDC issuer is configured"));
    };
    jwt::verify(id_token, expected, now).map_err(|e| {
        registry.refuse(refusal_of(&e));
        refuse(StatusCode::UNAUTHORIZED, code, e)
    })
}

/// A handler's answer: the credentials or token asked for, or the refusal.
type Outcome = Result<IdentityReply, IdentityReply>;

/// Serves one identity call.
pub fn handle(
    registry: &mut Registry,
    route: IdentityRoute,
    headers: &[(String, String)],
    body: &[u8],
    now: Timestamp,
) -> IdentityReply {
    let outcome = match route {
        IdentityRoute::IdToken => id_token(registry, headers, body, now),
        IdentityRoute::SecurityToken => security_token(registry, body, now),
        IdentityRoute::AssumeWithOidc => assume_with_oidc(registry, body, now),
        IdentityRoute::MetadataToken => metadata_token(registry, headers, now),
        IdentityRoute::MetadataSecurityKey => metadata_security_key(registry, headers, now),
        IdentityRoute::PodIdentity => pod_identity(registry, headers, now),
    };
    outcome.unwrap_or_else(|refusal| refusal)
}

#[derive(Deserialize)]
struct IdTokenBody {
    auth: IdTokenAuth,
}
#[derive(Deserialize)]
struct IdTokenAuth {
    id_token: TokenId,
}
#[derive(Deserialize)]
struct TokenId {
    id: String,
}

fn id_token(registry: &mut Registry, headers: &[(String, String)], body: &[u8], now: Timestamp) -> Outcome {
    let Some(idp) = header(headers, "X-Idp-Id").filter(|v| !v.is_empty()) else {
        return Err(refuse(StatusCode::BAD_REQUEST, "IAM.0002", "X-Idp-Id is required"));
    };
    let parsed: IdTokenBody = serde_json::from_slice(body)
        .map_err(|_| refuse(StatusCode::BAD_REQUEST, "IAM.0002", "body must be {\"auth\":{\"id_token\":{\"id\"}}}"))?;
    let subject = subject(registry, &parsed.auth.id_token.id, "IAM.0001", now)?;
    if !registry.config().trust.idp_trusts(idp, &subject) {
        registry.refuse(Refusal::Untrusted);
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "IAM.0003",
            format!("identity provider {idp} does not trust {subject}"),
        ));
    }
    let (token, expires_at) = registry.issue_unscoped(idp.to_owned(), subject.clone(), now);
    let mut reply = json_reply(
        StatusCode::CREATED,
        &json!({"token": {
            "expires_at": wire_time(expires_at),
            "issued_at": wire_time(now),
            "methods": ["mapped"],
            "user": {
                "name": subject,
                "OS-FEDERATION": {"identity_provider": {"id": idp}, "protocol": {"id": "oidc"}, "groups": []},
            },
        }}),
    );
    reply.headers.push(("X-Subject-Token", token));
    Ok(reply)
}

#[derive(Deserialize)]
struct SecurityTokenBody {
    auth: SecurityTokenAuth,
}
#[derive(Deserialize)]
struct SecurityTokenAuth {
    identity: SecurityTokenIdentity,
}
#[derive(Deserialize)]
struct SecurityTokenIdentity {
    methods: Vec<String>,
    token: DurationToken,
}
#[derive(Deserialize)]
struct DurationToken {
    id: String,
    #[serde(default)]
    duration_seconds: Option<u64>,
}

fn security_token(registry: &mut Registry, body: &[u8], now: Timestamp) -> Outcome {
    let parsed: SecurityTokenBody = serde_json::from_slice(body).map_err(|_| {
        refuse(StatusCode::BAD_REQUEST, "IAM.0002", "body must be {\"auth\":{\"identity\":{\"methods\",\"token\"}}}")
    })?;
    let identity = parsed.auth.identity;
    if identity.methods != ["token"] {
        return Err(refuse(StatusCode::BAD_REQUEST, "IAM.0002", "methods must be [\"token\"]"));
    }
    let grant = registry.redeem_unscoped(&identity.token.id, now).map_err(|refusal| {
        registry.refuse(refusal);
        let message = match refusal {
            Refusal::Expired => "the token has expired",
            Refusal::Signature => "the token is not valid",
            Refusal::Untrusted => "the identity provider no longer trusts the token's subject",
        };
        refuse(StatusCode::UNAUTHORIZED, "IAM.0001", message)
    })?;
    let issued = registry.issue(grant, identity.token.duration_seconds, now);
    Ok(json_reply(StatusCode::CREATED, &iam_credential(&issued)))
}

#[derive(Deserialize)]
struct AssumeBody {
    #[serde(default)]
    provider_urn: Option<String>,
    agency_urn: String,
    #[serde(default)]
    agency_session_name: Option<String>,
    id_token: String,
    #[serde(default)]
    duration_seconds: Option<u64>,
}

fn assume_with_oidc(registry: &mut Registry, body: &[u8], now: Timestamp) -> Outcome {
    let parsed: AssumeBody = serde_json::from_slice(body)
        .map_err(|_| refuse(StatusCode::BAD_REQUEST, "STS.0002", "body must carry agency_urn and id_token"))?;
    let subject = subject(registry, &parsed.id_token, "STS.0001", now)?;
    if !registry.config().trust.agency_trusts(&parsed.agency_urn, &subject) {
        registry.refuse(Refusal::Untrusted);
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "STS.0003",
            format!("agency {} does not trust {subject}", parsed.agency_urn),
        ));
    }
    let grant = Grant::Agency { urn: parsed.agency_urn.clone(), subject: subject.clone() };
    let issued = registry.issue(grant, parsed.duration_seconds, now);
    Ok(json_reply(
        StatusCode::OK,
        &json!({
            "credentials": {
                "access_key_id": issued.access,
                "secret_access_key": issued.secret,
                "security_token": issued.security_token,
                "expiration": wire_time(issued.expires_at),
            },
            "assumed_agency": {
                "agency_urn": parsed.agency_urn,
                "provider_urn": parsed.provider_urn,
                "agency_session_name": parsed.agency_session_name,
                "subject": subject,
            },
        }),
    ))
}

/// Without `--metadata-credentials` the node has no agency: 404 with the text the SDK knows.
fn metadata_served(registry: &Registry) -> Result<(), IdentityReply> {
    if registry.config().metadata_credentials {
        Ok(())
    } else {
        Err(refuse(StatusCode::NOT_FOUND, "SIM.0404", "Please configure Cloud Service Agency first"))
    }
}

fn metadata_token(registry: &mut Registry, headers: &[(String, String)], now: Timestamp) -> Outcome {
    metadata_served(registry)?;
    let ttl = header(headers, "X-Metadata-Token-Ttl-Seconds").and_then(|v| v.parse::<u64>().ok()).unwrap_or(21_600);
    let token = registry.issue_metadata_token(std::time::Duration::from_secs(ttl), now);
    Ok(IdentityReply {
        status: StatusCode::OK,
        content_type: "text/plain",
        headers: Vec::new(),
        body: token.into_bytes(),
    })
}

fn metadata_security_key(registry: &mut Registry, headers: &[(String, String)], now: Timestamp) -> Outcome {
    metadata_served(registry)?;
    if let Some(token) = header(headers, "X-Metadata-Token")
        && !registry.metadata_token_valid(token, now)
    {
        return Err(refuse(StatusCode::UNAUTHORIZED, "SIM.0401", "the metadata token is not valid"));
    }
    let issued = registry.issue(Grant::Metadata, None, now);
    Ok(json_reply(StatusCode::OK, &iam_credential(&issued)))
}

fn pod_identity(registry: &mut Registry, headers: &[(String, String)], now: Timestamp) -> Outcome {
    let Some(expected) = registry.config().pod_identity_token.clone() else {
        return Err(refuse(StatusCode::NOT_FOUND, "SIM.0404", "pod identity is not served"));
    };
    if header(headers, "Authorization") != Some(expected.as_str()) {
        registry.refuse(Refusal::Untrusted);
        return Err(refuse(StatusCode::UNAUTHORIZED, "SIM.0401", "the pod identity token is not valid"));
    }
    let issued = registry.issue(Grant::PodIdentity, None, now);
    Ok(json_reply(StatusCode::OK, &iam_credential(&issued)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::identity::IdentityConfig;
    use crate::simulator::jwt::tests::TestIssuer;
    use crate::simulator::jwt::{Jwks, OidcIssuer};
    use crate::simulator::trust::Trust;

    const ISSUER: &str = "https://issuer.test";

    fn registry(issuer: &TestIssuer) -> Registry {
        let mut trust = Trust::default();
        trust.add_idp("idp".into(), "system:serviceaccount:payments:*".into());
        trust.add_agency("urn:agency".into(), "system:serviceaccount:ops:migrator".into());
        let oidc = OidcIssuer {
            issuer: ISSUER.into(),
            audience: "dcs".into(),
            jwks: Jwks::parse(issuer.jwks().to_string().as_bytes()).unwrap(),
        };
        Registry::new(IdentityConfig {
            oidc: Some(oidc),
            trust,
            pod_identity_token: Some("pod-token".into()),
            metadata_credentials: true,
            ..Default::default()
        })
    }

    fn token_for(issuer: &TestIssuer, subject: &str) -> String {
        let now = Timestamp::now().as_second();
        issuer.sign(&json!({"iss": ISSUER, "sub": subject, "aud": "dcs", "exp": now + 600, "iat": now}))
    }

    fn body(reply: &IdentityReply) -> Value {
        serde_json::from_slice(&reply.body).unwrap()
    }

    #[test]
    fn an_id_token_of_a_trusted_subject_yields_a_subject_token_then_a_credential() {
        let issuer = TestIssuer::new("k");
        let mut r = registry(&issuer);
        let headers = vec![("X-Idp-Id".to_owned(), "idp".to_owned())];
        let request = json!({"auth": {"id_token": {"id": token_for(&issuer, "system:serviceaccount:payments:a")}}});
        let now = Timestamp::now();
        let reply = handle(&mut r, IdentityRoute::IdToken, &headers, request.to_string().as_bytes(), now);
        assert_eq!(reply.status, StatusCode::CREATED);
        assert!(!reply.body.is_empty());
        let (_, unscoped) = reply.headers.iter().find(|(n, _)| *n == "X-Subject-Token").unwrap();
        let exchange = json!({"auth": {"identity": {"methods": ["token"],
            "token": {"id": unscoped, "duration_seconds": 21600}}}});
        let reply = handle(&mut r, IdentityRoute::SecurityToken, &[], exchange.to_string().as_bytes(), now);
        assert_eq!(reply.status, StatusCode::CREATED);
        assert_filled(&body(&reply)["credential"], &["access", "secret", "securitytoken", "expires_at"]);
    }

    fn assert_filled(object: &Value, keys: &[&str]) {
        for key in keys {
            assert!(object[key].as_str().is_some_and(|v| !v.is_empty()), "{key} in {object}");
        }
    }

    fn assume(r: &mut Registry, issuer: &TestIssuer, subject: &str) -> IdentityReply {
        let request = json!({"agency_urn": "urn:agency", "provider_urn": "urn:p",
            "id_token": token_for(issuer, subject), "duration_seconds": 900});
        handle(r, IdentityRoute::AssumeWithOidc, &[], request.to_string().as_bytes(), Timestamp::now())
    }

    #[test]
    fn an_untrusted_subject_is_refused_and_counted_without_echoing_the_token() {
        let issuer = TestIssuer::new("k");
        let mut r = registry(&issuer);
        let reply = assume(&mut r, &issuer, "system:serviceaccount:other:a");
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(!String::from_utf8_lossy(&reply.body).contains("eyJ"), "no JWT is echoed");
        assert_eq!(r.refusals().untrusted, 1);
    }

    #[test]
    fn sts_answers_credentials_with_access_key_id_style_keys() {
        let issuer = TestIssuer::new("k");
        let mut r = registry(&issuer);
        let reply = assume(&mut r, &issuer, "system:serviceaccount:ops:migrator");
        assert_eq!(reply.status, StatusCode::OK);
        let keys = ["access_key_id", "secret_access_key", "security_token", "expiration"];
        assert_filled(&body(&reply)["credentials"], &keys);
    }

    #[test]
    fn metadata_and_pod_identity_issue_credentials_to_their_token_holders_only() {
        let issuer = TestIssuer::new("k");
        let mut r = registry(&issuer);
        let now = Timestamp::now();
        let ttl = vec![("X-Metadata-Token-Ttl-Seconds".to_owned(), "60".to_owned())];
        let token = handle(&mut r, IdentityRoute::MetadataToken, &ttl, b"", now);
        let token = String::from_utf8(token.body).unwrap();
        let with = |name: &str, value: &str| vec![(name.to_owned(), value.to_owned())];
        let key = handle(&mut r, IdentityRoute::MetadataSecurityKey, &with("X-Metadata-Token", &token), b"", now);
        assert_eq!(key.status, StatusCode::OK);
        let stale = handle(&mut r, IdentityRoute::MetadataSecurityKey, &with("X-Metadata-Token", "x"), b"", now);
        assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
        let pod = handle(&mut r, IdentityRoute::PodIdentity, &with("Authorization", "pod-token"), b"{}", now);
        assert_eq!(pod.status, StatusCode::OK);
        let impostor = handle(&mut r, IdentityRoute::PodIdentity, &with("Authorization", "other"), b"{}", now);
        assert_eq!(impostor.status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn answer_times_use_the_sdk_format() {
        let t = Timestamp::from_second(1_764_000_000).unwrap();
        assert_eq!(wire_time(t), "2025-11-24T16:00:00.000000Z");
    }
}
