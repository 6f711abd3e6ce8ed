//! The signed HTTP client for the 15 migration-task operations and ShowJobInfo, with a shared
//! client-side rate limit, per-call timeouts, and retries (exponential backoff with jitter) only
//! where a retry cannot duplicate an effect.
//!
//! Safe against a hostile or misconfigured endpoint: redirects are never followed (a 3xx is
//! [`DcsError::Redirected`]); each answer is read up to its operation's cap
//! ([`Operation::max_answer_bytes`]); text kept from an error answer is bounded and scrubbed of
//! every secret the request carried ([`super::scrub`]).

use super::credentials::Credentials;
use super::endpoint::Endpoint;
use super::error::{DcsError, ErrorClass, classify, parse_error_body};
use super::model::*;
use super::operation::Operation;
use super::page::{KeptPage, PageSeed};
use super::scrub::{Scrubber, passwords_in};
use super::signer::{self, SignableRequest};
use super::source::CredentialSource;
use backon::{ExponentialBuilder, Retryable};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::Method;
use serde::Serialize;
use serde::de::{DeserializeOwned, DeserializeSeed};
use std::marker::PhantomData;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Most bytes of an error answer read: its code and message are in the first few hundred.
const MAX_ERROR_ANSWER_BYTES: usize = 64 * 1024;
/// The API caps batch stop/restart at 50 task ids per call.
pub const MAX_BATCH: usize = 50;

/// Client-side rate limit for all calls of one client (one account).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained calls per second.
    pub qps: f64,
    /// Calls allowed at once after a quiet period.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self { qps: 10.0, burst: 20 }
    }
}

/// Retry policy for calls that may be repeated (see [`Operation::is_idempotent`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: usize,
    /// First backoff delay (before jitter).
    pub min_delay: Duration,
    /// Cap of one backoff delay.
    pub max_delay: Duration,
    /// Cap of all backoff delays of one call together.
    pub total_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 6,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            total_delay: Duration::from_secs(30),
        }
    }
}

/// Everything a client needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub endpoint: Endpoint,
    pub project_id: String,
    pub credentials: CredentialSource,
    pub rate_limit: RateLimit,
    pub retry: RetryPolicy,
    /// Timeout of one HTTP exchange (connect to last byte).
    pub timeout: Duration,
    pub user_agent: String,
    /// At most this many exchanges on the wire at once (none: no bound).
    pub in_flight: Option<InFlight>,
}

/// The bound on exchanges on the wire: an attempt that the rate limit let through waits at most `wait` for
/// one of `calls` places, then fails with [`DcsError::Busy`] (an endpoint this slow should not hold its
/// callers), never retried here.
#[derive(Debug, Clone, Copy)]
pub struct InFlight {
    pub calls: usize,
    pub wait: Duration,
}

impl ClientConfig {
    /// A configuration with default limits, timeouts and retries.
    pub fn new(endpoint: Endpoint, project_id: impl Into<String>, credentials: impl Into<CredentialSource>) -> Self {
        Self {
            endpoint,
            project_id: project_id.into(),
            credentials: credentials.into(),
            rate_limit: RateLimit::default(),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            user_agent: concat!("dcs-migration-operator/", env!("CARGO_PKG_VERSION")).to_owned(),
            in_flight: None,
        }
    }
}

/// Told about every HTTP exchange of a client (each attempt, retries included) and every retry,
/// for metrics. It sees the operation and a bounded outcome code only: never a body, header or id.
pub trait CallObserver: Send + Sync {
    /// One exchange ended. `code`: the HTTP status of a success; the `DCS.xxxx`/`APIGW.xxxx`
    /// code of an error answer (the HTTP status when the body had no well-formed code);
    /// `network` when no answer arrived.
    fn exchanged(&self, operation: Operation, code: &str);
    /// The call is about to be sent again after a transient failure.
    fn retrying(&self, operation: Operation);
}

