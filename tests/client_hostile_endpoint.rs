//! The client against hostile loopback endpoints (issue 14): it never follows a redirect, it
//! scrubs every secret the request carried from whatever comes back, it reads no more of an
//! answer than its operation needs, and it accepts the no-content answers of update, exchange,
//! rollback and sync-stop whatever their body (`dcs-api.md` §12.2).

mod raw_http;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dcs_migration_operator::dcs::model::*;
use dcs_migration_operator::dcs::{ClientConfig, Credentials, DcsClient, DcsError, Endpoint, RetryPolicy};
use secrecy::SecretString;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

const AK: &str = "HOSTILEACCESSKEY0001";
const SK: &str = "HostileSecretKey0123456789abcdef";
const TOKEN: &str = "HostileSecurityToken-9f8e7d6c5b4a";
const PROJECT: &str = "0123456789abcdef0123456789abcdef";
const TASK: &str = "0123456789abcdef0123456789abcdef";
const SOURCE_PASSWORD: &str = "Src\"Pass<w0rd>&1";
const TARGET_PASSWORD: &str = "TgtPassw0rd-ÜñÏ";
const SECRETS: [&str; 5] = [AK, SK, TOKEN, SOURCE_PASSWORD, TARGET_PASSWORD];

/// A loopback server answering every request with `answer(raw request)`; counts requests.
struct RawServer {
    url: String,
    requests: Arc<AtomicUsize>,
}

fn http_answer(status: &str, content_type: &str, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{extra_headers}connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

async fn serve(answer: impl Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static) -> RawServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = answer.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let Some(raw) = raw_http::read_request(&mut stream).await else { return };
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = stream.write_all(&answer(&raw)).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    RawServer { url, requests }
}

fn client(url: &str) -> DcsClient {
    let credentials = Credentials::new(AK, SK).with_security_token(TOKEN);
    let mut config = ClientConfig::new(Endpoint::parse(url).unwrap(), PROJECT, credentials);
    config.retry = RetryPolicy { max_retries: 0, ..RetryPolicy::default() };
    config.timeout = Duration::from_secs(5);
    DcsClient::new(config).unwrap()
}

fn configure_body() -> SetOnlineMigrationTaskBody {
    SetOnlineMigrationTaskBody {
        migration_method: MigrationMethod::Incremental,
        resume_mode: ResumeMode::Auto,
        bandwidth_limit_mb: None,
        source_instance: ConfigMigrationInstanceBody {
            addrs: Some("192.168.0.10:6379".into()),
            password: Some(SecretString::from(SOURCE_PASSWORD)),
            ..Default::default()
        },
        target_instance: ConfigMigrationInstanceBody {
            id: Some("d2c8399f-bdba-43c1-8069-3ff17a1a79d5".into()),
            password: Some(SecretString::from(TARGET_PASSWORD)),
            ..Default::default()
        },
    }
}

fn assert_no_secret(e: &DcsError) {
    let shown = format!("{e}\n{e:?}");
    for secret in SECRETS {
        assert!(!shown.contains(secret), "{secret:?} leaked in {shown}");
    }
    for fragment in ["Src", "Pass&lt;", "ÜñÏ", "HostileSecret", "HostileSecurity", "HOSTILEACCESS"] {
        assert!(!shown.contains(fragment), "{fragment:?} leaked in {shown}");
    }
}

#[tokio::test]
async fn a_redirect_is_an_error_naming_its_status_and_nothing_reaches_the_location() {
    let elsewhere = serve(|_| http_answer("200 OK", "application/json", "", b"{}")).await;
    let location = format!("{}/v2/{PROJECT}/migration-task/{TASK}/task", elsewhere.url);
    let hostile = serve(move |_| {
        http_answer("307 Temporary Redirect", "text/plain", &format!("location: {location}\r\n"), b"moved")
    })
    .await;
    let client = client(&hostile.url);

    let e = client.set_online_migration_task(TASK, &configure_body()).await.unwrap_err();
    assert!(matches!(e, DcsError::Redirected { status: 307, .. }), "{e:?}");
    assert!(e.to_string().contains("HTTP 307 (redirects are not followed)"), "{e}");
    let e = client.show_migration_task(TASK).await.unwrap_err();
    assert_eq!(e.http_status(), Some(307));
    assert!(!e.is_transient(), "a redirect is not retried");

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hostile.requests.load(Ordering::SeqCst), 2);
    assert_eq!(elsewhere.requests.load(Ordering::SeqCst), 0, "nothing was sent to the Location");
}

