//! The SDK's credential chain (dcs-api.md §13) for the operator's own identity: which sources the
//! environment configures, in the SDK's order (OIDC → STS, then the environment's AK/SK or IdP id + token
//! file, then ECS metadata, then CCE pod identity; profile files are not supported), and [`resolve`],
//! which tries them in that order and answers the first credentials obtained or, if none, why each
//! link failed. Id tokens are read from their files at each attempt (projected tokens rotate).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;

use super::cached::CachedCredentials;
use super::credentials::{Credentials, ENV_ACCESS_KEY, ENV_SECRET_KEY, ENV_SECURITY_TOKEN};
use super::keyless::{self, AgencyRequest, ExchangeError};
use super::source::Provide;
use super::temporary::TemporaryCredentials;

pub const ENV_OIDC_PROVIDER_URN: &str = "HUAWEICLOUD_OIDC_PROVIDER_URN";
pub const ENV_OIDC_AGENCY_URN: &str = "HUAWEICLOUD_OIDC_AGENCY_URN";
pub const ENV_OIDC_ID_TOKEN: &str = "HUAWEICLOUD_OIDC_ID_TOKEN";
pub const ENV_OIDC_TOKEN_FILE: &str = "HUAWEICLOUD_OIDC_TOKEN_FILE";
pub const ENV_OIDC_SESSION_NAME: &str = "HUAWEICLOUD_OIDC_SESSION_NAME";
pub const ENV_OIDC_DURATION_SECONDS: &str = "HUAWEICLOUD_OIDC_DURATION_SECONDS";
pub const ENV_STS_ENDPOINT: &str = "HUAWEICLOUD_SDK_STS_ENDPOINT";
pub const ENV_IDP_ID: &str = "HUAWEICLOUD_SDK_IDP_ID";
pub const ENV_ID_TOKEN_FILE: &str = "HUAWEICLOUD_SDK_ID_TOKEN_FILE";
pub const ENV_IAM_ENDPOINT: &str = "HUAWEICLOUD_SDK_IAM_ENDPOINT";
pub const ENV_POD_IDENTITY_URI: &str = "HC_CONTAINER_CREDENTIALS_FULL_URI";
pub const ENV_POD_IDENTITY_TOKEN_FILE: &str = "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE";

/// The SDK's defaults when no endpoint is configured.
pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.cn-north-4.myhuaweicloud.com";
pub const DEFAULT_IAM_ENDPOINT: &str = "https://iam.myhuaweicloud.com";
pub const DEFAULT_METADATA_ENDPOINT: &str = "http://169.254.169.254";
/// The SDK's session name and lifetimes.
const DEFAULT_SESSION_NAME: &str = "oidc-sts-session";
const DEFAULT_STS_DURATION: Duration = Duration::from_secs(3600);
const FEDERATION_DURATION: Duration = Duration::from_secs(6 * 3600);

/// Where an id token comes from.
#[derive(Debug, Clone)]
pub enum IdToken {
    /// Given inline (`HUAWEICLOUD_OIDC_ID_TOKEN`; `Debug` does not show it).
    Inline(SecretString),
    /// Read from this file at each exchange.
    File(PathBuf),
}

/// One configured link of the chain.
#[derive(Debug, Clone)]
pub enum Source {
    OidcSts {
        sts_endpoint: String,
        agency: AgencyRequest,
        token: IdToken,
    },
    /// `HUAWEICLOUD_SDK_AK` / `_SK` (/ `_SECURITY_TOKEN`).
    Environment(Credentials),
    IamFederation {
        iam_endpoint: String,
        idp_id: String,
        token_file: PathBuf,
    },
    Metadata {
        endpoint: String,
    },
    PodIdentity {
        uri: String,
        token_file: PathBuf,
    },
}

impl Source {
    /// The link's name, as refusals show it.
    pub fn name(&self) -> &'static str {
        match self {
            Source::OidcSts { .. } => "OIDC → STS",
            Source::Environment(_) => "environment AK/SK",
            Source::IamFederation { .. } => "IdP id + token file (IAM federation)",
            Source::Metadata { .. } => "ECS metadata",
            Source::PodIdentity { .. } => "CCE pod identity",
        }
    }
}