/// A DCS API client. Cloning is cheap and shares the connection pool and the rate limit.
#[derive(Clone)]
pub struct DcsClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    budget: Arc<Budget>,
    /// Places on the wire (`ClientConfig::in_flight`).
    wire: Option<Arc<Semaphore>>,
    observer: Option<Arc<dyn CallObserver>>,
}

/// The account's rate limit, how many calls wait for it, and the turns given to callers that come back later.
struct Budget {
    limiter: DefaultDirectRateLimiter,
    waiting: AtomicUsize,
    /// The rate limit's period: one call per period.
    period: Duration,
    /// How many calls may wait for the limiter before callers are given turns instead: its burst, which
    /// keeps the limit busy for burst × period.
    queue: usize,
    /// The latest turn given out.
    last_turn: Mutex<Option<Instant>>,
}

impl Budget {
    fn new(rate_limit: RateLimit) -> Result<Self, DcsError> {
        let RateLimit { qps, burst } = rate_limit;
        let burst = NonZeroU32::new(burst.max(1)).expect("max(1) is non-zero");
        let period = (qps.is_finite() && qps > 0.0)
            .then(|| Duration::try_from_secs_f64(1.0 / qps).ok())
            .flatten()
            .filter(|p| !p.is_zero())
            .ok_or_else(|| DcsError::InvalidRequest(format!("qps must be a positive number, not {qps}")))?;
        let quota = Quota::with_period(period).expect("a non-zero period").allow_burst(burst);
        Ok(Self {
            limiter: RateLimiter::direct(quota),
            waiting: AtomicUsize::new(0),
            period,
            queue: burst.get() as usize,
            last_turn: Mutex::new(None),
        })
    }

    /// `None` while fewer calls wait than the queue holds; else how long from `now` until a turn after
    /// the calls waiting and after every turn given out before, one period apart.
    fn turn(&self, now: Instant) -> Option<Duration> {
        let waiting = self.waiting.load(Ordering::SeqCst);
        if waiting < self.queue {
            return None;
        }
        let after_waiting = now + self.period.saturating_mul(u32::try_from(waiting).unwrap_or(u32::MAX));
        let mut last = self.last_turn.lock().expect("turn lock");
        let turn = last.map_or(after_waiting, |l| (l + self.period).max(after_waiting));
        *last = Some(turn);
        Some(turn - now)
    }

    /// Waits until the rate limit lets one call through, counted among the waiting meanwhile (also when the
    /// wait is abandoned).
    async fn until_ready(&self) {
        let _waiting = Waiting::on(&self.waiting);
        self.limiter.until_ready().await;
    }
}

/// One call counted among those waiting for the rate limit, while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn on(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for DcsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DcsClient")
            .field("endpoint", &self.inner.config.endpoint.as_str())
            .field("project_id", &self.inner.config.project_id)
            .finish_non_exhaustive()
    }
}

/// The request of one call, before signing.
struct Call {
    operation: Operation,
    method: Method,
    /// Path below `/v2/{project_id}`, segments already percent-encoded.
    path: String,
    query: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    /// The passwords in `body`, scrubbed from whatever the endpoint answers.
    passwords: Vec<String>,
}

impl Call {
    fn new(operation: Operation, method: Method, path: String) -> Self {
        Self { operation, method, path, query: Vec::new(), body: None, passwords: Vec::new() }
    }

    fn query(mut self, key: &str, value: Option<impl ToString>) -> Self {
        if let Some(v) = value {
            self.query.push((key.to_owned(), v.to_string()));
        }
        self
    }

    fn json(mut self, body: &impl Serialize) -> Result<Self, DcsError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| DcsError::InvalidRequest(format!("{}: cannot encode the body: {e}", self.operation)))?;
        self.passwords = serde_json::from_slice(&bytes).map(|value| passwords_in(&value)).unwrap_or_default();
        self.body = Some(bytes);
        Ok(self)
    }
}

fn segment(raw: &str) -> String {
    signer::encode_component(raw)
}

impl DcsClient {
    /// Builds a client. Fails only on an unusable rate limit or TLS setup.
    pub fn new(config: ClientConfig) -> Result<Self, DcsError> {
        Self::build(config, None)
    }

