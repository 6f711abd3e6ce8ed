//! Verification of OIDC id tokens (JWTs) as IAM and STS do it: an RS256 signature by one of the
//! issuer's keys (a JWKS document, e.g. a kube-apiserver's `/openid/v1/jwks`), then `iss`, `aud`,
//! `exp` and `nbf`. Only the subject comes back; nothing here keeps or prints the token.

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use serde::Deserialize;
use thiserror::Error;

/// How far `exp` / `nbf` may be off the simulator's clock.
const LEEWAY_SECONDS: i64 = 5;

/// Why an id token is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JwtError {
    #[error("the id token is not a well-formed JWT")]
    Malformed,
    #[error("the id token is signed with {0}, only RS256 is accepted")]
    Algorithm(String),
    #[error("the id token's key is not among the issuer's keys")]
    UnknownKey,
    #[error("the id token's signature does not verify")]
    Signature,
    #[error("the id token's issuer is not the trusted issuer")]
    Issuer,
    #[error("the id token's audience does not include the expected audience")]
    Audience,
    #[error("the id token has expired")]
    Expired,
    #[error("the id token is not valid yet")]
    NotYetValid,
}

/// Why a JWKS document is refused.
#[derive(Debug, Error)]
pub enum JwksError {
    #[error("JWKS is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("JWKS key {0} has no usable RSA modulus and exponent")]
    Key(usize),
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

/// One RSA public key of the issuer.
#[derive(Debug, Clone)]
struct RsaKey {
    kid: Option<String>,
    n: Vec<u8>,
    e: Vec<u8>,
}

/// The issuer's RSA keys (non-RSA keys of the document are ignored).
#[derive(Debug, Clone, Default)]
pub struct Jwks {
    keys: Vec<RsaKey>,
}

impl Jwks {
    /// Parses a JWKS document (`{"keys": [{"kty": "RSA", "kid", "n", "e"}, ...]}`).
    pub fn parse(json: &[u8]) -> Result<Self, JwksError> {
        let document: JwksDocument = serde_json::from_slice(json)?;
        let mut keys = Vec::new();
        for (index, jwk) in document.keys.into_iter().enumerate() {
            if jwk.kty != "RSA" {
                continue;
            }
            let decode = |v: Option<String>| v.and_then(|v| URL_SAFE_NO_PAD.decode(v.trim_end_matches('=')).ok());
            match (decode(jwk.n), decode(jwk.e)) {
                (Some(n), Some(e)) if !n.is_empty() && !e.is_empty() => keys.push(RsaKey { kid: jwk.kid, n, e }),
                _ => return Err(JwksError::Key(index)),
            }
        }
        Ok(Self { keys })
    }
}

/// The trusted OIDC issuer: what a verified id token must carry and the keys that sign it.
#[derive(Debug, Clone)]
pub struct OidcIssuer {
    pub issuer: String,
    pub audience: String,
    pub jwks: Jwks,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: Audience,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
}

fn decode_part<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, JwtError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

/// Verifies `token` and answers its subject (`sub`).
pub fn verify(token: &str, expected: &OidcIssuer, now: Timestamp) -> Result<String, JwtError> {
    let mut parts = token.trim().split('.');
    let (Some(header), Some(claims), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let head: Header = decode_part(header)?;
    if head.alg != "RS256" {
        return Err(JwtError::Algorithm(head.alg.chars().take(16).collect()));
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| JwtError::Malformed)?;
    let candidates: Vec<&RsaKey> = match &head.kid {
        Some(kid) => expected.jwks.keys.iter().filter(|k| k.kid.as_deref() == Some(kid.as_str())).collect(),
        None => expected.jwks.keys.iter().collect(),
    };
    if candidates.is_empty() {
        return Err(JwtError::UnknownKey);
    }
    let signed = &token.trim().as_bytes()[..header.len() + 1 + claims.len()];
    let verified = candidates.iter().any(|key| {
        RsaPublicKeyComponents { n: key.n.as_slice(), e: key.e.as_slice() }
            .verify(&RSA_PKCS1_2048_8192_SHA256, signed, &signature)
            .is_ok()
    });
    if !verified {
        return Err(JwtError::Signature);
    }
    let claims: Claims = decode_part(claims)?;
    if claims.iss != expected.issuer {
        return Err(JwtError::Issuer);
    }
    let audience_matches = match &claims.aud {
        Audience::One(a) => *a == expected.audience,
        Audience::Many(all) => all.contains(&expected.audience),
    };
    if !audience_matches {
        return Err(JwtError::Audience);
    }
    let now = now.as_second();
    if claims.exp + LEEWAY_SECONDS <= now {
        return Err(JwtError::Expired);
    }
    if claims.nbf.is_some_and(|nbf| nbf - LEEWAY_SECONDS > now) {
        return Err(JwtError::NotYetValid);
    }
    Ok(claims.sub)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
    use serde_json::{Value, json};

    /// A test issuer: an RSA key, its JWKS and a signer of arbitrary claims.
    pub(crate) struct TestIssuer {
        key: KeyPair,
        pub kid: String,
    }

    impl TestIssuer {
        pub(crate) fn new(kid: &str) -> Self {
            Self { key: KeyPair::generate(KeySize::Rsa2048).unwrap(), kid: kid.to_owned() }
        }

        pub(crate) fn jwks(&self) -> Value {
            let (n, e) = rsa_public_key_components(self.key.public_key().as_ref());
            json!({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e)}]})
        }

