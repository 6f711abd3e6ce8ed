//! The simulator's keyless identities: its configuration (OIDC issuer, trust lists, pod-identity token,
//! metadata agency, credential lifetime), the temporary credentials and unscoped IAM tokens it has
//! issued, and the counters `/_sim/state` reports (`identities`: DCS calls per access key;
//! `refusals`: expired, bad signature, untrusted).
//!
//! Revocation: a temporary credential remembers the grant it came from (IdP id or agency URN, and
//! the subject). Once `PUT /_sim/trust` no longer trusts that subject, the next exchange fails *and*
//! every credential already issued under that grant is refused (401, counted as `untrusted`); it is
//! accepted again if trust is restored before it expires.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use rand::Rng;
use serde::Serialize;

use super::auth::Credentials;
use super::error::ApiError;
use super::jwt::OidcIssuer;
use super::store::Caller;
use super::trust::Trust;

/// How many issued credentials (and unscoped tokens) are remembered; the oldest expired go first.
const MAX_ISSUED: usize = 100_000;
/// How long an expired credential is still recognised (and refused as expired rather than unknown).
const REMEMBER_EXPIRED: SignedDuration = SignedDuration::from_secs(3600);

/// What the simulator is configured to trust and issue.
#[derive(Clone)]
pub struct IdentityConfig {
    /// The OIDC issuer, audience and keys id tokens must match (none: every id token is refused).
    pub oidc: Option<OidcIssuer>,
    pub trust: Trust,
    /// The token `POST /_sim/pod-identity` expects in `Authorization` (none: pod identity is off).
    pub pod_identity_token: Option<String>,
    /// Whether the metadata paths serve an agency's credentials.
    pub metadata_credentials: bool,
    /// The longest lifetime of an issued credential (default one hour).
    pub credential_lifetime: Duration,
}

impl std::fmt::Debug for IdentityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityConfig")
            .field("oidc", &self.oidc)
            .field("trust", &self.trust)
            .field("pod_identity_token", &self.pod_identity_token.as_ref().map(|_| "***"))
            .field("metadata_credentials", &self.metadata_credentials)
            .field("credential_lifetime", &self.credential_lifetime)
            .finish()
    }
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            oidc: None,
            trust: Trust::default(),
            pod_identity_token: None,
            metadata_credentials: false,
            credential_lifetime: Duration::from_secs(3600),
        }
    }
}

/// Where a temporary credential came from; IdP and agency grants are re-checked on every use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    Idp { id: String, subject: String },
    Agency { urn: String, subject: String },
    Metadata,
    PodIdentity,
}

impl Grant {
    /// The subject the credential was issued to, as `/_sim/log` shows it.
    pub fn subject(&self) -> &str {
        match self {
            Grant::Idp { subject, .. } | Grant::Agency { subject, .. } => subject,
            Grant::Metadata => "ecs-metadata",
            Grant::PodIdentity => "cce-pod-identity",
        }
    }
}

/// A temporary credential as issued.
#[derive(Clone)]
pub struct Issued {
    pub access: String,
    pub secret: String,
    pub security_token: String,
    pub expires_at: Timestamp,
}

struct Held {
    issued: Issued,
    grant: Grant,
}

struct Unscoped {
    idp: String,
    subject: String,
    expires_at: Timestamp,
}

/// Refusal counters (`refusals` in `/_sim/state`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Refusals {
    pub expired: u64,
    pub signature: u64,
    pub untrusted: u64,
}

/// Why a credential, token or call is refused, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Expired,
    Signature,
    Untrusted,
}

/// Issued credentials, unscoped tokens, metadata tokens and counters.
pub struct Registry {
    config: IdentityConfig,
    credentials: HashMap<String, Held>,
    unscoped: HashMap<String, Unscoped>,
    metadata_tokens: HashMap<String, Timestamp>,
    identities: BTreeMap<String, u64>,
    refusals: Refusals,
}

fn random_text(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
}

const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const MIXED: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A random opaque token (unscoped IAM token, metadata token).
fn opaque_token() -> String {
    random_text(64, MIXED)
}

fn bounded<V>(map: &mut HashMap<String, V>, expiry: impl Fn(&V) -> Timestamp, now: Timestamp) {
    if map.len() < MAX_ISSUED {
        return;
    }
    let horizon = now - REMEMBER_EXPIRED;
    map.retain(|_, v| expiry(v) > horizon);
    if map.len() >= MAX_ISSUED {
        let mut by_expiry: Vec<(Timestamp, String)> = map.iter().map(|(k, v)| (expiry(v), k.clone())).collect();
        by_expiry.sort();
        for (_, key) in by_expiry.into_iter().take(map.len() + 1 - MAX_ISSUED) {
            map.remove(&key);
        }
    }
}