    /// Builds a client whose exchanges and retries are reported to `observer`.
    pub fn with_observer(config: ClientConfig, observer: Arc<dyn CallObserver>) -> Result<Self, DcsError> {
        Self::build(config, Some(observer))
    }

    /// The same client (connections, rate limit, observer) with another retry policy, e.g. for
    /// calls that are repeated on a schedule anyway and should fail fast.
    pub fn with_retry(&self, retry: RetryPolicy) -> Self {
        self.derived(ClientConfig { retry, ..self.inner.config.clone() }, self.inner.wire.clone())
    }

    /// True while some call of this account waits for the rate limit: what can wait (progress counters) gives
    /// way to what changes state.
    pub fn budget_contended(&self) -> bool {
        self.inner.budget.waiting.load(Ordering::SeqCst) > 0
    }

    /// When a caller that holds something scarce while it waits (a reconcile's slot) should come back
    /// instead of waiting for this account's rate limit: `None` while fewer calls wait than the limit's
    /// burst, else a turn after those and after the turns given out before, one per rate period. One
    /// account's backlog then holds at most its burst of slots, and the other accounts' resources get
    /// theirs.
    pub fn turn(&self) -> Option<Duration> {
        self.inner.budget.turn(Instant::now())
    }

    /// The same client without the bound on exchanges on the wire (for calls whose callers hold no
    /// reconcile slot: an account's observation loop and its batches).
    pub fn unbounded(&self) -> Self {
        self.derived(ClientConfig { in_flight: None, ..self.inner.config.clone() }, None)
    }

