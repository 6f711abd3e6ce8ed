//! Credentials and Redis passwords from Kubernetes Secrets, read when needed and never stored in
//! status. Errors name the Secret and key, never a value.

use super::identity::{Identities, IdentityKey};
use super::secret_cache::NamespaceSecrets;
use super::tenancy::{LABEL_DEFAULT_CREDENTIALS, Tenancy};
use crate::crd::{RedisMigrationSpec, SecretKeyRef};
use crate::dcs::{CredentialSource, Credentials, Endpoint};
use k8s_openapi::api::core::v1::Secret;
use secrecy::SecretString;
use std::sync::Arc;

/// Keys of a credentials Secret.
pub const KEY_ACCESS_KEY: &str = "accessKey";
pub const KEY_SECRET_KEY: &str = "secretKey";
pub const KEY_SECURITY_TOKEN: &str = "securityToken";
pub const KEY_PROJECT_ID: &str = "projectId";

/// The operator's own defaults: credentials from its environment (keys, or the SDK's keyless chain), the
/// endpoint allow-list.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    pub credentials: Option<CredentialSource>,
    pub project_id: Option<String>,
    /// Host patterns (`dcs.*.myhuaweicloud.com`, `dcs.*.otc.t-systems.com`, `127.0.0.1`), matched against the
    /// endpoint's host only (`Endpoint::allowed_by`); empty = any.
    pub allowed_endpoints: Vec<String>,
    /// The namespaces that may use `credentials` (labelled `dcs.migration.io/default-credentials: "true"`).
    pub tenancy: Tenancy,
}

/// Why credentials or a password could not be had.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialError {
    #[error("Secret {namespace}/{name} not found")]
    SecretNotFound { namespace: String, name: String },
    #[error("Secret {namespace}/{name} has no key {key:?}")]
    KeyMissing { namespace: String, name: String, key: String },
    #[error("Secret {namespace}/{name} key {key:?} is not UTF-8 text")]
    NotText { namespace: String, name: String, key: String },
    #[error(
        "no credentials: set spec.credentialsSecretRef or spec.identity, or give the operator default credentials (HUAWEICLOUD_SDK_AK / HUAWEICLOUD_SDK_SK, or a keyless identity)"
    )]
    NoCredentials,
    #[error("the operator's default credentials: {0}")]
    DefaultChain(String),
    #[error("{message}")]
    Identity { message: String, transient: bool },
    #[error(
        "namespace {namespace} is not allowed to use the operator's default credentials (label {LABEL_DEFAULT_CREDENTIALS}=true): set spec.credentialsSecretRef"
    )]
    DefaultCredentialsNotAllowed { namespace: String },
    #[error(transparent)]
    NamespaceLabelsUnknown(#[from] super::tenancy::LabelsUnknown),
    #[error(
        "no project id: set spec.projectId, the projectId key of the credentials Secret, or the operator's HUAWEICLOUD_SDK_PROJECT_ID"
    )]
    NoProjectId,
    #[error("endpoint host {host:?} is not in the operator's allowed endpoints")]
    EndpointNotAllowed { host: String },
    #[error("spec.identity: {0}")]
    InvalidIdentityEndpoint(String),
    #[error("spec.endpoint: {0}")]
    InvalidEndpoint(String),
    #[error("cannot read Secret {namespace}/{name}: {reason}")]
    Unreadable { namespace: String, name: String, reason: String },
}

impl CredentialError {
    /// True when reading failed for a reason that may pass by itself (API server unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unreadable { .. } | Self::Identity { transient: true, .. })
    }
}

/// Where and as whom to call the API for one resource.
#[derive(Debug, Clone)]
pub struct AccountAccess {
    pub endpoint: Endpoint,
    pub project_id: String,
    pub credentials: CredentialSource,
    /// Who provides credentials that change over time (a keyless identity, the operator's chain): the
    /// account is theirs, whatever keys they hand out.
    pub principal: Option<String>,
}

/// Reads one Secret; `None` when it does not exist.
async fn read_secret(
    secrets: &NamespaceSecrets<'_>,
    namespace: &str,
    name: &str,
) -> Result<Arc<Secret>, CredentialError> {
    match secrets.get(name).await {
        Ok(Some(secret)) => Ok(secret),
        Ok(None) => Err(CredentialError::SecretNotFound { namespace: namespace.into(), name: name.into() }),
        Err(e) => {
            Err(CredentialError::Unreadable { namespace: namespace.into(), name: name.into(), reason: e.to_string() })
        }
    }
}

fn value(secret: &Secret, namespace: &str, key: &str) -> Result<Option<String>, CredentialError> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let from_data = secret.data.as_ref().and_then(|d| d.get(key)).map(|bytes| {
        String::from_utf8(bytes.0.clone()).map_err(|_| CredentialError::NotText {
            namespace: namespace.into(),
            name: name.clone(),
            key: key.into(),
        })
    });
    let text = match from_data {
        Some(result) => Some(result?),
        None => secret.string_data.as_ref().and_then(|d| d.get(key)).cloned(),
    };
    Ok(text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()))
}