#[tokio::test]
async fn an_error_repeating_the_requests_passwords_and_keys_is_scrubbed_and_keeps_its_code() {
    let hostile = serve(|_| {
        let message = format!(
            "Invalid password {SOURCE_PASSWORD} or {TARGET_PASSWORD} for ak:{AK} sk:{SK} token:{TOKEN} \
             (json {})",
            serde_json::to_string(SOURCE_PASSWORD).unwrap()
        );
        let body = serde_json::json!({"error_code": "DCS.4080", "error_msg": message, "request_id": AK});
        http_answer(
            "400 Bad Request",
            "application/json",
            &format!("x-request-id: {TOKEN}\r\n"),
            body.to_string().as_bytes(),
        )
    })
    .await;
    let e = client(&hostile.url).set_online_migration_task(TASK, &configure_body()).await.unwrap_err();
    assert_eq!(e.code(), Some("DCS.4080"));
    assert!(e.to_string().contains("Invalid password *** or ***"), "{e}");
    assert_no_secret(&e);
}

#[tokio::test]
async fn an_html_page_reflecting_the_raw_request_is_scrubbed() {
    let hostile = serve(|raw| {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let escaped = body.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
        let page = format!(
            "<html><body><h1>400 Bad Request</h1><pre>{body}</pre><pre>{head}</pre><pre>{escaped}</pre></body></html>"
        );
        http_answer("400 Bad Request", "text/html", "", page.as_bytes())
    })
    .await;
    let e = client(&hostile.url).set_online_migration_task(TASK, &configure_body()).await.unwrap_err();
    assert_eq!(e.code(), Some("400"));
    assert!(e.to_string().contains("400 Bad Request"), "{e}");
    assert_no_secret(&e);
    let DcsError::Api { error, .. } = &e else { panic!("{e:?}") };
    assert!(error.message.len() <= 1024 + 4, "error text is bounded");
    assert!(error.message.matches("***").count() >= 5, "the reflected secrets were kept, masked: {}", error.message);
}

#[tokio::test]
async fn no_content_answers_are_accepted_whatever_their_body() {
    for (status, content_type, body) in [
        ("204 No Content", "application/json", ""),
        ("200 OK", "application/json", ""),
        ("200 OK", "application/json", "{}"),
        ("200 OK", "application/json", "null"),
        ("200 OK", "text/plain", "accepted, thank you"),
        ("202 Accepted", "application/json", "[1, 2"),
    ] {
        let server = serve(move |_| http_answer(status, content_type, "", body.as_bytes())).await;
        let client = client(&server.url);
        let exchange = ExchangeInstanceIpBody { exchanged_ip: vec!["10.0.0.1".into()], is_exchange_domain: false };
        client.update_migration_task(TASK, ResumeMode::Manual).await.unwrap_or_else(|e| panic!("update {body:?}: {e}"));
        client.exchange_instance_ip(TASK, &exchange).await.unwrap_or_else(|e| panic!("exchange {body:?}: {e}"));
        client.rollback_exchange_instance_ip(TASK).await.unwrap_or_else(|e| panic!("rollback {body:?}: {e}"));
        client.stop_migration_task_sync(TASK).await.unwrap_or_else(|e| panic!("sync-stop {body:?}: {e}"));
    }
}

#[tokio::test]
async fn an_answer_over_its_operations_cap_is_refused_and_an_oversized_error_is_bounded() {
    let padding = "a".repeat(300 * 1024);
    let big = format!(r#"{{"job_id": "j", "status": "SUCCESS", "padding": "{padding}"}}"#);
    let server = serve(move |_| http_answer("200 OK", "application/json", "", big.as_bytes())).await;
    let e = client(&server.url).show_job_info(TASK).await.unwrap_err();
    assert!(matches!(e, DcsError::Decode { .. }), "{e:?}");
    assert!(e.to_string().contains("exceeds 65536 bytes"), "{e}");

    let huge_error = format!(r#"{{"error_code": "DCS.5000", "error_msg": "{}"}}"#, "e".repeat(8 * 1024 * 1024));
    let server =
        serve(move |_| http_answer("500 Internal Server Error", "application/json", "", huge_error.as_bytes())).await;
    let e = client(&server.url).show_migration_task(TASK).await.unwrap_err();
    assert_eq!(e.http_status(), Some(500));
    assert!(e.to_string().len() < 2048, "error text is bounded: {} bytes", e.to_string().len());
}
