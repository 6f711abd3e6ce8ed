//! Keyless credential exchanges (dcs-api.md §13), each one link of the SDK's chain: an id token for
//! IAM federation (unscoped token, then a security token), an id token for an STS agency, the ECS
//! metadata agency, CCE pod identity. Each answers [`TemporaryCredentials`]. A refusal names the link,
//! the HTTP status and the service's own code and message (with every token of the request scrubbed
//! out); no token ever reaches an error or a log line.

use std::time::Duration;

use jiff::Timestamp;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use thiserror::Error;

use super::scrub::Scrubber;
use super::temporary::{self, TemporaryCredentialError, TemporaryCredentials};

/// How much of a refusal's message is kept.
const MAX_MESSAGE: usize = 200;
const JSON: &str = "application/json;charset=UTF-8";

/// Which exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// `POST /v3.0/OS-AUTH/id-token/tokens`: id token → unscoped IAM token.
    IamIdToken,
    /// `POST /v3.0/OS-CREDENTIAL/securitytokens`: unscoped token → temporary credentials.
    IamSecurityToken,
    /// `POST /v5/agencies/assume-with-oidc`.
    StsAssumeAgency,
    /// `PUT /meta-data/latest/api/token` and `GET /openstack/latest/securitykey`.
    Metadata,
    /// `POST $HC_CONTAINER_CREDENTIALS_FULL_URI`.
    PodIdentity,
}

impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Link::IamIdToken => "IAM id-token federation",
            Link::IamSecurityToken => "IAM security token",
            Link::StsAssumeAgency => "STS assume-with-oidc",
            Link::Metadata => "ECS metadata",
            Link::PodIdentity => "CCE pod identity",
        })
    }
}

/// Why an exchange gave no credentials.
#[derive(Debug, Error)]
pub enum ExchangeError {
    #[error("{link}: request failed: {source}")]
    Transport {
        link: Link,
        #[source]
        source: reqwest::Error,
    },
    #[error("{link}: refused with HTTP {status}{}: {message}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Refused { link: Link, status: u16, code: Option<String>, message: String },
    #[error("{link}: the answer carries no X-Subject-Token or an empty body")]
    NoSubjectToken { link: Link },
    #[error("{link}: {source}")]
    Credential {
        link: Link,
        #[source]
        source: TemporaryCredentialError,
    },
}

impl ExchangeError {
    /// The link of the chain that failed.
    pub fn link(&self) -> Link {
        match self {
            ExchangeError::Transport { link, .. }
            | ExchangeError::Refused { link, .. }
            | ExchangeError::NoSubjectToken { link }
            | ExchangeError::Credential { link, .. } => *link,
        }
    }
}

/// What assuming an agency asks for (the id token travels separately).
#[derive(Debug, Clone)]
pub struct AgencyRequest {
    pub provider_urn: String,
    pub agency_urn: String,
    pub session_name: String,
    pub duration: Duration,
}

struct Answer {
    status: u16,
    subject_token: Option<String>,
    body: Vec<u8>,
}

async fn send(link: Link, request: reqwest::RequestBuilder) -> Result<Answer, ExchangeError> {
    let transport = |source: reqwest::Error| ExchangeError::Transport { link, source: source.without_url() };
    let response = request.send().await.map_err(transport)?;
    let status = response.status().as_u16();
    let subject_token = response.headers().get("X-Subject-Token").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.bytes().await.map_err(transport)?.to_vec();
    Ok(Answer { status, subject_token, body })
}

/// A refusal from a non-2xx answer: its `error_code`/`error_msg` (or IAM's `error.code`/`error.message`),
/// else the start of the body, with `secrets` scrubbed out.
fn refused(link: Link, answer: &Answer, secrets: &[&str]) -> ExchangeError {
    let scrubber = Scrubber::new(secrets.iter().copied());
    let parsed: Option<Value> = serde_json::from_slice(&answer.body).ok();
    let field = |pointers: &[&str]| {
        pointers.iter().find_map(|p| {
            parsed.as_ref().and_then(|v| v.pointer(p)).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        })
    };
    let code = field(&["/error_code", "/error/code"]).map(|c| scrubber.scrub(&c).chars().take(64).collect());
    let message =
        field(&["/error_msg", "/error/message"]).unwrap_or_else(|| String::from_utf8_lossy(&answer.body).into_owned());
    let message = scrubber.scrub(&message).chars().take(MAX_MESSAGE).collect();
    ExchangeError::Refused { link, status: answer.status, code, message }
}

fn credentials(link: Link, answer: &Answer, received_at: Timestamp) -> Result<TemporaryCredentials, ExchangeError> {
    temporary::parse(&answer.body, received_at).map_err(|source| ExchangeError::Credential { link, source })
}

