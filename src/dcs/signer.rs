//! SDK-HMAC-SHA256 request signing, byte for byte as `huaweicloudsdkcore.signer.Signer` does it
//! (see `dcs-api.md` §8). The same functions verify signatures in the simulator.

use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// The algorithm name that starts the string to sign and the `Authorization` header.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// Header carrying the signing time, `%Y%m%dT%H%M%SZ`.
pub const DATE_HEADER: &str = "X-Sdk-Date";
/// Header carrying the temporary-credential token; it is signed like any other header.
pub const SECURITY_TOKEN_HEADER: &str = "X-Security-Token";
/// SHA-256 of the empty payload.
pub const EMPTY_PAYLOAD_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Everything but `A–Z a–z 0–9 - _ . ~` is percent-encoded (upper-case hex), in path segments,
/// query keys and query values alike.
const SIGNING_ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes one path segment or query component the way the SDK does (`quote(v, safe='~')`).
pub fn encode_component(raw: &str) -> String {
    utf8_percent_encode(raw, SIGNING_ENCODE).to_string()
}

/// The parts of an HTTP request that the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignableRequest<'a> {
    /// Upper-case HTTP method.
    pub method: &'a str,
    /// The path as sent on the wire (percent-encoded segments allowed).
    pub path: &'a str,
    /// Decoded query parameters, in any order.
    pub query: &'a [(String, String)],
    /// Header names and values; names in any case. Must include `Host` and `X-Sdk-Date`.
    pub headers: &'a [(String, String)],
    /// The exact body bytes (empty for no body).
    pub body: &'a [u8],
}

/// The intermediate values and the result of signing one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub canonical_request: String,
    pub string_to_sign: String,
    pub signed_headers: String,
    /// Lower-case hex HMAC-SHA256.
    pub signature: String,
}

impl Signature {
    /// The `Authorization` header value for this signature and access key.
    pub fn authorization(&self, access_key: &str) -> String {
        format!("{ALGORITHM} Access={access_key}, SignedHeaders={}, Signature={}", self.signed_headers, self.signature)
    }
}

/// CanonicalURI: decode once, split on `/`, encode each segment, always end with `/`.
pub fn canonical_uri(path: &str) -> String {
    let decoded = percent_decode_str(path).decode_utf8_lossy();
    let mut out = String::with_capacity(decoded.len() + 8);
    for (i, segment) in decoded.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.extend(utf8_percent_encode(segment, SIGNING_ENCODE));
    }
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// CanonicalQuery: sorted by raw key then raw value, both encoded, joined with `&`. This is also
/// the exact query string the SDK puts on the wire.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = query.iter().collect();
    sorted.sort();
    let mut out = String::new();
    for (i, (k, v)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.extend(utf8_percent_encode(k, SIGNING_ENCODE));
        out.push('=');
        out.extend(utf8_percent_encode(v, SIGNING_ENCODE));
    }
    out
}

/// Lower-case hex SHA-256 of a payload; the empty payload has a fixed hash.
pub fn payload_hash(body: &[u8]) -> String {
    if body.is_empty() { EMPTY_PAYLOAD_SHA256.to_owned() } else { hex::encode(Sha256::digest(body)) }
}

/// Builds the canonical request over the headers whose (lower-cased) names are in `signed`.
fn canonical_request_over(req: &SignableRequest<'_>, signed: &[String]) -> String {
    let mut out = String::with_capacity(512);
    out.push_str(req.method);
    out.push('\n');
    out.push_str(&canonical_uri(req.path));
    out.push('\n');
    out.push_str(&canonical_query(req.query));
    out.push('\n');
    for name in signed {
        let value = req.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()).unwrap_or("");
        out.push_str(name);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed.join(";"));
    out.push('\n');
    out.push_str(&payload_hash(req.body));
    out
}

fn date_of<'a>(req: &SignableRequest<'a>) -> Option<&'a str> {
    req.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(DATE_HEADER)).map(|(_, v)| v.as_str())
}