    fn derived(&self, config: ClientConfig, wire: Option<Arc<Semaphore>>) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                http: inner.http.clone(),
                config,
                budget: inner.budget.clone(),
                wire,
                observer: inner.observer.clone(),
            }),
        }
    }

    fn build(config: ClientConfig, observer: Option<Arc<dyn CallObserver>>) -> Result<Self, DcsError> {
        let budget = Arc::new(Budget::new(config.rate_limit)?);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(8)
            .build()
            .map_err(|e| DcsError::InvalidRequest(format!("cannot build the HTTP client: {e}")))?;
        let wire = config.in_flight.map(|bound| Arc::new(Semaphore::new(bound.calls)));
        Ok(Self { inner: Arc::new(Inner { http, config, budget, wire, observer }) })
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.config.endpoint
    }

    /// The project id in every path.
    pub fn project_id(&self) -> &str {
        &self.inner.config.project_id
    }

    // ------------------------------------------------------------ operations

    /// `CreateMigrationTask`: a backup import. Never retried after an unknown outcome.
    pub async fn create_migration_task(&self, body: &CreateMigrationTaskBody) -> Result<TaskAccepted, DcsError> {
        self.send(Call::new(Operation::CreateMigrationTask, Method::POST, "/migration-task".into()).json(body)?).await
    }

    /// `CreateOnlineMigrationTask`: answers the task id (`instance_id`) and, where the API sends
    /// it, the `job_id` of the job provisioning the migration ECS (see [`Self::show_job_info`]).
    /// Never retried after an unknown outcome.
    pub async fn create_online_migration_task(
        &self,
        body: &CreateOnlineMigrationTaskBody,
    ) -> Result<OnlineTaskCreated, DcsError> {
        self.send(
            Call::new(Operation::CreateOnlineMigrationTask, Method::POST, "/migration/instance".into()).json(body)?,
        )
        .await
    }

    /// `SetOnlineMigrationTask`: configures an online task that is `RUNNING`.
    pub async fn set_online_migration_task(
        &self,
        task_id: &str,
        body: &SetOnlineMigrationTaskBody,
    ) -> Result<TaskAccepted, DcsError> {
        let path = format!("/migration/{}/task", segment(task_id));
        self.send(Call::new(Operation::SetOnlineMigrationTask, Method::POST, path).json(body)?).await
    }

    /// `ShowMigrationTask`. A missing task is an error of class `NotFound` (`DCS.4133`).
    pub async fn show_migration_task(&self, task_id: &str) -> Result<MigrationTask, DcsError> {
        let path = format!("/migration-task/{}", segment(task_id));
        self.send(Call::new(Operation::ShowMigrationTask, Method::GET, path)).await
    }

    /// `ShowMigrationTaskStats`: progress and counters.
    pub async fn show_migration_task_stats(&self, task_id: &str) -> Result<MigrationStats, DcsError> {
        let path = format!("/migration-task/{}/stats", segment(task_id));
        self.send(Call::new(Operation::ShowMigrationTaskStats, Method::GET, path)).await
    }

    /// `ListMigrationTask`: one page.
    pub async fn list_migration_tasks(&self, query: &ListQuery) -> Result<MigrationTaskPage, DcsError> {
        self.list_migration_tasks_where(query, |_| true).await.map(MigrationTaskPage::from)
    }

    /// `ListMigrationTask`: one page, keeping the rows `keep` accepts; the others are dropped as they are decoded
    /// (see [`super::page`]).
    pub async fn list_migration_tasks_where(
        &self,
        query: &ListQuery,
        keep: impl Fn(&MigrationTaskSummary) -> bool,
    ) -> Result<KeptPage, DcsError> {
        let call = Call::new(Operation::ListMigrationTask, Method::GET, "/migration-tasks".into())
            .query("offset", query.offset)
            .query("limit", query.limit)
            .query("name", query.name.as_deref());
        self.send_seeded(call, PageSeed(keep)).await
    }

    /// `ListMigrationTaskLogs`: one page of a task's log, newest lines first
    /// ([`LogsQuery::newest_errors`] asks for the lines that say why a task failed).
    pub async fn list_migration_task_logs(
        &self,
        task_id: &str,
        query: &LogsQuery,
    ) -> Result<MigrationLogPage, DcsError> {
        let path = format!("/migration-task/{}/logs", segment(task_id));
        let call = Call::new(Operation::ListMigrationTaskLogs, Method::GET, path)
            .query("offset", query.offset)
            .query("limit", query.limit)
            .query("log_level", query.log_level.as_deref());
        self.send(call).await
    }

    /// `StopMigrationTask`: asynchronous; answers the task (usually `TERMINATING`).
    pub async fn stop_migration_task(&self, task_id: &str) -> Result<MigrationTask, DcsError> {
        let path = format!("/migration-task/{}/stop", segment(task_id));
        self.send(Call::new(Operation::StopMigrationTask, Method::POST, path)).await
    }

    /// `StopMigrationTaskSync`: 204 with no body; any 2xx means accepted, whatever its body.
    pub async fn stop_migration_task_sync(&self, task_id: &str) -> Result<(), DcsError> {
        let path = format!("/migration-task/{}/sync-stop", segment(task_id));
        self.send_accepted(Call::new(Operation::StopMigrationTaskSync, Method::POST, path)).await
    }

    /// `BatchStopMigrationTasks` for at most [`MAX_BATCH`] ids. HTTP 200 may still carry
    /// per-item failures: check every [`BatchItemResult`].
    pub async fn batch_stop_migration_tasks(&self, task_ids: &[String]) -> Result<BatchResult, DcsError> {
        self.batch(Operation::BatchStopMigrationTasks, "/migration-task/batch-stop", task_ids).await
    }

    /// `BatchRestartOnlineMigrationTasks` for at most [`MAX_BATCH`] ids; per-item results as above.
    pub async fn batch_restart_online_migration_tasks(&self, task_ids: &[String]) -> Result<BatchResult, DcsError> {
        self.batch(Operation::BatchRestartOnlineMigrationTasks, "/migration-tasks/batch-restart", task_ids).await
    }

    /// `UpdateMigrationTask`: changes the resume mode; any 2xx means accepted, whatever its body.
    pub async fn update_migration_task(&self, task_id: &str, resume_mode: ResumeMode) -> Result<(), DcsError> {
        let path = format!("/migration-task/{}", segment(task_id));
        let call = Call::new(Operation::UpdateMigrationTask, Method::PUT, path)
            .json(&UpdateMigrationTaskBody { resume_mode })?;
        self.send_accepted(call).await
    }

    /// `DeleteMigrationTask` (a DELETE with a JSON body). Answers the ids the API accepted; the
    /// detail call may still answer for a deleted task, so confirm absence with the list.
    pub async fn delete_migration_tasks(&self, task_ids: &[String]) -> Result<Vec<String>, DcsError> {
        let body = DeleteTasksBody { task_id_list: task_ids.to_vec() };
        let call =
            Call::new(Operation::DeleteMigrationTask, Method::DELETE, "/migration-tasks/delete".into()).json(&body)?;
        self.send::<DeleteTasksBody>(call).await.map(|b| b.task_id_list)
    }

    /// `ExchangeInstanceIp`: starts a switch-over; any 2xx (the API answers 204) means accepted,
    /// whatever its body. Its outcome is the top-level `task_status` of ShowMigrationTask
    /// (`EXCHANGING`, then `EXCHANGE_SUCCESS` or a `*FAIL*` word). Never retried after an unknown
    /// outcome (a second exchange would swap back).
    pub async fn exchange_instance_ip(&self, task_id: &str, body: &ExchangeInstanceIpBody) -> Result<(), DcsError> {
        let path = format!("/migration-task/{}/exchange-ip", segment(task_id));
        self.send_accepted(Call::new(Operation::ExchangeInstanceIp, Method::POST, path).json(body)?).await
    }

    /// `RollbackExchangeInstanceIp`: reverts a switch-over; accepted as above, its outcome is
    /// `ROLLBACK_SUCCESS` or a `*FAIL*` word in `task_status`. Never retried after an unknown outcome.
    pub async fn rollback_exchange_instance_ip(&self, task_id: &str) -> Result<(), DcsError> {
        let path = format!("/migration-task/{}/rollback-ip", segment(task_id));
        self.send_accepted(Call::new(Operation::RollbackExchangeInstanceIp, Method::POST, path)).await
    }

    /// `ShowJobInfo`: a DCS job, e.g. the one provisioning an online task (the `job_id` of
    /// [`Self::create_online_migration_task`]); `fail_reason` says why provisioning failed.
    pub async fn show_job_info(&self, job_id: &str) -> Result<JobInfo, DcsError> {
        let path = format!("/jobs/{}", segment(job_id));
        self.send(Call::new(Operation::ShowJobInfo, Method::GET, path)).await
    }

    async fn batch(&self, operation: Operation, path: &str, task_ids: &[String]) -> Result<BatchResult, DcsError> {
        if task_ids.is_empty() || task_ids.len() > MAX_BATCH {
            return Err(DcsError::InvalidRequest(format!(
                "{operation} takes 1 to {MAX_BATCH} task ids, not {}",
                task_ids.len()
            )));
        }
        let call =
            Call::new(operation, Method::POST, path.to_owned()).json(&TaskIdsBody { migration_tasks: task_ids })?;
        self.send(call).await
    }

    /// True when this client's credentials change over time (a refused one is replaced, not retried).
    pub fn rotates_credentials(&self) -> bool {
        self.inner.config.credentials.rotates()
    }

    // ------------------------------------------------------------ transport

    /// Sends a call with the retry policy and decodes its answer.
    async fn send<T: DeserializeOwned>(&self, call: Call) -> Result<T, DcsError> {
        self.send_seeded(call, PhantomData::<T>).await
    }

    /// Sends a call and decodes its success answer with `seed`.
    async fn send_seeded<S, V>(&self, call: Call, seed: S) -> Result<V, DcsError>
    where
        S: for<'de> DeserializeSeed<'de, Value = V>,
    {
        let scrubber = self.scrubber(&call, self.inner.config.credentials.fixed());
        let (status, body) = self.send_with_retries(&call).await?;
        decode(call.operation, status, &body, &scrubber, seed)
    }

    /// Sends a call whose 2xx answer means "accepted" whatever its body (`dcs-api.md` §12.2).
    async fn send_accepted(&self, call: Call) -> Result<(), DcsError> {
        self.send_with_retries(&call).await.map(drop)
    }

    /// Every secret `call` carries: its passwords and, when known, the access key, the secret key, the token.
    fn scrubber(&self, call: &Call, credentials: Option<&Credentials>) -> Scrubber {
        let keys = credentials.map(|c| [c.access_key(), c.secret_key(), c.security_token().unwrap_or("")]);
        Scrubber::new(call.passwords.iter().map(String::as_str).chain(keys.into_iter().flatten()))
    }

    async fn send_with_retries(&self, call: &Call) -> Result<(u16, Vec<u8>), DcsError> {
        let policy = self.inner.config.retry;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.max_retries)
            .with_total_delay(Some(policy.total_delay))
            .with_jitter();
        let operation = call.operation;
        (|| self.attempt(call))
            .retry(backoff)
            .when(|e: &DcsError| {
                e.is_transient()
                    && !matches!(e, DcsError::Busy { .. })
                    && (operation.is_idempotent() || e.certainly_not_applied())
            })
            .notify(|e: &DcsError, delay: Duration| {
                if let Some(observer) = &self.inner.observer {
                    observer.retrying(operation);
                }
                tracing::debug!(%operation, class = e.class().as_str(), code = e.code(), ?delay, "retrying DCS call");
            })
            .await
    }

    /// One signed HTTP exchange, after waiting for the rate limiter, reported to the observer. A call left
    /// unsent for want of credentials is no exchange, and is not reported as one.
    async fn attempt(&self, call: &Call) -> Result<(u16, Vec<u8>), DcsError> {
        let result = self.exchange(call).await;
        let sent = !matches!(result, Err(DcsError::NoCredentials { .. }));
        if let Some(observer) = self.inner.observer.as_ref().filter(|_| sent) {
            let code = match &result {
                Ok((status, _)) => status.to_string(),
                Err(e) => outcome_code(e),
            };
            observer.exchanged(call.operation, &code);
        }
        result
    }

    /// A place among the exchanges on the wire, once the rate limit let the attempt through: the bound is on
    /// calls the endpoint holds, not on calls waiting for budget.
    async fn place_on_the_wire(&self) -> Result<Option<OwnedSemaphorePermit>, DcsError> {
        let (Some(wire), Some(bound)) = (&self.inner.wire, self.inner.config.in_flight) else { return Ok(None) };
        match tokio::time::timeout(bound.wait, wire.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(DcsError::Busy { in_flight: bound.calls }),
        }
    }

    /// One attempt, signed with the credentials current when it is sent; a 401 tells their provider.
    async fn exchange(&self, call: &Call) -> Result<(u16, Vec<u8>), DcsError> {
        let config = &self.inner.config;
        self.inner.budget.until_ready().await;
        let operation = call.operation;
        let _place = self.place_on_the_wire().await?;
        let credentials = config.credentials.current().await.map_err(|message| DcsError::NoCredentials { message })?;
        let scrubber = &self.scrubber(call, Some(&credentials));
        let path = format!("{}/v2/{}{}", config.endpoint.path_prefix(), segment(&config.project_id), call.path);
        let query = signer::canonical_query(&call.query);
        let content_type = if call.body.is_some() { "application/json;charset=utf-8" } else { "application/json" };
        let mut headers = vec![
            ("Content-Type".to_owned(), content_type.to_owned()),
            ("User-Agent".to_owned(), config.user_agent.clone()),
            ("X-Project-Id".to_owned(), config.project_id.clone()),
            (signer::DATE_HEADER.to_owned(), signer::format_sdk_date(jiff::Timestamp::now())),
            ("Host".to_owned(), config.endpoint.host_header()),
        ];
        if let Some(token) = credentials.security_token() {
            headers.push((signer::SECURITY_TOKEN_HEADER.to_owned(), token.to_owned()));
        }
        let body = call.body.as_deref().unwrap_or_default();
        let signature = signer::sign(
            &SignableRequest { method: call.method.as_str(), path: &path, query: &call.query, headers: &headers, body },
            credentials.secret_key(),
        );
        headers.push(("Authorization".to_owned(), signature.authorization(credentials.access_key())));

        let origin = config.endpoint.origin();
        let url = if query.is_empty() { format!("{origin}{path}") } else { format!("{origin}{path}?{query}") };
        let mut request = self.inner.http.request(call.method.clone(), url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if operation.answer_is_large() {
            request = request.header(reqwest::header::CONNECTION, "close");
        }
        if let Some(bytes) = &call.body {
            request = request.body(bytes.clone());
        }
        let started = std::time::Instant::now();
        let mut response = request.send().await.map_err(|e| network_error(operation, &e, scrubber))?;
        let status = response.status().as_u16();
        tracing::debug!(%operation, status, elapsed_ms = started.elapsed().as_millis() as u64, "DCS call");
        if response.status().is_redirection() {
            return Err(DcsError::Redirected { operation, status });
        }
        let success = response.status().is_success();
        let request_id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        // A body the caller decodes must be whole; of any other (an error, an answer that means
        // "accepted" whatever it says) the start is enough and the rest is never buffered.
        let limit = if success { operation.max_answer_bytes() } else { MAX_ERROR_ANSWER_BYTES };
        let whole = success && operation.answer_has_content();
        let bytes = read_capped(&mut response, limit, whole)
            .await
            .map_err(|e| network_error(operation, &e, scrubber))?
            .ok_or_else(|| DcsError::Decode {
                operation,
                status,
                detail: format!("the answer exceeds {limit} bytes"),
            })?;
        if success {
            return Ok((status, bytes));
        }
        let error = parse_error_body(status, &bytes, request_id.as_deref(), scrubber);
        if classify(status, &error.code) == ErrorClass::Authentication {
            config.credentials.refused(&credentials).await;
        }
        Err(DcsError::Api { operation, error })
    }
}

