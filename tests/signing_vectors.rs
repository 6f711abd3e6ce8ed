//! The signer reproduces every signature that the official SDK's own signer made
//! (`tests/fixtures/signing-vectors.json`, a verbatim copy of the project's reference
//! `signing-vectors.json`, kept in the repo so that a checkout is enough to run it).

use dcs_migration_operator::dcs::signer::{SignableRequest, sign};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    access_key: String,
    secret_key: String,
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    method: String,
    host: String,
    path: String,
    query: Vec<(String, String)>,
    headers_before_signing: serde_json::Map<String, serde_json::Value>,
    body: Option<String>,
    canonical_request: String,
    string_to_sign: String,
    authorization: String,
}

fn vectors_path() -> std::path::PathBuf {
    std::env::var_os("DCS_SIGNING_VECTORS")
        .map(Into::into)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/signing-vectors.json"))
}

#[test]
fn signer_reproduces_every_official_sdk_vector() {
    let path = vectors_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {} (set DCS_SIGNING_VECTORS): {e}", path.display()));
    let file: Vectors = serde_json::from_str(&text).expect("signing-vectors.json parses");
    assert!(file.vectors.len() >= 5, "expected the full vector set");
    for v in &file.vectors {
        let mut headers: Vec<(String, String)> = v
            .headers_before_signing
            .iter()
            .map(|(k, val)| (k.clone(), val.as_str().expect("header values are strings").to_owned()))
            .collect();
        headers.push(("Host".to_owned(), v.host.clone()));
        let body = v.body.as_deref().unwrap_or("").as_bytes();
        let req = SignableRequest { method: &v.method, path: &v.path, query: &v.query, headers: &headers, body };
        let sig = sign(&req, &file.secret_key);
        assert_eq!(sig.canonical_request, v.canonical_request, "canonical request of {}", v.name);
        assert_eq!(sig.string_to_sign, v.string_to_sign, "string to sign of {}", v.name);
        assert_eq!(sig.authorization(&file.access_key), v.authorization, "authorization of {}", v.name);
    }
}
