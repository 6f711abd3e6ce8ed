//! Where a client's credentials come from at each request: fixed keys (a Secret, the environment), or a
//! [`Provide`]r of temporary credentials (a ServiceAccount's identity, the operator's own chain) that is
//! asked before every attempt, so that no request is signed with credentials past their refresh time,
//! and is told when the service refused them, so that the next attempt gets fresh ones.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::credentials::Credentials;

/// Hands out current credentials. Errors say which link failed and why, never a token.
pub trait Provide: Send + Sync {
    fn credentials(&self) -> BoxFuture<'_, Result<Credentials, String>>;
    /// The service refused the credentials whose access key is `access_key` (revoked, expired early):
    /// forget them if they are still the current ones.
    fn refused<'a>(&'a self, access_key: &'a str) -> BoxFuture<'a, ()>;
}

/// A client's credentials.
#[derive(Clone)]
pub enum CredentialSource {
    Fixed(Credentials),
    Provided(Arc<dyn Provide>),
}

impl CredentialSource {
    /// The credentials to sign the next request with.
    pub async fn current(&self) -> Result<Credentials, String> {
        match self {
            Self::Fixed(credentials) => Ok(credentials.clone()),
            Self::Provided(provider) => provider.credentials().await,
        }
    }

    /// The fixed credentials, if these are fixed.
    pub fn fixed(&self) -> Option<&Credentials> {
        match self {
            Self::Fixed(credentials) => Some(credentials),
            Self::Provided(_) => None,
        }
    }

    /// True when the credentials change over time: a refusal (401) is then answered by fresh ones on the
    /// next attempt rather than by pausing the account.
    pub fn rotates(&self) -> bool {
        matches!(self, Self::Provided(_))
    }

    /// The service refused `credentials` (HTTP 401): a provider forgets them.
    pub async fn refused(&self, credentials: &Credentials) {
        if let Self::Provided(provider) = self {
            provider.refused(credentials.access_key()).await;
        }
    }
}

impl From<Credentials> for CredentialSource {
    fn from(credentials: Credentials) -> Self {
        Self::Fixed(credentials)
    }
}

impl std::fmt::Debug for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fixed(credentials) => f.debug_tuple("Fixed").field(credentials).finish(),
            Self::Provided(_) => f.write_str("Provided"),
        }
    }
}