impl Registry {
    pub fn new(config: IdentityConfig) -> Self {
        Self {
            config,
            credentials: HashMap::new(),
            unscoped: HashMap::new(),
            metadata_tokens: HashMap::new(),
            identities: BTreeMap::new(),
            refusals: Refusals::default(),
        }
    }

    pub fn config(&self) -> &IdentityConfig {
        &self.config
    }

    /// Replaces the trust lists (`PUT /_sim/trust`).
    pub fn set_trust(&mut self, trust: Trust) {
        self.config.trust = trust;
    }

    pub fn refuse(&mut self, refusal: Refusal) {
        match refusal {
            Refusal::Expired => self.refusals.expired += 1,
            Refusal::Signature => self.refusals.signature += 1,
            Refusal::Untrusted => self.refusals.untrusted += 1,
        }
    }

    pub fn refusals(&self) -> Refusals {
        self.refusals
    }

    pub fn identities(&self) -> &BTreeMap<String, u64> {
        &self.identities
    }

    /// Counts one authenticated DCS call made with `access_key`.
    pub fn count_call(&mut self, access_key: &str) {
        *self.identities.entry(access_key.to_owned()).or_default() += 1;
    }

    fn still_trusted(&self, grant: &Grant) -> bool {
        match grant {
            Grant::Idp { id, subject } => self.config.trust.idp_trusts(id, subject),
            Grant::Agency { urn, subject } => self.config.trust.agency_trusts(urn, subject),
            Grant::Metadata | Grant::PodIdentity => true,
        }
    }

    /// A lifetime capped at the configured one; `requested` seconds (if any, and positive) may shorten it.
    fn lifetime(&self, requested: Option<u64>) -> SignedDuration {
        let configured = self.config.credential_lifetime;
        let chosen = requested.filter(|s| *s > 0).map(Duration::from_secs).map_or(configured, |r| r.min(configured));
        SignedDuration::try_from(chosen).unwrap_or(SignedDuration::from_secs(3600))
    }

    /// Issues a temporary credential for `grant`, valid for the configured lifetime or `requested` seconds
    /// if shorter.
    pub fn issue(&mut self, grant: Grant, requested: Option<u64>, now: Timestamp) -> Issued {
        bounded(&mut self.credentials, |h| h.issued.expires_at, now);
        let issued = Issued {
            access: random_text(20, UPPER),
            secret: random_text(40, MIXED),
            security_token: random_text(256, MIXED),
            expires_at: now + self.lifetime(requested),
        };
        self.credentials.insert(issued.access.clone(), Held { issued: issued.clone(), grant });
        issued
    }

    /// Issues an unscoped IAM token for a subject an IdP trusts.
    pub fn issue_unscoped(&mut self, idp: String, subject: String, now: Timestamp) -> (String, Timestamp) {
        bounded(&mut self.unscoped, |u| u.expires_at, now);
        let token = opaque_token();
        let expires_at = now + self.lifetime(None);
        self.unscoped.insert(token.clone(), Unscoped { idp, subject, expires_at });
        (token, expires_at)
    }

    /// The grant of a live unscoped token, if its IdP still trusts its subject.
    pub fn redeem_unscoped(&mut self, token: &str, now: Timestamp) -> Result<Grant, Refusal> {
        let Some(unscoped) = self.unscoped.get(token) else {
            return Err(Refusal::Signature);
        };
        if unscoped.expires_at <= now {
            return Err(Refusal::Expired);
        }
        let grant = Grant::Idp { id: unscoped.idp.clone(), subject: unscoped.subject.clone() };
        if self.still_trusted(&grant) { Ok(grant) } else { Err(Refusal::Untrusted) }
    }

    /// Issues a metadata token valid for `ttl` (capped at six hours).
    pub fn issue_metadata_token(&mut self, ttl: Duration, now: Timestamp) -> String {
        bounded(&mut self.metadata_tokens, |t| *t, now);
        let ttl = SignedDuration::try_from(ttl.min(Duration::from_secs(6 * 3600))).unwrap_or_default();
        let token = opaque_token();
        self.metadata_tokens.insert(token.clone(), now + ttl);
        token
    }

