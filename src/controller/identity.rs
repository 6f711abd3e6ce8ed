//! Keyless credentials per namespace (`spec.identity`, design.md §2): the operator requests a short-lived
//! token for the named ServiceAccount (TokenRequest API, the operator's audience) and exchanges it at IAM
//! (OIDC federation) or STS (assume an agency) for temporary credentials. Each identity (namespace,
//! ServiceAccount, trust, endpoint) has its own cache, refreshed before expiry, and serves only the
//! resources that name it. No token or key is ever logged or reported: errors name the ServiceAccount,
//! the link and the service's answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::PostParams;

use crate::crd::IdentitySpec;
use crate::dcs::keyless::{self, AgencyRequest, ExchangeError};
use crate::dcs::{CachedCredentials, Credentials, Provide, TemporaryCredentials};

/// The audience of the tokens the operator requests, unless `--token-audience` says otherwise.
pub const DEFAULT_AUDIENCE: &str = "dcs-migration-operator";
/// Lifetime asked of a ServiceAccount token: the API server's minimum; it is used once, at once.
const TOKEN_SECONDS: i64 = 600;
/// Lifetime asked of the temporary credentials (the SDK's STS default; the service may shorten it).
const CREDENTIAL_LIFETIME: Duration = Duration::from_secs(3600);
/// Identities nobody asked for in this long are forgotten.
const IDLE: Duration = Duration::from_secs(30 * 60);

/// How a ServiceAccount's token becomes credentials.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Exchange {
    /// IAM OIDC federation through identity provider `idp_id`.
    Federation { iam_endpoint: String, idp_id: String },
    /// STS: assume agency `agency_urn` trusting `provider_urn`.
    Agency { sts_endpoint: String, provider_urn: String, agency_urn: String },
}

/// One cloud identity: a ServiceAccount and how it is exchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdentityKey {
    pub namespace: String,
    pub service_account: String,
    pub exchange: Exchange,
}

impl IdentityKey {
    /// The identity `spec` names in `namespace`; `endpoint` is the DCS endpoint override, the default of the
    /// IAM and STS endpoints (the simulator and private clouds serve all three at one address).
    pub fn of(spec: &IdentitySpec, namespace: &str, region: &str, endpoint: Option<&str>) -> Self {
        let default = |public: String| endpoint.map(str::to_owned).unwrap_or(public);
        let exchange = match (&spec.idp_id, &spec.provider_urn, &spec.agency_urn) {
            (Some(idp_id), _, _) => Exchange::Federation {
                iam_endpoint: spec
                    .iam_endpoint
                    .clone()
                    .unwrap_or_else(|| default(format!("https://iam.{region}.myhuaweicloud.com"))),
                idp_id: idp_id.clone(),
            },
            (None, provider_urn, agency_urn) => Exchange::Agency {
                sts_endpoint: spec
                    .sts_endpoint
                    .clone()
                    .unwrap_or_else(|| default(format!("https://sts.{region}.myhuaweicloud.com"))),
                provider_urn: provider_urn.clone().unwrap_or_default(),
                agency_urn: agency_urn.clone().unwrap_or_default(),
            },
        };
        Self { namespace: namespace.to_owned(), service_account: spec.service_account_name.clone(), exchange }
    }

    /// How status and logs name it (no secret in it).
    pub fn describe(&self) -> String {
        let via = match &self.exchange {
            Exchange::Federation { idp_id, .. } => format!("IAM identity provider {idp_id}"),
            Exchange::Agency { agency_urn, .. } => format!("agency {agency_urn}"),
        };
        format!("ServiceAccount {}/{} through {via}", self.namespace, self.service_account)
    }

    /// The endpoints this identity's exchange reaches.
    pub fn exchange_endpoint(&self) -> &str {
        match &self.exchange {
            Exchange::Federation { iam_endpoint, .. } => iam_endpoint,
            Exchange::Agency { sts_endpoint, .. } => sts_endpoint,
        }
    }
}

/// Why an identity gave no credentials.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("spec.identity: cannot request a token for ServiceAccount {namespace}/{name}: {reason}")]
    Token { namespace: String, name: String, reason: String, transient: bool },
    #[error("spec.identity: {identity}: {source}")]
    Exchange {
        identity: String,
        #[source]
        source: ExchangeError,
    },
}

impl IdentityError {
    /// True when trying again may help by itself (API server or cloud service unreachable or failing).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Token { transient, .. } => *transient,
            Self::Exchange { source, .. } => match source {
                ExchangeError::Transport { .. } => true,
                ExchangeError::Refused { status, .. } => *status >= 500 || *status == 429,
                _ => false,
            },
        }
    }
}

/// One identity's token source, exchange and cache.
pub struct Identity {
    key: IdentityKey,
    service_accounts: Api<ServiceAccount>,
    http: reqwest::Client,
    audience: String,
    cache: CachedCredentials,
}

