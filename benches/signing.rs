//! Signing throughput on one core: `cargo bench --bench signing`.
//! Target (issue 3): at least 200,000 signatures per second.

use dcs_migration_operator::dcs::signer::{SignableRequest, sign};
use std::time::{Duration, Instant};

/// Name, path, query and body of one signed request.
type Case<'a> = (&'a str, &'a str, &'a [(String, String)], &'a [u8]);

fn main() {
    let headers: Vec<(String, String)> = [
        ("Content-Type", "application/json;charset=utf-8"),
        ("User-Agent", "dcs-migration-operator/0.1.0"),
        ("X-Project-Id", "0123456789abcdef0123456789abcdef"),
        ("X-Sdk-Date", "20241126T083000Z"),
        ("Host", "dcs.cn-north-4.myhuaweicloud.com"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let query = vec![("offset".to_owned(), "0".to_owned()), ("limit".to_owned(), "1000".to_owned())];
    let body = br#"{"migration_tasks": ["8aa6999e71cb638b0171f485f5266ef0"]}"#;
    let cases: [Case<'_>; 3] = [
        ("show", "/v2/0123456789abcdef0123456789abcdef/migration-task/8aa6999e71cb638b0171f485f5266ef0", &[], b""),
        ("list", "/v2/0123456789abcdef0123456789abcdef/migration-tasks", &query, b""),
        ("batch-stop", "/v2/0123456789abcdef0123456789abcdef/migration-task/batch-stop", &[], body),
    ];
    println!("signing throughput, one thread:");
    for (name, path, query, body) in cases {
        let method = if body.is_empty() { "GET" } else { "POST" };
        let req = SignableRequest { method, path, query, headers: &headers, body };
        let mut n = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            for _ in 0..1000 {
                std::hint::black_box(sign(std::hint::black_box(&req), "ExampleSecretKey0123456789abcdefEXAMPLE0"));
            }
            n += 1000;
        }
        let per_second = n as f64 / start.elapsed().as_secs_f64();
        let verdict = if per_second >= 200_000.0 { "ok" } else { "BELOW TARGET" };
        println!("  {name:<11} {per_second:>10.0} signatures/s  (target >= 200000: {verdict})");
    }
}
