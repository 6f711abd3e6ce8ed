//! How the DCS client uses its HTTP connections (issue 17): small answers share pooled keep-alive connections,
//! and a list page is read on a connection that is closed after it, so that no pooled connection keeps the
//! read buffer a page of 1,000 rows grew (half a MiB or more, per connection, for as long as it lives).

mod raw_http;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dcs_migration_operator::dcs::model::ListQuery;
use dcs_migration_operator::dcs::{ClientConfig, Credentials, DcsClient, Endpoint, RetryPolicy};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

const PROJECT: &str = "0123456789abcdef0123456789abcdef";

/// A request as the server saw it: the number of the connection it came on, and its head.
#[derive(Debug, Clone)]
struct Seen {
    connection: usize,
    head: String,
}

/// A loopback server that keeps every connection open until the client closes it (or asks to), answering
/// list pages with no rows and anything else with a finished job.
async fn keep_alive_server() -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut connections = 0;
        while let Ok((mut stream, _)) = listener.accept().await {
            let (connection, log) = (connections, log.clone());
            connections += 1;
            tokio::spawn(async move {
                while let Some(raw) = raw_http::read_request(&mut stream).await {
                    let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
                    let head = text.split("\r\n\r\n").next().unwrap_or_default().to_owned();
                    let body = if head.starts_with("get /v2/") && head.contains("/migration-tasks") {
                        r#"{"count": 0, "migration_tasks": []}"#
                    } else {
                        r#"{"job_id": "j", "status": "SUCCESS"}"#
                    };
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let close = head.lines().any(|l| l.trim() == "connection: close");
                    log.lock().unwrap().push(Seen { connection, head });
                    if stream.write_all(answer.as_bytes()).await.is_err() || close {
                        break;
                    }
                }
            });
        }
    });
    (url, seen)
}

fn client(url: &str) -> DcsClient {
    let credentials = Credentials::new("CONNECTIONSACCESSKEY", "ConnectionsSecretKey0123456789ab");
    let mut config = ClientConfig::new(Endpoint::parse(url).unwrap(), PROJECT, credentials);
    config.retry = RetryPolicy { max_retries: 0, ..RetryPolicy::default() };
    config.timeout = Duration::from_secs(5);
    DcsClient::new(config).unwrap()
}

#[tokio::test]
async fn a_list_page_closes_its_connection_and_small_answers_reuse_theirs() {
    let (url, seen) = keep_alive_server().await;
    let client = client(&url);
    client.show_job_info("job-1").await.unwrap();
    client.show_job_info("job-2").await.unwrap();
    let page = client.list_migration_tasks(&ListQuery { offset: Some(0), limit: Some(1000), name: None }).await;
    assert_eq!(page.unwrap().count, Some(0));
    client.show_job_info("job-3").await.unwrap();
    client.show_job_info("job-4").await.unwrap();

    let seen = seen.lock().unwrap().clone();
    let connections: Vec<usize> = seen.iter().map(|s| s.connection).collect();
    assert_eq!(connections, [0, 0, 0, 1, 1], "the list reused the pooled connection and closed it: {seen:#?}");
    let closing: Vec<bool> = seen.iter().map(|s| s.head.lines().any(|l| l.trim() == "connection: close")).collect();
    assert_eq!(closing, [false, false, true, false, false], "only the list asked for its connection to close");
    let list = &seen[2].head;
    assert!(list.contains("signedheaders=") && !list.contains("connection;"), "the close is not signed: {list}");
}