fn success(answer: &Answer) -> bool {
    (200..300).contains(&answer.status)
}

fn url(endpoint: &str, path: &str) -> String {
    format!("{}{path}", endpoint.trim_end_matches('/'))
}

/// IAM federation: `id_token` (issued for IdP `idp_id`) → unscoped token → temporary credentials for
/// `duration` (IAM may shorten it).
pub async fn iam_federation(
    http: &reqwest::Client,
    iam_endpoint: &str,
    idp_id: &str,
    id_token: &str,
    duration: Duration,
) -> Result<TemporaryCredentials, ExchangeError> {
    let body = json!({"auth": {"id_token": {"id": id_token}}});
    let request = http
        .post(url(iam_endpoint, "/v3.0/OS-AUTH/id-token/tokens"))
        .header(CONTENT_TYPE, JSON)
        .header("X-Idp-Id", idp_id)
        .body(body.to_string());
    let answer = send(Link::IamIdToken, request).await?;
    if !success(&answer) {
        return Err(refused(Link::IamIdToken, &answer, &[id_token]));
    }
    let Some(unscoped) = answer.subject_token.filter(|t| !t.is_empty() && !answer.body.is_empty()) else {
        return Err(ExchangeError::NoSubjectToken { link: Link::IamIdToken });
    };
    let body = json!({"auth": {"identity": {"methods": ["token"],
        "token": {"id": unscoped, "duration_seconds": duration.as_secs()}}}});
    let request = http
        .post(url(iam_endpoint, "/v3.0/OS-CREDENTIAL/securitytokens"))
        .header(CONTENT_TYPE, JSON)
        .body(body.to_string());
    let received_at = Timestamp::now();
    let answer = send(Link::IamSecurityToken, request).await?;
    if !success(&answer) {
        return Err(refused(Link::IamSecurityToken, &answer, &[id_token, &unscoped]));
    }
    credentials(Link::IamSecurityToken, &answer, received_at)
}

/// STS: `id_token` → temporary credentials of the agency in `agency`.
pub async fn assume_agency_with_oidc(
    http: &reqwest::Client,
    sts_endpoint: &str,
    agency: &AgencyRequest,
    id_token: &str,
) -> Result<TemporaryCredentials, ExchangeError> {
    let body = json!({
        "provider_urn": agency.provider_urn,
        "agency_urn": agency.agency_urn,
        "agency_session_name": agency.session_name,
        "id_token": id_token,
        "duration_seconds": agency.duration.as_secs(),
    });
    let request =
        http.post(url(sts_endpoint, "/v5/agencies/assume-with-oidc")).header(CONTENT_TYPE, JSON).body(body.to_string());
    let received_at = Timestamp::now();
    let answer = send(Link::StsAssumeAgency, request).await?;
    if !success(&answer) {
        return Err(refused(Link::StsAssumeAgency, &answer, &[id_token]));
    }
    credentials(Link::StsAssumeAgency, &answer, received_at)
}

/// ECS metadata: a session token (`X-Metadata-Token-Ttl-Seconds`), then the agency's credentials.
pub async fn metadata(http: &reqwest::Client, metadata_endpoint: &str) -> Result<TemporaryCredentials, ExchangeError> {
    let request =
        http.put(url(metadata_endpoint, "/meta-data/latest/api/token")).header("X-Metadata-Token-Ttl-Seconds", "21600");
    let answer = send(Link::Metadata, request).await?;
    if !success(&answer) {
        return Err(refused(Link::Metadata, &answer, &[]));
    }
    let token = String::from_utf8_lossy(&answer.body).trim().to_owned();
    let request = http.get(url(metadata_endpoint, "/openstack/latest/securitykey")).header("X-Metadata-Token", &token);
    let received_at = Timestamp::now();
    let answer = send(Link::Metadata, request).await?;
    if !success(&answer) {
        return Err(refused(Link::Metadata, &answer, &[&token]));
    }
    credentials(Link::Metadata, &answer, received_at)
}