    pub fn metadata_token_valid(&self, token: &str, now: Timestamp) -> bool {
        self.metadata_tokens.get(token).is_some_and(|expiry| *expiry > now)
    }

    /// The key a DCS call signed with temporary credential `access_key` must verify with, and who holds it:
    /// `None` when
    /// the key is not one the simulator issued (the configured permanent key applies), an error when
    /// the credential has expired, its security token is wrong or missing, or its grant is revoked.
    pub fn temporary(
        &mut self,
        access_key: &str,
        security_token: Option<&str>,
        now: Timestamp,
    ) -> Option<Result<(Credentials, Caller), ApiError>> {
        let held = self.credentials.get(access_key)?;
        let (outcome, refusal) = if security_token != Some(held.issued.security_token.as_str()) {
            (Err(ApiError::authentication("invalid security token")), Some(Refusal::Signature))
        } else if held.issued.expires_at <= now {
            (Err(ApiError::token_expired()), Some(Refusal::Expired))
        } else if !self.still_trusted(&held.grant) {
            (
                Err(ApiError::authentication("the subject of this credential is no longer trusted")),
                Some(Refusal::Untrusted),
            )
        } else {
            let credentials =
                Credentials { access_key: held.issued.access.clone(), secret_key: held.issued.secret.clone() };
            let caller =
                Caller { access_key: held.issued.access.clone(), subject: Some(held.grant.subject().to_owned()) };
            (Ok((credentials, caller)), None)
        };
        if let Some(refusal) = refusal {
            self.refuse(refusal);
        }
        Some(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(lifetime: u64) -> Registry {
        let mut trust = Trust::default();
        trust.add_idp("idp".into(), "system:serviceaccount:ns:*".into());
        Registry::new(IdentityConfig {
            trust,
            credential_lifetime: Duration::from_secs(lifetime),
            ..Default::default()
        })
    }

    fn grant() -> Grant {
        Grant::Idp { id: "idp".into(), subject: "system:serviceaccount:ns:sa".into() }
    }

    #[test]
    fn an_issued_credential_verifies_with_its_token_until_it_expires() {
        let mut r = registry(60);
        let now = Timestamp::now();
        let issued = r.issue(grant(), Some(21_600), now);
        assert_eq!(issued.expires_at, now + SignedDuration::from_secs(60));
        let (ok, caller) = r.temporary(&issued.access, Some(&issued.security_token), now).unwrap().unwrap();
        assert_eq!(ok.secret_key, issued.secret);
        assert_eq!(caller.subject.as_deref(), Some("system:serviceaccount:ns:sa"));
        let wrong = r.temporary(&issued.access, Some("other"), now).unwrap().unwrap_err();
        assert_eq!(wrong.code, "APIGW.0301");
        let later = now + SignedDuration::from_secs(61);
        let expired = r.temporary(&issued.access, Some(&issued.security_token), later).unwrap().unwrap_err();
        assert_eq!(expired.code, "APIGW.0307");
        assert_eq!(r.refusals(), Refusals { expired: 1, signature: 1, untrusted: 0 });
        assert!(r.temporary("NOTISSUED", None, now).is_none());
    }

    #[test]
    fn revoking_trust_refuses_issued_credentials_until_it_is_restored() {
        let mut r = registry(600);
        let now = Timestamp::now();
        let issued = r.issue(grant(), None, now);
        let before = r.config().trust.clone();
        r.set_trust(Trust::default());
        assert!(r.temporary(&issued.access, Some(&issued.security_token), now).unwrap().is_err());
        assert_eq!(r.refusals().untrusted, 1);
        r.set_trust(before);
        assert!(r.temporary(&issued.access, Some(&issued.security_token), now).unwrap().is_ok());
    }

    #[test]
    fn an_unscoped_token_redeems_only_while_live_and_trusted() {
        let mut r = registry(60);
        let now = Timestamp::now();
        let (token, _) = r.issue_unscoped("idp".into(), "system:serviceaccount:ns:sa".into(), now);
        assert_eq!(r.redeem_unscoped(&token, now), Ok(grant()));
        assert_eq!(r.redeem_unscoped(&token, now + SignedDuration::from_secs(61)), Err(Refusal::Expired));
        assert_eq!(r.redeem_unscoped("unknown", now), Err(Refusal::Signature));
        r.set_trust(Trust::default());
        assert_eq!(r.redeem_unscoped(&token, now), Err(Refusal::Untrusted));
    }
}
