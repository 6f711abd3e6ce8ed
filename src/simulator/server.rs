//! The HTTP/1 server: one hyper connection per socket, a service that routes each request to the
//! admin API or to an operation (after faults, the body limit and the signature check), and closes
//! the connection without a reply where a fault asks for it.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use jiff::Timestamp;
use thiserror::Error;
use tokio::net::TcpListener;

use super::admin;
use super::auth;
use super::error::ApiError;
use super::exchange::{self, IdentityReply};
use super::faults::Fault;
use super::handlers::{self, Reply, lock};
use super::identity::Refusal;
use super::routes::{self, ApiRoute, Route};
use super::shared::Shared;
use super::store::Caller;
use crate::dcs::signer::{self, AuthorizationHeader, SignableRequest};

/// Request bodies above this size are refused with 413 `APIGW.0201` (the real gateway's limit is 12 MB).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Returned to hyper to close the connection without a reply (dropped call, lost reply).
#[derive(Debug, Error)]
#[error("connection closed without a reply: {0}")]
pub struct NoReply(&'static str);

type Body = Full<Bytes>;

fn respond(status: StatusCode, body: Option<Vec<u8>>, request_id: &str) -> Response<Body> {
    let has_body = body.is_some();
    let mut response = Response::new(Full::new(body.map(Bytes::from).unwrap_or_default()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if has_body {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
    }
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("X-Request-Id", value);
    }
    response
}

fn identity_response(reply: IdentityReply, request_id: &str) -> Response<Body> {
    let mut response = respond(reply.status, None, request_id);
    *response.body_mut() = Full::new(Bytes::from(reply.body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

fn header_pairs(req: &Request<Incoming>) -> Vec<(String, String)> {
    req.headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect()
}

/// A hostile answer (see [`super::faults::Garbage`]).
fn garbage_response(kind: super::faults::Garbage, request_id: &str) -> Response<Body> {
    let (status, content_type, body) = super::faults::garbage_answer(kind);
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("X-Request-Id", value);
    }
    response
}

fn error_response(error: &ApiError, request_id: &str) -> Response<Body> {
    respond(error.status, Some(error.body(request_id)), request_id)
}

enum BodyError {
    TooLarge,
    /// The client went away or sent a broken body.
    Broken,
}

/// Bodies over [`BODY_LIMIT`] are still read (and discarded) up to this size before the 413 answer,
/// so that the client finishes sending and reads the answer instead of a connection reset.
const DRAIN_LIMIT: u64 = 32 * 1024 * 1024;

async fn read_body(req: Request<Incoming>) -> Result<Bytes, BodyError> {
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        return Err(BodyError::TooLarge);
    }
    let mut body = req.into_body();
    let mut collected = BytesMut::new();
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Broken)?;
        let Ok(data) = frame.into_data() else { continue };
        seen += data.len() as u64;
        if seen > DRAIN_LIMIT {
            return Err(BodyError::TooLarge);
        }
        if seen <= BODY_LIMIT as u64 {
            collected.extend_from_slice(&data);
        }
    }
    if seen > BODY_LIMIT as u64 { Err(BodyError::TooLarge) } else { Ok(collected.freeze()) }
}

async fn handle_request(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, NoReply> {
    let request_id = handlers::new_id();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let raw_query = req.uri().query().unwrap_or("").to_owned();
    match routes::route(&method, &path) {
        Route::NotFound => {
            tracing::debug!(%method, path = %path.chars().take(200).collect::<String>(), "no such API");
            Ok(error_response(&ApiError::no_such_api(), &request_id))
        }
        Route::Admin(admin_route) => {
            let body = match read_body(req).await {
                Ok(body) => body,
                Err(BodyError::TooLarge) => {
                    return Ok(error_response(&ApiError::body_too_large(), &request_id));
                }
                Err(BodyError::Broken) => return Err(NoReply("broken request body")),
            };
            let reply = admin::handle(&shared, &admin_route, &raw_query, &body, Timestamp::now());
            tracing::debug!(?admin_route, status = reply.status.as_u16(), "admin call");
            Ok(respond(reply.status, reply.body, &request_id))
        }
        Route::Identity(identity_route) => {
            let headers = header_pairs(&req);
            let body = match read_body(req).await {
                Ok(body) => body,
                Err(BodyError::TooLarge) => return Ok(error_response(&ApiError::body_too_large(), &request_id)),
                Err(BodyError::Broken) => return Err(NoReply("broken request body")),
            };
            let reply = {
                let mut registry = lock(&shared.identity);
                exchange::handle(&mut registry, identity_route, &headers, &body, Timestamp::now())
            };
            tracing::debug!(?identity_route, status = reply.status.as_u16(), "identity call");
            Ok(identity_response(reply, &request_id))
        }
        Route::Api(api) => {
            let started = Instant::now();
            let received = Timestamp::now();
            let operation = api.operation;
            let mut caller = None;
            let result = api_call(&shared, &api, req, &raw_query, &request_id, &mut caller).await;
            let status = match &result {
                Ok(response) => response.status().as_u16(),
                Err(_) => 0,
            };
            shared.record(operation, status, received, caller);
            tracing::debug!(
                operation = operation.name(),
                status,
                elapsed_ms = started.elapsed().as_millis() as u64,
                request_id = %request_id,
                "call"
            );
            result
        }
    }
}

async fn api_call(
    shared: &Arc<Shared>,
    api: &ApiRoute,
    req: Request<Incoming>,
    raw_query: &str,
    request_id: &str,
    caller: &mut Option<Caller>,
) -> Result<Response<Body>, NoReply> {
    let (latency, fault, doomed) = {
        let faults = shared.faults();
        let (latency, fault) = faults.decide(api.operation);
        (latency, fault, faults.dooms(api.operation))
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let headers = header_pairs(&req);
    let body = match read_body(req).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return Ok(error_response(&ApiError::body_too_large(), request_id));
        }
        Err(BodyError::Broken) => return Err(NoReply("broken request body")),
    };
    match fault {
        Some(Fault::Drop) => return Err(NoReply("injected drop")),
        Some(Fault::Throttle) => return Ok(error_response(&ApiError::throttled(), request_id)),
        Some(Fault::Error) => return Ok(error_response(&ApiError::internal(), request_id)),
        Some(Fault::Garbage(kind)) if !kind.applies_call() => return Ok(garbage_response(kind, request_id)),
        Some(Fault::Garbage(_)) | Some(Fault::LostReply) | None => {}
    }
    let now = Timestamp::now();
    let query = auth::query_pairs(raw_query);
    let signed = SignableRequest { method: &method, path: &path, query: &query, headers: &headers, body: &body };
    let outcome = authenticate(shared, &signed, now)
        .map(|who| *caller = Some(who))
        .and_then(|()| auth::check_project(&api.project_id, &headers, &shared.project_id))
        .and_then(|()| handlers::handle(&shared.store, api, &query, &body, now, doomed));
    if fault == Some(Fault::LostReply) {
        return Err(NoReply("injected lost reply"));
    }
    if let Some(Fault::Garbage(kind)) = fault {
        return Ok(garbage_response(kind, request_id));
    }
    Ok(match outcome {
        Ok(Reply { status, body }) => respond(status, body, request_id),
        Err(error) => error_response(&error, request_id),
    })
}

/// Verifies the signature with the temporary credential the access key names (checking its security
/// token, expiry and grant) or else with the configured key; counts refusals and, once accepted, the
/// call under its access key. Answers who made the call.
fn authenticate(shared: &Shared, signed: &SignableRequest<'_>, now: Timestamp) -> Result<Caller, ApiError> {
    let header = |name: &str| signed.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v);
    let authorization = header("Authorization").and_then(|v| AuthorizationHeader::parse(v));
    let security_token = header(signer::SECURITY_TOKEN_HEADER).map(String::as_str);
    let temporary =
        authorization.as_ref().and_then(|auth| lock(&shared.identity).temporary(&auth.access_key, security_token, now));
    let (credentials, caller) = match temporary {
        Some(resolved) => {
            let (resolved, caller) = resolved?;
            let token_signed = authorization
                .iter()
                .flat_map(|a| &a.signed_headers)
                .any(|h| h.eq_ignore_ascii_case(signer::SECURITY_TOKEN_HEADER));
            if !token_signed {
                lock(&shared.identity).refuse(Refusal::Signature);
                return Err(ApiError::authentication("verify aksk signature fail, x-security-token must be signed"));
            }
            (Arc::new(resolved), caller)
        }
        None => {
            let credentials = shared.credentials();
            let caller = Caller { access_key: credentials.access_key.clone(), subject: None };
            (credentials, caller)
        }
    };
    let verified = auth::verify(signed, &credentials, now);
    let mut registry = lock(&shared.identity);
    match &verified {
        Ok(()) => registry.count_call(&credentials.access_key),
        Err(e) if e.code == "APIGW.0301" => registry.refuse(Refusal::Signature),
        Err(_) => {}
    }
    verified.map(|()| caller)
}

/// Accepts connections until `shutdown` completes, then closes idle connections and waits (up to
/// two seconds) for calls in flight.
pub async fn run(shared: Arc<Shared>, listener: TcpListener, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let mut stop_rx = stop_rx.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| handle_request(shared.clone(), req));
                    let conn = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(conn);
                    tokio::select! {
                        result = conn.as_mut() => {
                            if let Err(e) = result {
                                tracing::debug!(error = %e, "connection ended");
                            }
                        }
                        _ = stop_rx.changed() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
            }
        }
    }
    let _ = stop_tx.send(true);
    let drained =
        tokio::time::timeout(Duration::from_secs(2), async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        connections.abort_all();
    }
    Ok(())
}