/// CCE pod identity: `POST uri` with `Authorization: <token>` and body `{}`.
pub async fn pod_identity(
    http: &reqwest::Client,
    uri: &str,
    authorization_token: &str,
) -> Result<TemporaryCredentials, ExchangeError> {
    let request = http.post(uri).header(CONTENT_TYPE, JSON).header("Authorization", authorization_token).body("{}");
    let received_at = Timestamp::now();
    let answer = send(Link::PodIdentity, request).await?;
    if !success(&answer) {
        return Err(refused(Link::PodIdentity, &answer, &[authorization_token]));
    }
    credentials(Link::PodIdentity, &answer, received_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcs::model::ListQuery;
    use crate::dcs::{ClientConfig, DcsClient, Endpoint};
    use crate::simulator::jwt::tests::TestIssuer;
    use crate::simulator::{self, IdentityConfig, Jwks, OidcIssuer, RunningSimulator, Trust};

    const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
    const AUDIENCE: &str = "dcs-migration-operator";
    const PROJECT: &str = "0123456789abcdef0123456789abcdef";
    const POD_TOKEN: &str = "pod-token-value";
    const TRUSTED: &str = "system:serviceaccount:payments:migrator";

    fn start(issuer: &TestIssuer) -> RunningSimulator {
        let mut trust = Trust::default();
        trust.add_idp("idp".into(), "system:serviceaccount:payments:*".into());
        trust.add_agency("urn:agency".into(), TRUSTED.into());
        let identity = IdentityConfig {
            oidc: Some(OidcIssuer {
                issuer: ISSUER.into(),
                audience: AUDIENCE.into(),
                jwks: Jwks::parse(issuer.jwks().to_string().as_bytes()).unwrap(),
            }),
            trust,
            pod_identity_token: Some(POD_TOKEN.into()),
            metadata_credentials: true,
            credential_lifetime: Duration::from_secs(120),
        };
        simulator::spawn(simulator::Config::new("AK", "SK", PROJECT).with_identity(identity)).unwrap()
    }

    fn id_token(issuer: &TestIssuer, subject: &str) -> String {
        let now = Timestamp::now().as_second();
        issuer.sign(&json!({"iss": ISSUER, "sub": subject, "aud": [AUDIENCE], "exp": now + 600, "nbf": now}))
    }

    async fn lists_tasks(url: &str, temporary: &TemporaryCredentials) {
        let config = ClientConfig::new(Endpoint::parse(url).unwrap(), PROJECT, temporary.credentials.clone());
        DcsClient::new(config).unwrap().list_migration_tasks(&ListQuery::default()).await.unwrap();
    }

    fn agency() -> AgencyRequest {
        AgencyRequest {
            provider_urn: "urn:provider".into(),
            agency_urn: "urn:agency".into(),
            session_name: "operator".into(),
            duration: Duration::from_secs(3600),
        }
    }

    #[tokio::test]
    async fn every_link_gets_credentials_the_dcs_api_accepts() {
        let issuer = TestIssuer::new("k");
        let sim = start(&issuer);
        let http = reqwest::Client::new();
        let url = sim.url();
        let token = id_token(&issuer, TRUSTED);
        let all = [
            iam_federation(&http, &url, "idp", &token, Duration::from_secs(21_600)).await.unwrap(),
            assume_agency_with_oidc(&http, &url, &agency(), &token).await.unwrap(),
            metadata(&http, &url).await.unwrap(),
            pod_identity(&http, &format!("{url}/_sim/pod-identity"), POD_TOKEN).await.unwrap(),
        ];
        for temporary in &all {
            assert!(
                temporary.lifetime <= Duration::from_secs(121) && temporary.lifetime > Duration::from_secs(100),
                "{:?}",
                temporary.lifetime
            );
            lists_tasks(&url, temporary).await;
        }
    }

    #[tokio::test]
    async fn a_refusal_names_the_link_and_status_and_never_the_token() {
        let issuer = TestIssuer::new("k");
        let sim = start(&issuer);
        let http = reqwest::Client::new();
        let untrusted = id_token(&issuer, "system:serviceaccount:other:migrator");
        let error = iam_federation(&http, &sim.url(), "idp", &untrusted, Duration::from_secs(900)).await.unwrap_err();
        assert_eq!(error.link(), Link::IamIdToken);
        assert!(
            matches!(&error, ExchangeError::Refused { status: 403, code: Some(c), .. } if c == "IAM.0003"),
            "{error}"
        );
        let error = assume_agency_with_oidc(&http, &sim.url(), &agency(), &untrusted).await.unwrap_err();
        assert_eq!(error.link(), Link::StsAssumeAgency);
        let error = pod_identity(&http, &format!("{}/_sim/pod-identity", sim.url()), "wrong-token").await.unwrap_err();
        assert!(matches!(&error, ExchangeError::Refused { status: 401, .. }), "{error}");
        for shown in [error.to_string(), format!("{error:?}")] {
            assert!(!shown.contains(&untrusted) && !shown.contains("wrong-token"), "{shown}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_a_transport_error_of_its_link() {
        let http = reqwest::Client::new();
        let error = metadata(&http, "http://127.0.0.1:9").await.unwrap_err();
        assert!(matches!(error, ExchangeError::Transport { link: Link::Metadata, .. }), "{error}");
    }
}