/// What a link obtained.
#[derive(Debug, Clone)]
pub enum Obtained {
    /// Permanent keys: nothing to refresh.
    Permanent(Credentials),
    Temporary(TemporaryCredentials),
}

/// Why one link gave nothing.
#[derive(Debug, Error)]
pub enum LinkError {
    #[error("cannot read the token file {path}: {source}")]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the token file {0} is empty")]
    EmptyTokenFile(PathBuf),
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
}

/// No link gave credentials: each one's failure, in chain order (empty: nothing is configured).
#[derive(Debug, Error)]
#[error("no credentials from the chain: {}", describe(.0))]
pub struct ChainError(pub Vec<(&'static str, LinkError)>);

fn describe(failures: &[(&'static str, LinkError)]) -> String {
    if failures.is_empty() {
        return "no source is configured".to_owned();
    }
    failures.iter().map(|(link, e)| format!("{link}: {e}")).collect::<Vec<_>>().join("; ")
}

/// The sources `var` (an environment lookup) configures, in the SDK's order. ECS metadata is a candidate
/// at `metadata_endpoint` (the SDK always tries it; `None` leaves it out).
pub fn sources(var: impl Fn(&str) -> Option<String>, metadata_endpoint: Option<&str>) -> Vec<Source> {
    let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    let mut found = Vec::new();
    let token = var(ENV_OIDC_ID_TOKEN)
        .map(|t| IdToken::Inline(SecretString::from(t)))
        .or_else(|| var(ENV_OIDC_TOKEN_FILE).map(|f| IdToken::File(f.into())));
    if let (Some(provider_urn), Some(agency_urn), Some(token)) =
        (var(ENV_OIDC_PROVIDER_URN), var(ENV_OIDC_AGENCY_URN), token)
    {
        let duration = var(ENV_OIDC_DURATION_SECONDS)
            .and_then(|d| d.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_STS_DURATION);
        let session_name = var(ENV_OIDC_SESSION_NAME).unwrap_or_else(|| DEFAULT_SESSION_NAME.to_owned());
        found.push(Source::OidcSts {
            sts_endpoint: var(ENV_STS_ENDPOINT).unwrap_or_else(|| DEFAULT_STS_ENDPOINT.to_owned()),
            agency: AgencyRequest { provider_urn, agency_urn, session_name, duration },
            token,
        });
    }
    if let (Some(idp_id), Some(token_file)) = (var(ENV_IDP_ID), var(ENV_ID_TOKEN_FILE)) {
        found.push(Source::IamFederation {
            iam_endpoint: var(ENV_IAM_ENDPOINT).unwrap_or_else(|| DEFAULT_IAM_ENDPOINT.to_owned()),
            idp_id,
            token_file: token_file.into(),
        });
    } else if let (Some(ak), Some(sk)) = (var(ENV_ACCESS_KEY), var(ENV_SECRET_KEY)) {
        let credentials = Credentials::new(ak, sk);
        found.push(Source::Environment(match var(ENV_SECURITY_TOKEN) {
            Some(token) => credentials.with_security_token(token),
            None => credentials,
        }));
    }
    if let Some(endpoint) = metadata_endpoint {
        found.push(Source::Metadata { endpoint: endpoint.to_owned() });
    }
    if let (Some(uri), Some(token_file)) = (var(ENV_POD_IDENTITY_URI), var(ENV_POD_IDENTITY_TOKEN_FILE)) {
        found.push(Source::PodIdentity { uri, token_file: token_file.into() });
    }
    found
}

fn read_token(path: &PathBuf) -> Result<SecretString, LinkError> {
    let text = std::fs::read_to_string(path).map_err(|source| LinkError::TokenFile { path: path.clone(), source })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(LinkError::EmptyTokenFile(path.clone()));
    }
    Ok(SecretString::from(token.to_owned()))
}

/// Obtains credentials from one source.
pub async fn obtain(http: &reqwest::Client, source: &Source) -> Result<Obtained, LinkError> {
    let temporary = match source {
        Source::Environment(credentials) => return Ok(Obtained::Permanent(credentials.clone())),
        Source::OidcSts { sts_endpoint, agency, token } => {
            let token = match token {
                IdToken::Inline(t) => t.clone(),
                IdToken::File(path) => read_token(path)?,
            };
            keyless::assume_agency_with_oidc(http, sts_endpoint, agency, token.expose_secret()).await?
        }
        Source::IamFederation { iam_endpoint, idp_id, token_file } => {
            let token = read_token(token_file)?;
            keyless::iam_federation(http, iam_endpoint, idp_id, token.expose_secret(), FEDERATION_DURATION).await?
        }
        Source::Metadata { endpoint } => keyless::metadata(http, endpoint).await?,
        Source::PodIdentity { uri, token_file } => {
            let token = read_token(token_file)?;
            keyless::pod_identity(http, uri, token.expose_secret()).await?
        }
    };
    Ok(Obtained::Temporary(temporary))
}

/// Tries `sources` in order; answers the first credentials obtained with the source that gave them.
pub async fn resolve<'a>(http: &reqwest::Client, sources: &'a [Source]) -> Result<(&'a Source, Obtained), ChainError> {
    let mut failures = Vec::new();
    for source in sources {
        match obtain(http, source).await {
            Ok(obtained) => return Ok((source, obtained)),
            Err(e) => failures.push((source.name(), e)),
        }
    }
    Err(ChainError(failures))
}

/// How long a chain that gave nothing is not tried again (a cluster with no keyless identity is not
/// probed on every reconcile).
const FAILURE_MEMORY: Duration = Duration::from_secs(30);

/// The chain as the operator's default credentials, resolved lazily: the first request tries the links in
/// order; what they give is cached and, when temporary, obtained again from the chain before it expires.
pub struct Chain {
    http: reqwest::Client,
    sources: Vec<Source>,
    cache: CachedCredentials,
    failed: Mutex<Option<(Instant, String)>>,
}

impl Chain {
    pub fn new(sources: Vec<Source>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self { http, sources, cache: CachedCredentials::new(), failed: Mutex::new(None) })
    }

    async fn fetch(&self) -> Result<TemporaryCredentials, String> {
        let remembered = self.failed.lock().expect("chain lock").clone();
        if let Some((_, why)) = remembered.filter(|(at, _)| at.elapsed() < FAILURE_MEMORY) {
            return Err(why);
        }
        match resolve(&self.http, &self.sources).await {
            Ok((source, obtained)) => {
                tracing::info!(link = source.name(), "default credentials obtained from the chain");
                Ok(match obtained {
                    Obtained::Temporary(temporary) => temporary,
                    Obtained::Permanent(credentials) => TemporaryCredentials::lasting(credentials),
                })
            }
            Err(e) => {
                let why = e.to_string();
                *self.failed.lock().expect("chain lock") = Some((Instant::now(), why.clone()));
                Err(why)
            }
        }
    }
}

impl Provide for Chain {
    fn credentials(&self) -> BoxFuture<'_, Result<Credentials, String>> {
        Box::pin(async move { self.cache.get(Timestamp::now(), || self.fetch()).await.map(|t| t.credentials) })
    }

    fn refused<'a>(&'a self, access_key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.cache.invalidate_if(access_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use crate::simulator::jwt::tests::TestIssuer;
    use crate::simulator::{self, IdentityConfig, Jwks, OidcIssuer, Trust};

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    fn names(sources: &[Source]) -> Vec<&'static str> {
        sources.iter().map(Source::name).collect()
    }

    #[test]
    fn the_environment_configures_links_in_the_sdk_order() {
        let all = env(&[
            (ENV_OIDC_PROVIDER_URN, "urn:p"),
            (ENV_OIDC_AGENCY_URN, "urn:a"),
            (ENV_OIDC_TOKEN_FILE, "/t"),
            (ENV_IDP_ID, "idp"),
            (ENV_ID_TOKEN_FILE, "/t2"),
            (ENV_ACCESS_KEY, "AK"),
            (ENV_SECRET_KEY, "SK"),
            (ENV_POD_IDENTITY_URI, "http://pod"),
            (ENV_POD_IDENTITY_TOKEN_FILE, "/p"),
        ]);
        let found = sources(all, Some("http://meta"));
        assert_eq!(
            names(&found),
            ["OIDC → STS", "IdP id + token file (IAM federation)", "ECS metadata", "CCE pod identity"]
        );
        match &found[0] {
            Source::OidcSts { sts_endpoint, agency, .. } => {
                assert_eq!(sts_endpoint, DEFAULT_STS_ENDPOINT);
                assert_eq!((agency.session_name.as_str(), agency.duration), ("oidc-sts-session", DEFAULT_STS_DURATION));
            }
            other => panic!("{other:?}"),
        }
        let keys_only = env(&[(ENV_ACCESS_KEY, "AK"), (ENV_SECRET_KEY, "SK"), (ENV_OIDC_PROVIDER_URN, "urn:p")]);
        assert_eq!(names(&sources(keys_only, Some("http://meta"))), ["environment AK/SK", "ECS metadata"]);
        let blank = env(&[(ENV_ACCESS_KEY, " "), (ENV_SECRET_KEY, "SK")]);
        assert_eq!(names(&sources(blank, Some("http://meta"))), ["ECS metadata"]);
    }

    #[test]
    fn debug_of_a_source_never_shows_an_inline_token_or_a_key() {
        let found = sources(
            env(&[
                (ENV_OIDC_PROVIDER_URN, "urn:p"),
                (ENV_OIDC_AGENCY_URN, "urn:a"),
                (ENV_OIDC_ID_TOKEN, "eyJINLINETOKEN"),
                (ENV_ACCESS_KEY, "AKVALUE"),
                (ENV_SECRET_KEY, "SKVALUE"),
            ]),
            Some("http://meta"),
        );
        let shown = format!("{found:?}");
        for secret in ["eyJINLINETOKEN", "AKVALUE", "SKVALUE"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[tokio::test]
    async fn resolve_falls_through_a_refused_link_to_the_next_and_names_every_failure() {
        let issuer = TestIssuer::new("k");
        let identity = IdentityConfig {
            oidc: Some(OidcIssuer {
                issuer: "https://issuer".into(),
                audience: "aud".into(),
                jwks: Jwks::parse(issuer.jwks().to_string().as_bytes()).unwrap(),
            }),
            trust: Trust::default(),
            metadata_credentials: true,
            ..IdentityConfig::default()
        };
        let sim = simulator::spawn(simulator::Config::new("AK", "SK", "p").with_identity(identity)).unwrap();
        let now = jiff::Timestamp::now().as_second();
        let token = issuer.sign(&serde_json::json!({"iss": "https://issuer", "sub": "system:serviceaccount:a:b",
            "aud": "aud", "exp": now + 600}));
        let url = sim.url();
        let oidc = env(&[
            (ENV_OIDC_PROVIDER_URN, "urn:p"),
            (ENV_OIDC_AGENCY_URN, "urn:a"),
            (ENV_OIDC_ID_TOKEN, &token),
            (ENV_STS_ENDPOINT, &url),
        ]);
        let http = reqwest::Client::new();
        let found = sources(&oidc, Some(&url));
        let (source, obtained) = resolve(&http, &found).await.unwrap();
        assert_eq!(source.name(), "ECS metadata");
        assert!(matches!(obtained, Obtained::Temporary(_)));

        let missing_file = env(&[(ENV_IDP_ID, "idp"), (ENV_ID_TOKEN_FILE, "/nonexistent/token")]);
        let found = sources(missing_file, Some("http://127.0.0.1:9"));
        let error = resolve(&http, &found).await.unwrap_err().to_string();
        assert!(error.contains("IAM federation") && error.contains("/nonexistent/token"), "{error}");
        assert!(error.contains("ECS metadata: ECS metadata: request failed"), "{error}");
        let refused = resolve(&http, &sources(&oidc, Some("http://127.0.0.1:9"))).await.unwrap_err().to_string();
        assert!(refused.contains("STS assume-with-oidc: refused with HTTP 403"), "{refused}");
        assert!(!refused.contains(&token), "{refused}");
    }
}