/// Reads an answer's body up to `limit` bytes: a body that must be `whole` and is longer is
/// refused (`None`); of any other the start is kept and the rest never read.
async fn read_capped(
    response: &mut reqwest::Response,
    limit: usize,
    whole: bool,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    // A list page is ~1 MB: read into one buffer of the announced size, not one that doubles its way there.
    let announced = response.content_length().and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(announced.min(limit));
    while let Some(chunk) = response.chunk().await? {
        if bytes.len() + chunk.len() > limit {
            if whole {
                return Ok(None);
            }
            bytes.extend_from_slice(&chunk[..limit - bytes.len()]);
            break;
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Some(bytes))
}

/// The bounded label of a failed exchange: a well-formed `DCS.nnnn`/`APIGW.nnnn` code, else the
/// HTTP status, else `network`. Whatever else a body says never becomes a label.
fn outcome_code(e: &DcsError) -> String {
    let well_formed = |code: &str| {
        code.split_once('.').is_some_and(|(prefix, digits)| {
            matches!(prefix, "DCS" | "APIGW")
                && (1..=6).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
        })
    };
    match (e.code(), e.http_status()) {
        (Some(code), _) if well_formed(code) => code.to_owned(),
        (_, Some(status)) => status.to_string(),
        _ => "network".to_owned(),
    }
}

fn network_error(operation: Operation, e: &reqwest::Error, scrubber: &Scrubber) -> DcsError {
    use std::error::Error as _;
    let mut detail = if e.is_timeout() { "timed out".to_owned() } else { String::new() };
    let mut source = e.source();
    while let Some(s) = source {
        if !detail.is_empty() {
            detail.push_str(": ");
        }
        detail.push_str(&s.to_string());
        source = s.source();
    }
    if detail.is_empty() {
        detail = "connection failed".to_owned();
    }
    DcsError::Network { operation, sent: !e.is_connect(), detail: scrubber.scrub(&detail) }
}

/// Decodes a success answer with `seed`; an empty body (a bare 200) decodes as `{}`.
fn decode<'de, S: DeserializeSeed<'de>>(
    operation: Operation,
    status: u16,
    body: &'de [u8],
    scrubber: &Scrubber,
    seed: S,
) -> Result<S::Value, DcsError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    seed.deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(|e| DcsError::Decode { operation, status, detail: scrubber.scrub(&sanitize_decode_error(&e)) })
}