        pub(crate) fn sign(&self, claims: &Value) -> String {
            let header = json!({"alg": "RS256", "kid": self.kid, "typ": "JWT"});
            let signed = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let mut signature = vec![0; self.key.public_modulus_len()];
            self.key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signed.as_bytes(), &mut signature).unwrap();
            format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
        }
    }

    /// `n` and `e` of a DER `RSAPublicKey` (PKCS #1: a SEQUENCE of two INTEGERs).
    fn rsa_public_key_components(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
        fn element(der: &[u8], tag: u8) -> (&[u8], &[u8]) {
            assert_eq!(der[0], tag);
            let (len, header) = match der[1] {
                short if short < 0x80 => (short as usize, 2),
                long => {
                    let octets = (long & 0x7f) as usize;
                    (der[2..2 + octets].iter().fold(0, |acc, b| (acc << 8) | *b as usize), 2 + octets)
                }
            };
            (&der[header..header + len], &der[header + len..])
        }
        let (sequence, _) = element(der, 0x30);
        let (n, rest) = element(sequence, 0x02);
        let (e, _) = element(rest, 0x02);
        let strip = |v: &[u8]| v.iter().skip_while(|b| **b == 0).copied().collect();
        (strip(n), strip(e))
    }

    const ISSUER: &str = "https://kubernetes.default.svc";

    fn expectations(issuer: &TestIssuer) -> OidcIssuer {
        OidcIssuer {
            issuer: ISSUER.into(),
            audience: "dcs".into(),
            jwks: Jwks::parse(issuer.jwks().to_string().as_bytes()).unwrap(),
        }
    }

    fn claims(now: i64) -> Value {
        json!({"iss": ISSUER, "sub": "system:serviceaccount:ns:sa", "aud": ["dcs"], "exp": now + 600, "nbf": now - 1})
    }

    #[test]
    fn a_token_signed_by_the_issuer_for_the_audience_yields_its_subject() {
        let issuer = TestIssuer::new("k1");
        let now = Timestamp::now();
        let token = issuer.sign(&claims(now.as_second()));
        assert_eq!(verify(&token, &expectations(&issuer), now), Ok("system:serviceaccount:ns:sa".to_owned()));
    }

    #[test]
    fn a_token_signed_by_another_key_is_refused_for_its_signature() {
        let issuer = TestIssuer::new("k1");
        let impostor = TestIssuer::new("k1");
        let now = Timestamp::now();
        let token = impostor.sign(&claims(now.as_second()));
        assert_eq!(verify(&token, &expectations(&issuer), now), Err(JwtError::Signature));
    }

    #[test]
    fn wrong_issuer_audience_expiry_and_algorithm_are_each_refused() {
        let issuer = TestIssuer::new("k1");
        let expected = expectations(&issuer);
        let now = Timestamp::now();
        let with = |key: &str, value: Value| {
            let mut c = claims(now.as_second());
            c[key] = value;
            issuer.sign(&c)
        };
        assert_eq!(verify(&with("iss", json!("https://other")), &expected, now), Err(JwtError::Issuer));
        assert_eq!(verify(&with("aud", json!("other")), &expected, now), Err(JwtError::Audience));
        assert_eq!(verify(&with("exp", json!(now.as_second() - 60)), &expected, now), Err(JwtError::Expired));
        assert_eq!(verify(&with("nbf", json!(now.as_second() + 60)), &expected, now), Err(JwtError::NotYetValid));
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string()),
            URL_SAFE_NO_PAD.encode(claims(now.as_second()).to_string())
        );
        assert_eq!(verify(&unsigned, &expected, now), Err(JwtError::Algorithm("none".into())));
        assert_eq!(verify("not-a-jwt", &expected, now), Err(JwtError::Malformed));
    }

    #[test]
    fn a_token_whose_key_id_the_issuer_does_not_publish_is_refused() {
        let issuer = TestIssuer::new("k1");
        let other = TestIssuer::new("k2");
        let now = Timestamp::now();
        assert_eq!(
            verify(&other.sign(&claims(now.as_second())), &expectations(&issuer), now),
            Err(JwtError::UnknownKey)
        );
    }
}