fn required(secret: &Secret, namespace: &str, key: &str) -> Result<String, CredentialError> {
    value(secret, namespace, key)?.ok_or_else(|| CredentialError::KeyMissing {
        namespace: namespace.into(),
        name: secret.metadata.name.clone().unwrap_or_default(),
        key: key.into(),
    })
}

/// The endpoint `url` when the allow-list admits it.
fn allowed(url: &Endpoint, defaults: &Defaults) -> Result<(), CredentialError> {
    if url.allowed_by(&defaults.allowed_endpoints) {
        Ok(())
    } else {
        Err(CredentialError::EndpointNotAllowed { host: url.host().to_owned() })
    }
}

/// The credentials of `spec.identity`, obtained now (cached while fresh): a refused exchange stops the
/// resource here, before any DCS call.
async fn keyless(
    spec: &RedisMigrationSpec,
    namespace: &str,
    defaults: &Defaults,
    identities: &Identities,
) -> Result<Option<(CredentialSource, String)>, CredentialError> {
    let Some(identity) = &spec.identity else { return Ok(None) };
    let key = IdentityKey::of(identity, namespace, &spec.region, spec.endpoint.as_deref());
    let exchange = Endpoint::parse(key.exchange_endpoint())
        .map_err(|e| CredentialError::InvalidIdentityEndpoint(e.to_string()))?;
    allowed(&exchange, defaults)?;
    let principal = key.describe();
    let identity = identities.get(key);
    identity
        .current()
        .await
        .map_err(|e| CredentialError::Identity { transient: e.is_transient(), message: e.to_string() })?;
    Ok(Some((CredentialSource::Provided(identity), principal)))
}

/// The operator's default credentials, for a namespace allowed to use them (the chain is tried on first use).
async fn default_credentials(
    namespace: &str,
    defaults: &Defaults,
) -> Result<(CredentialSource, Option<String>), CredentialError> {
    let credentials = defaults.credentials.clone().ok_or(CredentialError::NoCredentials)?;
    if !defaults.tenancy.allows_default_credentials(namespace).await? {
        return Err(CredentialError::DefaultCredentialsNotAllowed { namespace: namespace.into() });
    }
    if credentials.fixed().is_some() {
        return Ok((credentials, None));
    }
    credentials.current().await.map_err(CredentialError::DefaultChain)?;
    Ok((credentials, Some("the operator's default credential chain".to_owned())))
}

/// Resolves endpoint, project and credentials for a resource.
pub async fn resolve(
    spec: &RedisMigrationSpec,
    namespace: &str,
    secrets: &NamespaceSecrets<'_>,
    defaults: &Defaults,
    identities: &Identities,
) -> Result<AccountAccess, CredentialError> {
    let endpoint = Endpoint::resolve(&spec.region, spec.endpoint.as_deref())
        .map_err(|e| CredentialError::InvalidEndpoint(e.to_string()))?;
    allowed(&endpoint, defaults)?;
    if let Some((credentials, principal)) = keyless(spec, namespace, defaults, identities).await? {
        let project_id = spec.project_id.clone().ok_or(CredentialError::NoProjectId)?;
        return Ok(AccountAccess { endpoint, project_id, credentials, principal: Some(principal) });
    }
    let (credentials, secret_project, principal) = match &spec.credentials_secret_ref {
        Some(reference) => {
            let secret = read_secret(secrets, namespace, &reference.name).await?;
            let mut credentials = Credentials::new(
                required(&secret, namespace, KEY_ACCESS_KEY)?,
                required(&secret, namespace, KEY_SECRET_KEY)?,
            );
            if let Some(token) = value(&secret, namespace, KEY_SECURITY_TOKEN)? {
                credentials = credentials.with_security_token(token);
            }
            (credentials.into(), value(&secret, namespace, KEY_PROJECT_ID)?, None)
        }
        None => {
            let (credentials, principal) = default_credentials(namespace, defaults).await?;
            (credentials, None, principal)
        }
    };
    let project_id = spec
        .project_id
        .clone()
        .or(secret_project)
        .or_else(|| defaults.project_id.clone())
        .ok_or(CredentialError::NoProjectId)?;
    Ok(AccountAccess { endpoint, project_id, credentials, principal })
}

/// Reads a Redis password referenced by the spec.
pub async fn password(
    reference: &SecretKeyRef,
    namespace: &str,
    secrets: &NamespaceSecrets<'_>,
) -> Result<SecretString, CredentialError> {
    let secret = read_secret(secrets, namespace, &reference.name).await?;
    required(&secret, namespace, &reference.key).map(SecretString::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_of_default_credentials_names_the_namespace_and_the_label() {
        let e = CredentialError::DefaultCredentialsNotAllowed { namespace: "team-b".into() };
        assert_eq!(
            e.to_string(),
            "namespace team-b is not allowed to use the operator's default credentials \
             (label dcs.migration.io/default-credentials=true): set spec.credentialsSecretRef"
        );
    }

    #[test]
    fn credential_errors_name_secret_and_key_only() {
        let e =
            CredentialError::KeyMissing { namespace: "ns".into(), name: "dcs-creds".into(), key: "secretKey".into() };
        assert_eq!(e.to_string(), "Secret ns/dcs-creds has no key \"secretKey\"");
    }
}