impl Identity {
    async fn token(&self) -> Result<String, IdentityError> {
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: vec![self.audience.clone()],
                expiration_seconds: Some(TOKEN_SECONDS),
                ..Default::default()
            },
            ..Default::default()
        };
        let refused = |reason: String, transient: bool| IdentityError::Token {
            namespace: self.key.namespace.clone(),
            name: self.key.service_account.clone(),
            reason,
            transient,
        };
        let answer = self
            .service_accounts
            .create_token_request(&self.key.service_account, &PostParams::default(), &request)
            .await
            .map_err(|e| match &e {
                kube::Error::Api(status) if status.code == 404 => refused("no such ServiceAccount".into(), false),
                kube::Error::Api(status) if status.code == 403 => refused(status.message.clone(), false),
                _ => refused(e.to_string(), true),
            })?;
        answer
            .status
            .map(|s| s.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| refused("no token in the answer".into(), true))
    }

    /// A fresh token, exchanged.
    async fn fetch(&self) -> Result<TemporaryCredentials, IdentityError> {
        let token = self.token().await?;
        let exchanged = match &self.key.exchange {
            Exchange::Federation { iam_endpoint, idp_id } => {
                keyless::iam_federation(&self.http, iam_endpoint, idp_id, &token, CREDENTIAL_LIFETIME).await
            }
            Exchange::Agency { sts_endpoint, provider_urn, agency_urn } => {
                let agency = AgencyRequest {
                    provider_urn: provider_urn.clone(),
                    agency_urn: agency_urn.clone(),
                    session_name: session_name(&self.key),
                    duration: CREDENTIAL_LIFETIME,
                };
                keyless::assume_agency_with_oidc(&self.http, sts_endpoint, &agency, &token).await
            }
        };
        let temporary =
            exchanged.map_err(|source| IdentityError::Exchange { identity: self.key.describe(), source })?;
        tracing::info!(
            identity = %self.key.describe(),
            lifetime_s = temporary.lifetime.as_secs(),
            "temporary credentials obtained"
        );
        Ok(temporary)
    }

    /// The current credentials, fetched when none are cached or they are due for refresh.
    pub async fn current(&self) -> Result<Credentials, IdentityError> {
        self.cache.get(Timestamp::now(), || self.fetch()).await.map(|t| t.credentials)
    }
}

impl Provide for Identity {
    fn credentials(&self) -> BoxFuture<'_, Result<Credentials, String>> {
        Box::pin(async move { self.current().await.map_err(|e| e.to_string()) })
    }

    fn refused<'a>(&'a self, access_key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.cache.invalidate_if(access_key))
    }
}

/// The STS session name (what the cloud's audit trail shows): `<namespace>.<serviceaccount>`, cut to the
/// 64 characters STS allows.
fn session_name(key: &IdentityKey) -> String {
    format!("{}.{}", key.namespace, key.service_account).chars().take(64).collect()
}

/// Every identity in use.
pub struct Identities {
    client: kube::Client,
    http: reqwest::Client,
    audience: String,
    known: Mutex<HashMap<IdentityKey, (Arc<Identity>, std::time::Instant)>>,
}

impl Identities {
    pub fn new(client: kube::Client, audience: String) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .build()?;
        Ok(Self { client, http, audience, known: Mutex::new(HashMap::new()) })
    }

    /// The identity for `key`, created on first use.
    pub fn get(&self, key: IdentityKey) -> Arc<Identity> {
        let now = std::time::Instant::now();
        let mut known = self.known.lock().expect("identities lock");
        known.retain(|_, (identity, used)| Arc::strong_count(identity) > 1 || now.duration_since(*used) < IDLE);
        let entry = known.entry(key.clone()).or_insert_with(|| {
            let identity = Identity {
                service_accounts: Api::namespaced(self.client.clone(), &key.namespace),
                key,
                http: self.http.clone(),
                audience: self.audience.clone(),
                cache: CachedCredentials::new(),
            };
            (Arc::new(identity), now)
        });
        entry.1 = now;
        entry.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(idp: Option<&str>, agency: Option<&str>) -> IdentitySpec {
        IdentitySpec {
            service_account_name: "migrator".into(),
            idp_id: idp.map(Into::into),
            provider_urn: agency.map(|_| "iam::1:identity-provider:k8s".into()),
            agency_urn: agency.map(Into::into),
            iam_endpoint: None,
            sts_endpoint: None,
        }
    }

    #[test]
    fn exchange_endpoints_default_to_the_dcs_endpoint_override_else_the_regions_public_ones() {
        let federated = IdentityKey::of(&spec(Some("idp"), None), "team-a", "eu-de", Some("http://127.0.0.1:8080"));
        assert_eq!(federated.exchange_endpoint(), "http://127.0.0.1:8080");
        let agency = IdentityKey::of(&spec(None, Some("iam::1:agency:a")), "team-a", "cn-north-4", None);
        assert_eq!(agency.exchange_endpoint(), "https://sts.cn-north-4.myhuaweicloud.com");
        assert_eq!(agency.describe(), "ServiceAccount team-a/migrator through agency iam::1:agency:a");
        let mut explicit = spec(Some("idp"), None);
        explicit.iam_endpoint = Some("https://iam.example".into());
        assert_eq!(
            IdentityKey::of(&explicit, "ns", "r", Some("http://127.0.0.1:1")).exchange_endpoint(),
            "https://iam.example"
        );
    }

    #[test]
    fn the_sts_session_name_names_namespace_and_service_account_within_64_characters() {
        let key = IdentityKey::of(&spec(None, Some("iam::1:agency:a")), &"n".repeat(63), "r", None);
        assert_eq!(session_name(&key).len(), 64);
        let short = IdentityKey::of(&spec(None, Some("iam::1:agency:a")), "payments", "r", None);
        assert_eq!(session_name(&short), "payments.migrator");
    }
}