/// serde_json quotes offending values in its messages (`invalid type: string "…"`); a value
/// could be anything, so every quoted part is dropped. Field names (in backticks) stay.
fn sanitize_decode_error(e: &serde_json::Error) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in e.to_string().chars() {
        match c {
            '"' if !quoted => {
                quoted = true;
                out.push_str("\"…");
            }
            '"' => {
                quoted = false;
                out.push('"');
            }
            _ if !quoted => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_get_turns_one_period_apart_behind_the_calls_waiting_once_the_burst_waits() {
        let budget = Budget::new(RateLimit { qps: 10.0, burst: 2 }).unwrap();
        let now = Instant::now();
        budget.waiting.store(1, Ordering::SeqCst);
        assert_eq!(budget.turn(now), None, "fewer calls wait than the burst: wait in line");
        budget.waiting.store(2, Ordering::SeqCst);
        let ms = |d: Option<Duration>| d.map(|d| d.as_millis());
        assert_eq!(ms(budget.turn(now)), Some(200), "after the two calls waiting");
        assert_eq!(ms(budget.turn(now)), Some(300), "after the turn given out before");
        assert_eq!(ms(budget.turn(now)), Some(400));
        let later = now + Duration::from_secs(1);
        assert_eq!(ms(budget.turn(later)), Some(200), "turns given out long ago are past: behind the calls waiting");
    }

    #[test]
    fn a_rate_limit_that_is_not_a_positive_rate_is_refused() {
        for qps in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-300] {
            assert!(Budget::new(RateLimit { qps, burst: 1 }).is_err(), "qps {qps}");
        }
    }

    #[tokio::test]
    async fn a_call_waiting_for_the_rate_limit_is_counted_until_it_passes_or_is_abandoned() {
        let budget = Arc::new(Budget::new(RateLimit { qps: 1.0 / 60.0, burst: 1 }).unwrap());
        budget.until_ready().await;
        assert_eq!(budget.waiting.load(Ordering::SeqCst), 0, "a call that passed at once waits no more");
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move { budget.until_ready().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(budget.waiting.load(Ordering::SeqCst), 1);
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(budget.waiting.load(Ordering::SeqCst), 0, "an abandoned wait is no longer counted");
    }

    #[test]
    fn decode_errors_never_repeat_values_from_the_body() {
        let body = br#"{"migration_tasks": "s3cr3t"}"#;
        let plain =
            decode(Operation::ListMigrationTask, 200, body, &Scrubber::default(), PhantomData::<MigrationTaskPage>);
        let kept = decode(Operation::ListMigrationTask, 200, body, &Scrubber::default(), PageSeed(|_: &_| true));
        for text in [plain.unwrap_err().to_string(), kept.unwrap_err().to_string()] {
            assert!(!text.contains("s3cr3t"), "{text}");
            assert!(text.contains("ListMigrationTask"), "{text}");
        }
    }

    #[test]
    fn outcome_codes_are_bounded() {
        let api = |status, code: &str| DcsError::Api {
            operation: Operation::ShowMigrationTask,
            error: crate::dcs::ApiError { status, code: code.into(), message: String::new(), request_id: None },
        };
        assert_eq!(outcome_code(&api(400, "DCS.4133")), "DCS.4133");
        assert_eq!(outcome_code(&api(429, "APIGW.0308")), "APIGW.0308");
        assert_eq!(outcome_code(&api(500, "anything the body says 123")), "500");
        assert_eq!(outcome_code(&api(500, "DCS.12ab")), "500");
        let net = DcsError::Network { operation: Operation::ShowMigrationTask, sent: true, detail: "reset".into() };
        assert_eq!(outcome_code(&net), "network");
    }

    #[test]
    fn an_empty_success_body_decodes_as_an_empty_object() {
        let page = decode(Operation::ListMigrationTask, 200, b" ", &Scrubber::default(), PageSeed(|_: &_| true));
        assert_eq!(page.unwrap(), KeptPage::default());
    }
}