fn string_to_sign(date: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{date}\n{}", hex::encode(Sha256::digest(canonical_request.as_bytes())))
}

fn hmac_hex(secret_key: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret_key.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn sign_over(req: &SignableRequest<'_>, signed: Vec<String>, secret_key: &str) -> Signature {
    let canonical_request = canonical_request_over(req, &signed);
    let string_to_sign = string_to_sign(date_of(req).unwrap_or(""), &canonical_request);
    let signature = hmac_hex(secret_key, &string_to_sign);
    Signature { canonical_request, string_to_sign, signed_headers: signed.join(";"), signature }
}

/// Signs a request with every header whose name has no `_`, as the SDK does.
/// The caller must already have set `Host` and `X-Sdk-Date` (and `X-Security-Token` if any).
pub fn sign(req: &SignableRequest<'_>, secret_key: &str) -> Signature {
    let mut signed: Vec<String> =
        req.headers.iter().filter(|(n, _)| !n.contains('_')).map(|(n, _)| n.to_ascii_lowercase()).collect();
    signed.sort();
    signed.dedup();
    sign_over(req, signed, secret_key)
}

/// A parsed `Authorization: SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationHeader {
    pub access_key: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl AuthorizationHeader {
    /// Parses the header; `None` when it is not an SDK-HMAC-SHA256 authorization.
    pub fn parse(value: &str) -> Option<Self> {
        let rest = value.strip_prefix(ALGORITHM)?.trim_start();
        let (mut access, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (key, val) = part.trim().split_once('=')?;
            match key {
                "Access" => access = Some(val.to_owned()),
                "SignedHeaders" => signed = Some(val.to_owned()),
                "Signature" => signature = Some(val.to_owned()),
                _ => {}
            }
        }
        let signed_headers: Vec<String> = signed?.split(';').map(str::to_owned).collect();
        Some(Self { access_key: access?, signed_headers, signature: signature? })
    }

    /// True when the signature matches the request, recomputed over the headers it names
    /// (a proxy may add unsigned headers). Compared in constant time.
    pub fn verifies(&self, req: &SignableRequest<'_>, secret_key: &str) -> bool {
        let expected = sign_over(req, self.signed_headers.clone(), secret_key);
        constant_time_eq(expected.signature.as_bytes(), self.signature.as_bytes())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Formats a time as `X-Sdk-Date` (`%Y%m%dT%H%M%SZ`, UTC).
pub fn format_sdk_date(at: jiff::Timestamp) -> String {
    at.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// Parses an `X-Sdk-Date` value.
pub fn parse_sdk_date(value: &str) -> Option<jiff::Timestamp> {
    jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", value)
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_uri_decodes_once_and_turns_encoded_slash_into_a_separator() {
        assert_eq!(canonical_uri("/v2/p/t%2F1%20x/stop"), "/v2/p/t/1%20x/stop/");
        assert_eq!(canonical_uri("/v2/p/"), "/v2/p/");
    }

    #[test]
    fn canonical_query_sorts_by_raw_key_then_value() {
        let q = vec![
            ("offset".to_owned(), "0".to_owned()),
            ("name".to_owned(), "a+b/c".to_owned()),
            ("limit".to_owned(), "10".to_owned()),
        ];
        assert_eq!(canonical_query(&q), "limit=10&name=a%2Bb%2Fc&offset=0");
    }

    #[test]
    fn authorization_header_round_trips_through_parse() {
        let header = "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;x-sdk-date, Signature=abc";
        let parsed = AuthorizationHeader::parse(header).unwrap();
        assert_eq!(parsed.access_key, "AK");
        assert_eq!(parsed.signed_headers, vec!["host", "x-sdk-date"]);
        assert_eq!(parsed.signature, "abc");
        assert!(AuthorizationHeader::parse("Bearer x").is_none());
    }

    #[test]
    fn sdk_date_round_trips() {
        let t = parse_sdk_date("20241126T083000Z").unwrap();
        assert_eq!(format_sdk_date(t), "20241126T083000Z");
        assert!(parse_sdk_date("2024-11-26").is_none());
    }
}
