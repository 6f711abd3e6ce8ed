//! Hostile endpoints on loopback, as a tenant could point a resource at them (issue 14):
//! - one endpoint answering every call with a ~15 MiB body and one stalling 28 s (40 resources
//!   each) beside another tenant's 5 resources on the simulator: the operator's peak RSS stays
//!   under 96 MiB (the chart's limit is 128Mi) — answers are capped per operation and an account
//!   has at most a few calls in flight — and the other tenant's resources reach Ready within 45 s;
//! - a redirect is never followed: the Location receives nothing, status names the 3xx;
//! - an error that repeats the request (its passwords, keys and token) as JSON or in an HTML page
//!   leaves no secret in status, Events or logs, and the DCS code is still shown.

mod e2e;
mod raw_http;
mod support;

use e2e::{Env, Operator};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

const PHASE: Duration = Duration::from_millis(400);
const HUGE: usize = 15 * 1024 * 1024;
const STALL: Duration = Duration::from_secs(28);

/// A loopback endpoint whose every answer is `answer(request, stream)`; its URL and how many
/// requests reached it.
async fn serve<F, Fut>(answer: F) -> (String, Arc<AtomicUsize>)
where
    F: Fn(Vec<u8>, TcpStream) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                if let Some(request) = raw_http::read_request(&mut stream).await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    answer(request, stream).await;
                }
            });
        }
    });
    (url, requests)
}

async fn reply(mut stream: TcpStream, status: &str, content_type: &str, extra: &str, body: &str) {
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{extra}connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
}

/// 200 with a 15 MiB JSON-looking body, written as long as the client reads.
async fn huge(_: Vec<u8>, mut stream: TcpStream) {
    let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {HUGE}\r\n\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..HUGE / chunk.len() {
        if stream.write_all(&chunk).await.is_err() {
            return;
        }
    }
}

/// A 500 after 28 s.
async fn stall(_: Vec<u8>, stream: TcpStream) {
    tokio::time::sleep(STALL).await;
    reply(
        stream,
        "500 Internal Server Error",
        "application/json",
        "",
        r#"{"error_code":"DCS.5000","error_msg":"slow"}"#,
    )
    .await;
}

