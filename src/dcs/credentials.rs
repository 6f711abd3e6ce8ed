//! Access-key credentials. Nothing in here prints a key: `Debug` shows only whether a value is set.

use secrecy::{ExposeSecret, SecretString};

/// Environment variable names the official SDKs read (and so does the operator, for its defaults).
pub const ENV_ACCESS_KEY: &str = "HUAWEICLOUD_SDK_AK";
pub const ENV_SECRET_KEY: &str = "HUAWEICLOUD_SDK_SK";
pub const ENV_SECURITY_TOKEN: &str = "HUAWEICLOUD_SDK_SECURITY_TOKEN";
pub const ENV_PROJECT_ID: &str = "HUAWEICLOUD_SDK_PROJECT_ID";

/// An AK/SK pair, optionally temporary (with a security token).
#[derive(Clone)]
pub struct Credentials {
    access_key: SecretString,
    secret_key: SecretString,
    security_token: Option<SecretString>,
}

impl Credentials {
    /// Permanent AK/SK credentials.
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Self {
            access_key: SecretString::from(access_key.into()),
            secret_key: SecretString::from(secret_key.into()),
            security_token: None,
        }
    }

    /// Temporary credentials: the token travels in the signed `X-Security-Token` header.
    pub fn with_security_token(mut self, token: impl Into<String>) -> Self {
        self.security_token = Some(SecretString::from(token.into()));
        self
    }

    /// Reads `HUAWEICLOUD_SDK_AK` / `_SK` / `_SECURITY_TOKEN`; `None` unless both keys are set.
    pub fn from_env() -> Option<Self> {
        let non_empty = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        let creds = Self::new(non_empty(ENV_ACCESS_KEY)?, non_empty(ENV_SECRET_KEY)?);
        Some(match non_empty(ENV_SECURITY_TOKEN) {
            Some(token) => creds.with_security_token(token),
            None => creds,
        })
    }

    pub(crate) fn access_key(&self) -> &str {
        self.access_key.expose_secret()
    }

    pub(crate) fn secret_key(&self) -> &str {
        self.secret_key.expose_secret()
    }

    pub(crate) fn security_token(&self) -> Option<&str> {
        self.security_token.as_ref().map(|t| t.expose_secret())
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &"***")
            .field("secret_key", &"***")
            .field("security_token", &self.security_token.as_ref().map(|_| "***"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_any_key() {
        let c = Credentials::new("AKVALUE123", "SKVALUE456").with_security_token("TOKEN789");
        let shown = format!("{c:?}");
        for secret in ["AKVALUE123", "SKVALUE456", "TOKEN789"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