/// An empty task list for reads; a 400 repeating the whole request for anything else.
async fn echo_json(request: Vec<u8>, stream: TcpStream) {
    if request.starts_with(b"GET") {
        return reply(stream, "200 OK", "application/json", "", r#"{"count":0,"migration_tasks":[]}"#).await;
    }
    let text = String::from_utf8_lossy(&request);
    let body = serde_json::json!({"error_code": "DCS.4000", "error_msg": format!("invalid request {text}")});
    reply(stream, "400 Bad Request", "application/json", "", &body.to_string()).await;
}

/// Like `echo_json`, with the request reflected in an HTML page (as some gateways do).
async fn echo_html(request: Vec<u8>, stream: TcpStream) {
    if request.starts_with(b"GET") {
        return reply(stream, "200 OK", "application/json", "", r#"{"count":0,"migration_tasks":[]}"#).await;
    }
    let text = String::from_utf8_lossy(&request);
    let page = format!("<html><body><h1>400 Bad Request</h1><pre>{text}</pre></body></html>");
    reply(stream, "400 Bad Request", "text/html", "", &page).await;
}

/// `count` copies of the backup-import example named `<prefix>-<i>`, pointed at `url`.
fn copies(env: &Env, prefix: &str, count: usize, url: &str) -> String {
    let base = env.example("backup-import-obs.yaml").replace(&env.url(), url);
    (0..count)
        .map(|i| format!("---\n{}", base.replace("name: import-from-obs", &format!("name: {prefix}-{i}"))))
        .collect()
}

/// Peak resident set of a process (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bloating_and_a_stalling_endpoint_neither_bloat_the_operator_nor_hold_back_another_tenant() {
    let env = Env::new("tenant-isolation", PHASE).await;
    let ((bloating, _), (stalling, _)) = (serve(huge).await, serve(stall).await);
    let op = Operator::start(&env);
    env.apply(&copies(&env, "bloat", 40, &bloating));
    env.apply(&copies(&env, "stall", 40, &stalling));
    tokio::time::sleep(Duration::from_secs(3)).await;

    let applied = Instant::now();
    env.apply(&copies(&env, "tenant", 5, &env.url()));
    for i in 0..5 {
        let left = Duration::from_secs(45).saturating_sub(applied.elapsed());
        env.wait_phase(&format!("tenant-{i}"), "Succeeded", left).await;
    }
    let ready_after = applied.elapsed();
    // Let the hostile endpoints keep answering a while longer before the peak is read.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let peak = peak_rss_mib(op.pid());
    eprintln!("tenant isolation: the other tenant's 5 Ready after {ready_after:?}; operator peak RSS {peak:.1} MiB");
    assert!(peak < 96.0, "peak RSS {peak:.1} MiB");
    let bloated = env.get("bloat-0");
    let synced = bloated["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Synced").unwrap();
    assert_eq!(synced["status"], "False", "the bloating endpoint's resources say what is wrong: {bloated}");
    env.assert_no_secret_leaked(&[op.logs()]);
}

fn synced_message(rm: &serde_json::Value) -> String {
    let conditions = rm["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let synced = conditions.iter().find(|c| c["type"] == "Synced").cloned().unwrap_or_default();
    synced["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_status_names_it() {
    let env = Env::new("hostile-redirect", PHASE).await;
    let (target, reached) = serve(echo_json).await;
    let location = format!("location: {target}/v2/elsewhere\r\n");
    let location: &'static str = Box::leak(location.into_boxed_str());
    let (redirecting, _) =
        serve(move |_, stream| reply(stream, "307 Temporary Redirect", "text/plain", location, "")).await;
    let op = Operator::start(&env);
    env.apply(&copies(&env, "redirected", 1, &redirecting));
    let message = support::eventually("status to name the redirect", Duration::from_secs(30), || async {
        Some(synced_message(&env.get("redirected-0"))).filter(|m| m.contains("307"))
    })
    .await;
    assert!(message.contains("redirect"), "{message}");
    assert_eq!(reached.load(Ordering::SeqCst), 0, "nothing was sent to the Location");
    env.assert_no_secret_leaked(&[op.logs()]);
}

#[tokio::test]
async fn an_error_repeating_the_request_leaves_no_secret_anywhere_and_keeps_its_code() {
    let env = Env::new("hostile-echo", PHASE).await;
    let ((json, json_calls), (html, html_calls)) = (serve(echo_json).await, serve(echo_html).await);
    let op = Operator::start(&env);
    env.apply(&copies(&env, "echo-json", 1, &json));
    env.apply(&copies(&env, "echo-html", 1, &html));
    let message = support::eventually("the JSON echo's code in status", Duration::from_secs(30), || async {
        Some(synced_message(&env.get("echo-json-0"))).filter(|m| m.contains("DCS.4000"))
    })
    .await;
    support::eventually("the HTML echo in status", Duration::from_secs(30), || async {
        Some(synced_message(&env.get("echo-html-0"))).filter(|m| m.contains("400"))
    })
    .await;
    assert!(json_calls.load(Ordering::SeqCst) >= 2 && html_calls.load(Ordering::SeqCst) >= 2, "the creates went out");
    assert!(message.contains("***"), "the echoed secrets are masked, not dropped silently: {message}");
    let everything =
        [op.logs(), String::from_utf8_lossy(&env.kubectl(&["get", "rmig,events", "-o", "json"]).stdout).into_owned()];
    for text in &everything {
        assert!(!text.contains(e2e::AK), "the access key leaked");
    }
    env.assert_no_secret_leaked(&[op.logs()]);
}
