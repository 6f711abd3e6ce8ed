//! The operator at scale (issues 5, 6, 8 and 17): N RedisMigrations on the DCS simulator through a whole
//! lifecycle, two operator restarts and a mass delete, with the operator as a real process
//! (`dcs-migration-operator run`, the bench-profile build, no crash points) against the real test control plane,
//! started with an audit log (`scripts/control-plane up DIR --audit`) so that what the operator costs the API
//! server is counted too; optionally the same load on a Kopf + official-SDK peer (`benches/peer/kopf_peer.py`).
//!
//! Run: `cargo bench --bench operator_scale` (N = 1,000) or `BENCH_RESOURCES=N cargo bench --bench
//! operator_scale`. Writes `bench-results/operator-scale-<N>.json` (`operator-scale-imports-<N>.json` for
//! `BENCH_MIX=imports`); `scripts/bench-report` turns the result files into `docs/benchmarks.md` and its charts.
//!
//! Phases, each timed against the simulators' call logs (`/_sim/log`, Unix ms on the same clock) and the API
//! server's audit log (requests whose user agent starts with `dcs-migration-operator/`):
//! 1. apply: N resources in one bulk server-side apply (16 in flight), a quarter each of backup import from OBS,
//!    backup import from a backup record (`deletionPolicy: Delete`), online Full and online Incremental (the
//!    manifests are `examples/*.yaml` with the simulator as endpoint); `BENCH_MIX=imports`: half each of the two
//!    backup imports. With `BENCH_NAMESPACES` = K > 1 the resources are spread over K namespaces, each with a DCS
//!    account of its own (its own simulator, access key, secret key and project): K accounts for the operator;
//! 2. until every resource is Ready (Succeeded, or IncrementalMigrating): DCS calls and API-server writes per
//!    resource, by kind; then a window of `BENCH_STREAMING_SECONDS` while the incremental tasks stream;
//! 3. latency: a sample of streaming tasks is forced to FAILED through `PUT /_sim/tasks/{id}`, spread over time;
//!    the time until a watch sees `.status.remoteStatus: FAILED` is the status latency;
//! 4. terminal: the other incremental resources get `spec.stopped: true`; once everything is terminal (Succeeded,
//!    Failed, Terminated) every DCS call and API write over `BENCH_TERMINAL_SECONDS` is one for terminal resources;
//! 5. restart, all terminal: the operator is stopped (SIGTERM) and started again; DCS calls and API writes in its
//!    first `BENCH_RESTART_SECONDS`;
//! 6. restart, with moving tasks: the stopped resources of the first half of the accounts get `spec.stopped:
//!    false` and stream again; the operator is stopped, a sample of them (`BENCH_RESTART_SAMPLE`) is forced to
//!    FAILED while it is down, and it is started again: how long until each forced change is in status, and the
//!    DCS calls of its first `BENCH_RESTART_SECONDS` against the list pages of the accounts with moving tasks;
//! 7. mass delete: `kubectl delete rmig --all --wait=false`, until every resource is gone: stop calls, and the time
//!    from the last task reaching TERMINATED to the last finalizer released;
//! 8. with `BENCH_PEER=1`: the same N resources in a fresh namespace and simulator, driven by the Kopf peer until
//!    all Ready and through the streaming window (DCS calls to Ready, calls per minute while streaming, time to
//!    Ready, memory), side by side with ours.
//!
//! The operator's memory (VmRSS, VmHWM) and CPU (utime + stime) are sampled every second, the peer's too.
//!
//! Knobs (env): `BENCH_RESOURCES` (1000), `BENCH_NAMESPACES` (= accounts; 10 from 10,000 resources, else 1),
//! `BENCH_MIX` (`all` | `imports`), `BENCH_PHASE_SECONDS` (8: each transitional state of the simulator),
//! `BENCH_QPS` / `BENCH_BURST` (unset: the operator's defaults, 10 and 20 per account), `BENCH_TICK` (2s),
//! `BENCH_LATENCY_SAMPLE` (100, at most half the incremental resources), `BENCH_STREAMING_SECONDS` (60),
//! `BENCH_TERMINAL_SECONDS` (60), `BENCH_RESTART_SECONDS` (60), `BENCH_RESTART_SAMPLE` (50), `BENCH_PEER` (0),
//! `BENCH_OUT` (result file), `BENCH_OPERATOR_LOG` (the operator's `RUST_LOG`), `BENCH_OPERATOR_ENV` (`K=V,K=V`
//! for the operator), `BENCH_PEER_VENV` (the peer's venv, default `~/.cache/dcs-migration-operator/peer-venv`,
//! created from `benches/peer/requirements.txt` when missing).

#![recursion_limit = "256"]

#[path = "../tests/e2e/mod.rs"]
mod e2e;
#[path = "../tests/support/mod.rs"]
mod support;
use support::audit::{Agent, Request, read_audit};

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The operator's own defaults for `--qps` and `--burst` (src/cli/run.rs), used when `BENCH_QPS`/`BENCH_BURST`
/// are unset (the flags are then not passed at all).
const OPERATOR_DEFAULT_QPS: f64 = 10.0;
const OPERATOR_DEFAULT_BURST: u32 = 20;
/// The list page size of `ListMigrationTask` (design §4).
const LIST_PAGE: usize = 1000;
const LABEL: &str = "bench=operator-scale";
const PEER_LABEL: &str = "bench=peer";

// ---- knobs --------------------------------------------------------------------------------------------------------

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

fn env_opt<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mix {
    /// A quarter each of the four kinds.
    All,
    /// Half each of the two backup imports.
    Imports,
}

impl Mix {
    fn key(self) -> &'static str {
        match self {
            Mix::All => "all",
            Mix::Imports => "imports",
        }
    }

    fn kind(self, i: usize) -> Kind {
        match self {
            Mix::All => Kind::ALL[i % 4],
            Mix::Imports => [Kind::ImportObs, Kind::ImportRecord][i % 2],
        }
    }
}

#[derive(Debug, Clone)]
struct Knobs {
    resources: usize,
    namespaces: usize,
    mix: Mix,
    phase_seconds: f64,
    qps: Option<f64>,
    burst: Option<u32>,
    tick: String,
    tick_s: f64,
    stop_batch_window: String,
    latency_sample: usize,
    streaming_seconds: u64,
    terminal_seconds: u64,
    restart_seconds: u64,
    restart_sample: usize,
    peer: bool,
}

impl Knobs {
    fn from_env() -> Self {
        let tick: String = env_or("BENCH_TICK", "2s".to_owned());
        let tick_s =
            dcs_migration_operator::cli::run::parse_duration(&tick).expect("BENCH_TICK is a duration").as_secs_f64();
        let resources = env_or("BENCH_RESOURCES", 1000usize).max(4);
        let mix = match std::env::var("BENCH_MIX").as_deref().map(str::trim) {
            Ok("imports") => Mix::Imports,
            Ok("" | "all") | Err(_) => Mix::All,
            Ok(other) => panic!("BENCH_MIX={other}: `all` or `imports`"),
        };
        Self {
            resources,
            namespaces: env_or("BENCH_NAMESPACES", if resources >= 10_000 { 10usize } else { 1 }).clamp(1, resources),
            mix,
            phase_seconds: env_or("BENCH_PHASE_SECONDS", 8.0),
            qps: env_opt("BENCH_QPS"),
            burst: env_opt("BENCH_BURST"),
            tick,
            tick_s,
            stop_batch_window: "1s".to_owned(),
            latency_sample: env_or("BENCH_LATENCY_SAMPLE", 100usize),
            streaming_seconds: env_or("BENCH_STREAMING_SECONDS", 60u64),
            terminal_seconds: env_or("BENCH_TERMINAL_SECONDS", 60u64),
            restart_seconds: env_or("BENCH_RESTART_SECONDS", 60u64),
            restart_sample: env_or("BENCH_RESTART_SAMPLE", 50usize),
            peer: env_or("BENCH_PEER", 0u8) == 1,
        }
    }

    fn qps(&self) -> f64 {
        self.qps.unwrap_or(OPERATOR_DEFAULT_QPS)
    }

    fn burst(&self) -> u32 {
        self.burst.unwrap_or(OPERATOR_DEFAULT_BURST)
    }

    /// The operator's flags besides the scope.
    fn operator_args(&self) -> Vec<String> {
        let mut args =
            vec!["--tick".into(), self.tick.clone(), "--stop-batch-window".into(), self.stop_batch_window.clone()];
        if let Some(qps) = self.qps {
            args.extend(["--qps".into(), qps.to_string()]);
        }
        if let Some(burst) = self.burst {
            args.extend(["--burst".into(), burst.to_string()]);
        }
        args
    }
}

// ---- the four kinds of resource ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    ImportObs,
    ImportRecord,
    OnlineFull,
    OnlineIncremental,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::ImportObs, Kind::ImportRecord, Kind::OnlineFull, Kind::OnlineIncremental];

    fn example(self) -> &'static str {
        match self {
            Kind::ImportObs => "backup-import-obs.yaml",
            Kind::ImportRecord => "backup-import-record.yaml",
            Kind::OnlineFull => "online-full.yaml",
            Kind::OnlineIncremental => "online-incremental.yaml",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::ImportObs => "backup import (OBS)",
            Kind::ImportRecord => "backup import (backup record)",
            Kind::OnlineFull => "online Full",
            Kind::OnlineIncremental => "online Incremental",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Kind::ImportObs => "importObs",
            Kind::ImportRecord => "importRecord",
            Kind::OnlineFull => "onlineFull",
            Kind::OnlineIncremental => "onlineIncremental",
        }
    }

    fn online(self) -> bool {
        matches!(self, Kind::OnlineFull | Kind::OnlineIncremental)
    }

    /// The fewest DCS calls that take one resource of this kind from apply to Ready, as a careful
    /// per-resource client would spend them (see docs/benchmarks.md, "Minimum"):
    /// - 1 `ListMigrationTask` by name before the create (design §4, crash-safe create: the
    ///   deterministic name is looked up first, so a lost reply never makes a duplicate);
    /// - 1 create (`CreateMigrationTask` / `CreateOnlineMigrationTask`);
    /// - online: 1 `SetOnlineMigrationTask` (configure), after an observation of `RUNNING`;
    /// - 1 observation of the final state (`SUCCESS`, or `INCRMIGEATING`).
    ///
    /// Progress (`ShowMigrationTaskStats`) is not in the minimum: how many a task needs depends on
    /// how long it moves (the design's cadence), not on the lifecycle; it is reported apart.
    fn minimum_calls(self) -> u32 {
        if self.online() { 5 } else { 3 }
    }

    /// The phases a resource of this kind passes from apply to Ready when every step is seen: a backup import
    /// Creating, FullMigrating, Succeeded; an online one also Provisioning (issue 17 counts writes against these).
    fn nominal_phases(self) -> usize {
        if self.online() { 4 } else { 3 }
    }
}

/// One RedisMigration of the run.
#[derive(Debug, Clone)]
struct Res {
    /// `namespace/name`.
    key: String,
    name: String,
    /// Namespace and account (one account per namespace).
    account: usize,
    kind: Kind,
}

fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').expect("namespace/name")
}

/// The example manifest of `kind` as `name`, pointing at the simulator.
fn manifest(kind: Kind, name: &str, url: &str, label: &str) -> Value {
    let text = std::fs::read_to_string(e2e::repo().join("examples").join(kind.example())).expect("example exists");
    let text = e2e::with_endpoint(&text, url);
    let mut doc: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", kind.example()));
    let (lk, lv) = label.split_once('=').unwrap();
    doc["metadata"] = json!({ "name": name, "labels": { lk: lv, "bench-kind": kind.key() } });
    doc
}

// ---- clocks, /proc ------------------------------------------------------------------------------------------------

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32, ticks: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks)
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at_ms: i64,
    rss_kib: u64,
    hwm_kib: u64,
    cpu_s: f64,
}

/// The commit the operator was built from, `-dirty` when the working tree had changes.
fn revision() -> String {
    Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=10"])
        .current_dir(e2e::repo())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn machine() -> Value {
    let sh = |cmd: &str| -> String {
        Command::new("sh")
            .args(["-c", cmd])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let mem_kib: u64 = sh("awk '/MemTotal/ {print $2}' /proc/meminfo").parse().unwrap_or(0);
    json!({
        "nproc": sh("nproc").parse::<u64>().unwrap_or(0),
        "memTotalGiB": (mem_kib as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        "kernel": sh("uname -sr"),
        "cpu": sh("awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo"),
        "date": sh("date -u +%Y-%m-%dT%H:%M:%SZ"),
        "rustc": sh("rustc --version"),
        "kubeApiserver": sh("kube-apiserver --version 2>/dev/null || true"),
    })
}

/// Samples a process's memory and CPU every second into `samples` until it is gone; `cpu_base` is added to its
/// CPU (the CPU of earlier incarnations of the operator).
fn spawn_sampler(pid: u32, cpu_base: f64, samples: Arc<Mutex<Vec<Sample>>>) {
    let ticks = clock_ticks();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            every.tick().await;
            let (Some(rss), Some(hwm), Some(cpu)) =
                (status_kib(pid, "VmRSS:"), status_kib(pid, "VmHWM:"), cpu_seconds(pid, ticks))
            else {
                return;
            };
            samples.lock().unwrap().push(Sample { at_ms: now_ms(), rss_kib: rss, hwm_kib: hwm, cpu_s: cpu_base + cpu });
        }
    });
}

/// The CPU the control plane (kube-apiserver and etcd) and the whole machine had used by `at_ms`.
#[derive(Debug, Clone, Copy)]
struct HostSample {
    at_ms: i64,
    control_plane_cpu_s: f64,
    machine_busy_s: f64,
}

/// Seconds all the machine's cores have been busy (not idle, not waiting for I/O) since boot: `/proc/stat`.
fn machine_busy_seconds(ticks: f64) -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<f64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal
    let busy: f64 = cpu.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, v)| v).sum();
    Some(busy / ticks)
}

/// Samples the control plane's processes (`pids`, as `scripts/control-plane` records them) and the machine every
/// second, for the whole run.
fn spawn_host_sampler(pids: Vec<u32>, samples: Arc<Mutex<Vec<HostSample>>>) {
    let ticks = clock_ticks();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            every.tick().await;
            let control_plane_cpu_s = pids.iter().filter_map(|pid| cpu_seconds(*pid, ticks)).sum();
            let Some(machine_busy_s) = machine_busy_seconds(ticks) else { return };
            samples.lock().unwrap().push(HostSample { at_ms: now_ms(), control_plane_cpu_s, machine_busy_s });
        }
    });
}

// ---- what the bench sees of the resources (a watch) ----------------------------------------------------------

#[derive(Debug, Clone, Default)]
struct Seen {
    task_id: Option<String>,
    phase: Option<String>,
    remote: Option<String>,
    ready: bool,
    first_ready_ms: Option<i64>,
    failed_seen_ms: Option<i64>,
    gone_ms: Option<i64>,
    /// The distinct phases shown until the first Ready, in order.
    phases_to_ready: Vec<String>,
}

#[derive(Debug, Default)]
struct World {
    /// By `namespace/name`.
    objects: HashMap<String, Seen>,
}

impl World {
    fn count(&self, f: impl Fn(&Seen) -> bool) -> usize {
        self.objects.values().filter(|s| f(s)).count()
    }

    fn phases(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for s in self.objects.values().filter(|s| s.gone_ms.is_none()) {
            *out.entry(s.phase.clone().unwrap_or_else(|| "-".into())).or_insert(0) += 1;
        }
        out
    }
}

fn observe(world: &Mutex<World>, obj: &DynamicObject, deleted: bool) {
    let at = now_ms();
    let (Some(name), Some(ns)) = (obj.metadata.name.clone(), obj.metadata.namespace.clone()) else { return };
    let status = &obj.data["status"];
    let mut w = world.lock().unwrap();
    let seen = w.objects.entry(format!("{ns}/{name}")).or_default();
    if deleted {
        seen.gone_ms.get_or_insert(at);
        return;
    }
    seen.task_id = status["taskId"].as_str().map(str::to_owned).or(seen.task_id.take());
    seen.phase = status["phase"].as_str().map(str::to_owned);
    seen.remote = status["remoteStatus"].as_str().map(str::to_owned);
    if seen.first_ready_ms.is_none()
        && let Some(phase) = &seen.phase
        && seen.phases_to_ready.last() != Some(phase)
    {
        seen.phases_to_ready.push(phase.clone());
    }
    seen.ready =
        status["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True");
    if seen.ready {
        seen.first_ready_ms.get_or_insert(at);
    }
    if seen.remote.as_deref() == Some("FAILED") {
        seen.failed_seen_ms.get_or_insert(at);
    }
}

async fn watch_resources(api: Api<DynamicObject>, labels: &'static str, world: Arc<Mutex<World>>) {
    let stream = watcher(api, watcher::Config::default().labels(labels));
    futures::pin_mut!(stream);
    loop {
        match stream.try_next().await {
            Ok(Some(watcher::Event::Apply(o) | watcher::Event::InitApply(o))) => observe(&world, &o, false),
            Ok(Some(watcher::Event::Delete(o))) => observe(&world, &o, true),
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(e) => {
                eprintln!("watch error (retrying): {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

// ---- the simulators' call logs ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Call {
    op: String,
    #[allow(dead_code)] // kept for debugging: faulted calls answer 0 or 5xx
    status: u64,
    at_ms: i64,
    /// Which account (simulator) answered it.
    account: usize,
}

const STOPS: [&str; 3] = ["StopMigrationTask", "BatchStopMigrationTasks", "StopMigrationTaskSync"];
const READS: [&str; 2] = ["ListMigrationTask", "ShowMigrationTask"];

fn group_of(op: &str) -> &'static str {
    match op {
        "ListMigrationTask" | "ShowMigrationTask" => "reads",
        "ShowMigrationTaskStats" => "stats",
        "CreateMigrationTask" | "CreateOnlineMigrationTask" | "SetOnlineMigrationTask" => "writes",
        op if STOPS.contains(&op) => "stops",
        _ => "other",
    }
}

fn by_op<'a>(calls: impl Iterator<Item = &'a Call>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for c in calls {
        *out.entry(c.op.clone()).or_insert(0) += 1;
    }
    out
}

fn in_window(calls: &[Call], from: i64, to: i64) -> impl Iterator<Item = &Call> {
    calls.iter().filter(move |c| c.at_ms >= from && c.at_ms < to)
}

/// Per `bin_ms` window from `from` to `to`: the number of calls of `ops`.
fn per_window(calls: &[Call], ops: &[&str], from: i64, to: i64, bin_ms: i64) -> Vec<u64> {
    if to <= from {
        return vec![];
    }
    let bins = ((to - from) / bin_ms).max(1) as usize;
    let mut out = vec![0u64; bins];
    for c in in_window(calls, from, from + bins as i64 * bin_ms) {
        if ops.contains(&c.op.as_str()) {
            out[((c.at_ms - from) / bin_ms) as usize] += 1;
        }
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn median_u64(v: &[u64]) -> f64 {
    let mut s: Vec<f64> = v.iter().map(|x| *x as f64).collect();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    percentile(&s, 50.0)
}

fn per_minute(count: u64, from: i64, to: i64) -> f64 {
    if to <= from { f64::NAN } else { count as f64 * 60_000.0 / (to - from) as f64 }
}

// ---- the API server's audit log (design §7) ----------------------------------------------------------------------

fn requests_by_label<'a>(requests: impl Iterator<Item = &'a Request>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for r in requests {
        *out.entry(r.label()).or_insert(0) += 1;
    }
    out
}

fn requests_in(requests: &[Request], agent: Agent, from: i64, to: i64) -> impl Iterator<Item = &Request> {
    requests.iter().filter(move |r| r.agent == agent && r.at_ms >= from && r.at_ms < to)
}

// ---- the run --------------------------------------------------------------------------------------------------

/// The operator process of the moment (it is restarted twice).
struct Incarnation {
    child: Child,
    pid: u32,
    started_ms: i64,
}

/// A panicking run must not leave its operator behind.
impl Drop for Incarnation {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Bench {
    knobs: Knobs,
    /// One per namespace = account.
    envs: Vec<e2e::Env>,
    client: kube::Client,
    ar: ApiResource,
    world: Arc<Mutex<World>>,
    operator: Option<Incarnation>,
    /// Peak RSS (VmHWM, KiB) of each incarnation, in order.
    incarnation_hwm_kib: Vec<u64>,
    /// CPU seconds of the incarnations that ended.
    cpu_base: f64,
    samples: Arc<Mutex<Vec<Sample>>>,
    marks: Vec<(String, i64)>,
    http: reqwest::Client,
    log: PathBuf,
}

impl Bench {
    fn mark(&mut self, name: &str) -> i64 {
        let t = now_ms();
        let t0 = self.marks.first().map_or(t, |m| m.1);
        println!("[{:>7.1}s] {name}", (t - t0) as f64 / 1000.0);
        self.marks.push((name.to_owned(), t));
        t
    }

    fn say(&self, what: &str) {
        let t0 = self.marks.first().map_or(now_ms(), |m| m.1);
        println!("[{:>7.1}s]   {what}", (now_ms() - t0) as f64 / 1000.0);
    }

    fn api(&self, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &self.ar)
    }

    fn api_all(&self) -> Api<DynamicObject> {
        Api::all_with(self.client.clone(), &self.ar)
    }

    fn check_operator(&mut self) {
        if let Some(op) = &mut self.operator
            && let Ok(Some(status)) = op.child.try_wait()
        {
            panic!("the operator exited ({status}); its log: {}", self.log.display());
        }
    }

    /// Starts an operator incarnation (appending to the same log) and its sampler.
    fn start_operator(&mut self) -> i64 {
        assert!(self.operator.is_none(), "one operator at a time");
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("operator log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dcs-migration-operator"));
        cmd.arg("run");
        if self.envs.len() == 1 {
            cmd.args(["--watch-namespace", &self.envs[0].ns]);
        }
        let child = cmd
            .args(self.knobs.operator_args())
            .env("KUBECONFIG", support::control_plane().kubeconfig())
            .env("RUST_LOG", std::env::var("BENCH_OPERATOR_LOG").unwrap_or_else(|_| "info".to_owned()))
            // Extra environment for the operator, `K=V,K=V` (experiments, e.g. MALLOC_ARENA_MAX=2).
            .envs(
                std::env::var("BENCH_OPERATOR_ENV")
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())),
            )
            // Free ports: other operators (tests) may run on this machine at the same time.
            .env("METRICS_ADDR", "127.0.0.1:0")
            .env("PROBE_ADDR", "127.0.0.1:0")
            .env_remove("HUAWEICLOUD_SDK_AK")
            .env_remove("HUAWEICLOUD_SDK_SK")
            .env_remove("HUAWEICLOUD_SDK_SECURITY_TOKEN")
            .env_remove("DCS_OPERATOR_CRASH_AT")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("the operator starts");
        let pid = child.id();
        let started_ms = now_ms();
        spawn_sampler(pid, self.cpu_base, self.samples.clone());
        self.operator = Some(Incarnation { child, pid, started_ms });
        self.say(&format!("operator pid {pid} started (log {})", self.log.display()));
        started_ms
    }

    /// SIGTERM (as Kubernetes stops a pod), at most 20 s to drain, then SIGKILL.
    fn stop_operator(&mut self) {
        let Some(mut op) = self.operator.take() else { return };
        let ticks = clock_ticks();
        let cpu = cpu_seconds(op.pid, ticks).unwrap_or(0.0);
        self.incarnation_hwm_kib.push(status_kib(op.pid, "VmHWM:").unwrap_or(0));
        let _ = Command::new("kill").args(["-TERM", &op.pid.to_string()]).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = op.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = op.child.kill();
        let _ = op.child.wait();
        self.cpu_base += cpu;
        self.say(&format!("operator pid {} stopped after {:.1} s", op.pid, (now_ms() - op.started_ms) as f64 / 1000.0));
    }

    async fn sim_get(&self, account: usize, path: &str) -> Value {
        let resp =
            self.http.get(format!("{}{path}", self.envs[account].url())).send().await.expect("simulator admin call");
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or(Value::Null)
    }

    /// Every account's call log, merged in time order.
    async fn calls(&self) -> Vec<Call> {
        let mut all = vec![];
        for account in 0..self.envs.len() {
            all.extend(sim_calls(&self.http, &self.envs[account].url(), account).await);
        }
        all.sort_by_key(|c| c.at_ms);
        all
    }

    /// Tasks per account, as `/_sim/state` lists them.
    async fn tasks_per_account(&self) -> Vec<usize> {
        let mut out = vec![];
        for account in 0..self.envs.len() {
            out.push(self.sim_get(account, "/_sim/state").await["tasks"].as_array().map_or(0, Vec::len));
        }
        out
    }

    /// Waits until `done` holds for the watched world, printing the phases every 10 s.
    async fn wait_until(&mut self, what: &str, timeout: Duration, done: impl Fn(&World) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut next_report = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if done(&self.world.lock().unwrap()) {
                return true;
            }
            self.check_operator();
            let now = tokio::time::Instant::now();
            if now >= deadline {
                let phases = self.world.lock().unwrap().phases();
                self.say(&format!("TIMED OUT waiting for {what}; phases: {phases:?}"));
                return false;
            }
            if now >= next_report {
                let phases = self.world.lock().unwrap().phases();
                self.say(&format!("waiting for {what}: {phases:?}"));
                next_report = now + Duration::from_secs(10);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn patch_stopped(&self, keys: &[String], stopped: bool) {
        let patch = json!({ "spec": { "stopped": stopped } });
        let results: Vec<_> = futures::stream::iter(keys.iter().cloned())
            .map(|key| {
                let patch = patch.clone();
                let (ns, name) = split_key(&key);
                let api = self.api(ns);
                let name = name.to_owned();
                async move {
                    // The patch is idempotent: a pooled connection that the API server closed while idle (a
                    // `SendRequest` error, seen once after the 60-s streaming window) is retried.
                    let mut attempt = 0;
                    loop {
                        match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                            Ok(_) => return Ok(()),
                            Err(e) if attempt < 3 && !matches!(e, kube::Error::Api(_)) => {
                                attempt += 1;
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            }
                            Err(e) => return Err(format!("{key}: {e}")),
                        }
                    }
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        for r in results {
            r.expect("patching spec.stopped");
        }
    }

    /// Forces the tasks of `keys` to FAILED through the simulator's admin API, `gap` apart; returns when each was
    /// forced.
    async fn force_failed(&self, keys: &[String], gap: impl Fn() -> Duration) -> Vec<(String, i64)> {
        let mut forced = vec![];
        for key in keys {
            let task = self.world.lock().unwrap().objects.get(key).and_then(|s| s.task_id.clone());
            let Some(task) = task else {
                self.say(&format!("{key} has no task id; skipped"));
                continue;
            };
            let account = self.envs.iter().position(|e| e.ns == split_key(key).0).expect("a namespace of the run");
            let resp = self
                .http
                .put(format!("{}/_sim/tasks/{task}", self.envs[account].url()))
                .header("content-type", "application/json")
                .body(json!({"status": "FAILED", "errorMessage": "bench"}).to_string())
                .send()
                .await
                .expect("PUT /_sim/tasks");
            assert!(resp.status().is_success(), "forcing {task}: {}", resp.status());
            forced.push((key.clone(), now_ms()));
            let pause = gap();
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        forced
    }

    /// Server-side applies `docs` (16 in flight).
    async fn apply(&self, docs: Vec<(String, Value)>) {
        let applied: Vec<Result<(), String>> = futures::stream::iter(docs)
            .map(|(key, doc)| {
                let (ns, name) = split_key(&key);
                let api = self.api(ns);
                let name = name.to_owned();
                async move {
                    api.patch(&name, &PatchParams::apply("operator-scale-bench").force(), &Patch::Apply(&doc))
                        .await
                        .map(|_| ())
                        .map_err(|e| format!("{key}: {e}"))
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        for r in applied {
            r.expect("server-side apply of a RedisMigration");
        }
    }
}

async fn sim_calls(http: &reqwest::Client, url: &str, account: usize) -> Vec<Call> {
    let get = |path: &'static str| {
        let http = http.clone();
        let url = format!("{url}{path}");
        async move {
            let resp = http.get(url).send().await.expect("simulator admin call");
            serde_json::from_slice::<Value>(&resp.bytes().await.unwrap()).unwrap_or(Value::Null)
        }
    };
    let log = get("/_sim/log").await;
    let calls: Vec<Call> = log
        .as_array()
        .expect("/_sim/log is an array")
        .iter()
        .map(|r| Call {
            op: r["operation"].as_str().unwrap_or("?").to_owned(),
            status: r["status"].as_u64().unwrap_or(0),
            at_ms: r["atMs"].as_i64().unwrap_or(0),
            account,
        })
        .collect();
    let state = get("/_sim/state").await;
    let counted: u64 = state["calls"].as_object().map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    assert!(
        counted as usize <= calls.len() + 8,
        "the simulator's call log lost entries ({} logged, {counted} counted): the ring is too small for this run",
        calls.len()
    );
    calls
}

// ---- the Kopf peer ----------------------------------------------------------------------------------------------

/// The peer's Python: a venv with `benches/peer/requirements.txt`, made on first use.
fn peer_python() -> PathBuf {
    let venv = std::env::var("BENCH_PEER_VENV").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/dcs-migration-operator/peer-venv")
    });
    let requirements = e2e::repo().join("benches/peer/requirements.txt");
    let marker = venv.join(".installed");
    let wanted = std::fs::read_to_string(&requirements).expect("benches/peer/requirements.txt");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        println!("installing the peer's venv in {} (kopf, huaweicloudsdkdcs)", venv.display());
        let ok = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
                .arg(&requirements)
                .status()
                .is_ok_and(|s| s.success());
        assert!(ok, "installing the peer's venv in {}", venv.display());
        std::fs::write(&marker, wanted).unwrap();
    }
    venv.join("bin/python")
}

/// What the peer did with N resources (the same figures as ours).
struct PeerRun {
    ns: String,
    t_apply: i64,
    last_ready: i64,
    all_ready: bool,
    ready_s: Vec<f64>,
    streaming: (i64, i64),
    calls: Vec<Call>,
    samples: Vec<Sample>,
    hwm_kib: u64,
    cpu_s: f64,
    log: PathBuf,
}

async fn run_peer(b: &mut Bench, res_count: usize) -> PeerRun {
    let python = peer_python();
    let k = b.knobs.clone();
    let env =
        e2e::Env::with_account("bench-peer", Duration::from_secs_f64(k.phase_seconds), e2e::AK, e2e::PROJECT, |c| c)
            .await;
    let ns = env.ns.clone();
    let world = Arc::new(Mutex::new(World::default()));
    tokio::spawn(watch_resources(Api::namespaced_with(b.client.clone(), &ns, &b.ar), PEER_LABEL, world.clone()));
    let log = std::env::temp_dir().join(format!("dcs-peer-{}.log", std::process::id()));
    let file = std::fs::File::create(&log).expect("peer log file");
    let mut child = Command::new(&python)
        .args(["-m", "kopf", "run", "--standalone", "--namespace", &ns])
        .arg(e2e::repo().join("benches/peer/kopf_peer.py"))
        .env("KUBECONFIG", support::control_plane().kubeconfig())
        .env("PEER_ACCESS_KEY", &env.access_key)
        .env("PEER_SECRET_KEY", &env.secret_key)
        .env("PEER_PROJECT_ID", &env.project)
        .env("PEER_SOURCE_PASSWORD", "bench-source-password")
        .env("PEER_TARGET_PASSWORD", "bench-target-password")
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .expect("the peer starts");
    let pid = child.id();
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    spawn_sampler(pid, 0.0, samples.clone());
    b.say(&format!("peer (kopf) pid {pid} in namespace {ns}, simulator {} (log {})", env.url(), log.display()));
    // Python and the SDK take a few seconds to import; the clock starts at the apply.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let docs: Vec<(String, Value)> = (0..res_count)
        .map(|i| {
            let kind = k.mix.kind(i);
            let name = format!("peer-{i:05}");
            (format!("{ns}/{name}"), manifest(kind, &name, &env.url(), PEER_LABEL))
        })
        .collect();
    let t_apply = b.mark("peer: apply");
    b.apply(docs).await;
    b.mark("peer: applied");
    let timeout = Duration::from_secs(300 + res_count as u64 * 6 / 10);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut next_report = tokio::time::Instant::now() + Duration::from_secs(10);
    let all_ready = loop {
        if world.lock().unwrap().count(|s| s.ready) >= res_count {
            break true;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the peer exited ({status}); its log: {}", log.display());
        }
        if tokio::time::Instant::now() >= deadline {
            b.say(&format!("TIMED OUT waiting for the peer; phases: {:?}", world.lock().unwrap().phases()));
            break false;
        }
        if tokio::time::Instant::now() >= next_report {
            b.say(&format!("peer: waiting for all Ready: {:?}", world.lock().unwrap().phases()));
            next_report = tokio::time::Instant::now() + Duration::from_secs(10);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let t_ready = b.mark(if all_ready { "peer: all Ready" } else { "peer: all Ready (TIMED OUT)" });
    tokio::time::sleep(Duration::from_secs(k.streaming_seconds)).await;
    let t_streaming_end = b.mark("peer: streaming window end");
    let hwm_kib = status_kib(pid, "VmHWM:").unwrap_or(0);
    let cpu_s = cpu_seconds(pid, clock_ticks()).unwrap_or(f64::NAN);
    let _ = child.kill();
    let _ = child.wait();
    let calls = sim_calls(&b.http, &env.url(), 0).await;
    let w = world.lock().unwrap();
    let mut ready_s: Vec<f64> =
        w.objects.values().filter_map(|s| s.first_ready_ms).map(|t| (t - t_apply) as f64 / 1000.0).collect();
    ready_s.sort_by(|a, c| a.partial_cmp(c).unwrap());
    let last_ready = w.objects.values().filter_map(|s| s.first_ready_ms).max().unwrap_or(t_ready);
    let samples = samples.lock().unwrap().clone();
    PeerRun {
        ns,
        t_apply,
        last_ready,
        all_ready,
        ready_s,
        streaming: (t_ready, t_streaming_end),
        calls,
        samples,
        hwm_kib,
        cpu_s,
        log,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let knobs = Knobs::from_env();
    let n = knobs.resources;
    let accounts = knobs.namespaces;
    println!(
        "operator_scale: {n} RedisMigrations ({} mix) in {accounts} namespace(s) = account(s), simulator phase {}s, \
         operator flags {:?}",
        knobs.mix.key(),
        knobs.phase_seconds,
        knobs.operator_args()
    );
    let machine = machine();
    // The working tree at the start of the run (Cargo built the operator from it just before).
    let revision = revision();
    // The control plane of this process, with the audit log (before anything else of the harness).
    let audit_log = support::control_plane_with_audit().audit_log();
    let control_plane_pids: Vec<u32> = std::fs::read_to_string(support::control_plane_with_audit().dir().join("pids"))
        .expect("the control plane's pids")
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let host = Arc::new(Mutex::new(Vec::<HostSample>::new()));
    spawn_host_sampler(control_plane_pids, host.clone());
    let phase = Duration::from_secs_f64(knobs.phase_seconds);
    let mut envs = vec![];
    for a in 0..accounts {
        let access_key = format!("BENCHACCOUNT{a:08}");
        let project = format!("{:032x}", 0xbe4c_0000_u128 + a as u128);
        envs.push(e2e::Env::with_account("bench-scale", phase, &access_key, &project, |c| c).await);
    }
    let gvk = GroupVersionKind::gvk("dcs.migration.io", "v1alpha1", "RedisMigration");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "redismigrations");
    let client = support::admin_client().await;
    let world = Arc::new(Mutex::new(World::default()));
    tokio::spawn(watch_resources(Api::all_with(client.clone(), &ar), LABEL, world.clone()));

    let per_ns = n.div_ceil(accounts);
    let resources: Vec<Res> = (0..n)
        .map(|i| {
            let account = i / per_ns;
            let name = format!("bench-{i:05}");
            Res { key: format!("{}/{name}", envs[account].ns), name, account, kind: knobs.mix.kind(i) }
        })
        .collect();
    let kinds: HashMap<String, Kind> = resources.iter().map(|r| (r.key.clone(), r.kind)).collect();
    let log = std::env::temp_dir().join(format!("dcs-operator-scale-{}.log", std::process::id()));
    println!(
        "namespaces {:?}, simulators {:?}, audit log {}",
        envs.iter().map(|e| e.ns.clone()).collect::<Vec<_>>(),
        envs.iter().map(|e| e.url()).collect::<Vec<_>>(),
        audit_log.display()
    );
    let mut b = Bench {
        knobs: knobs.clone(),
        envs,
        client,
        ar,
        world,
        operator: None,
        incarnation_hwm_kib: vec![],
        cpu_base: 0.0,
        samples: Arc::new(Mutex::new(vec![])),
        marks: vec![],
        http: reqwest::Client::new(),
        log: log.clone(),
    };
    let t_start = b.start_operator();
    // Let the operator start its watches before the load arrives.
    tokio::time::sleep(Duration::from_secs(3)).await;
    b.check_operator();

    // ---- 1. apply --------------------------------------------------------------------------------------------
    let docs: Vec<(String, Value)> =
        resources.iter().map(|r| (r.key.clone(), manifest(r.kind, &r.name, &b.envs[r.account].url(), LABEL))).collect();
    let t_apply = b.mark("apply");
    b.apply(docs).await;
    let t_applied = b.mark("applied");

    // ---- 2. all Ready ----------------------------------------------------------------------------------------
    let ready_timeout = Duration::from_secs(300 + n as u64 * 6 / 10);
    let all_ready = b.wait_until("all Ready", ready_timeout, |w| w.count(|s| s.ready) >= n).await;
    let t_ready = b.mark(if all_ready { "all Ready" } else { "all Ready (TIMED OUT)" });
    // Incremental tasks keep streaming: calls per minute while they do.
    tokio::time::sleep(Duration::from_secs(knobs.streaming_seconds)).await;
    let t_streaming_end = b.mark("streaming window end");

    // ---- 3. remote change -> status latency ------------------------------------------------------------------
    let incremental: Vec<String> = {
        let mut v: Vec<String> =
            resources.iter().filter(|r| r.kind == Kind::OnlineIncremental).map(|r| r.key.clone()).collect();
        v.sort();
        v
    };
    let sample_size = knobs.latency_sample.min(incremental.len() / 2);
    // Spread over the namespaces: every k-th incremental resource.
    let step = (incremental.len() / sample_size.max(1)).max(1);
    let sampled: Vec<String> = incremental.iter().step_by(step).take(sample_size).cloned().collect();
    let sampled_set: HashSet<&String> = sampled.iter().collect();
    let kept: Vec<String> = incremental.iter().filter(|k| !sampled_set.contains(k)).cloned().collect();
    b.mark("latency sample");
    // Spread over time, out of step with the tick.
    let forced = b.force_failed(&sampled, || Duration::from_millis(230 + rand::random::<u64>() % 110)).await;
    let names: Vec<String> = sampled.clone();
    b.wait_until("the forced failures in status", Duration::from_secs(60), move |w| {
        names.iter().all(|n| w.objects.get(n).is_some_and(|s| s.failed_seen_ms.is_some()))
    })
    .await;
    let latencies_of = |w: &World, forced: &[(String, i64)], since: Option<i64>| -> (Vec<f64>, usize) {
        let mut v: Vec<f64> = forced
            .iter()
            .filter_map(|(n, at)| {
                w.objects.get(n).and_then(|s| s.failed_seen_ms).map(|seen| (seen - since.unwrap_or(*at)).max(0) as f64)
            })
            .collect();
        v.sort_by(|a, c| a.partial_cmp(c).unwrap());
        let missing = forced.len() - v.len();
        (v, missing)
    };
    let (latencies, latency_missing) = latencies_of(&b.world.lock().unwrap(), &forced, None);
    let t_latency_end = b.mark("latency sample end");

    // ---- 4. everything terminal; calls and writes for terminal resources ----------------------------------------
    b.patch_stopped(&kept, true).await;
    let names = kept.clone();
    let all_stopped = b
        .wait_until("the stopped incremental tasks Terminated", Duration::from_secs(180 + n as u64 / 20), move |w| {
            names.iter().all(|n| w.objects.get(n).is_some_and(|s| s.phase.as_deref() == Some("Terminated")))
        })
        .await;
    let t_terminal = b.mark(if all_stopped { "all terminal" } else { "all terminal (TIMED OUT)" });
    // Let the last status writes (a progress write may wait out its interval) and observations of the stop settle.
    tokio::time::sleep(Duration::from_secs_f64(knobs.tick_s + 3.0)).await;
    let t_quiet = b.mark("terminal window");
    // Resources that ended long ago come up for their resync (>= 10 min) in the window: their looks share one
    // walk per account and RESYNC_LOOKS (60 s); nothing else may call.
    let resync_pages: u64 = b.tasks_per_account().await.iter().map(|t| t.div_ceil(LIST_PAGE).max(1) as u64).sum();
    tokio::time::sleep(Duration::from_secs(knobs.terminal_seconds)).await;
    let t_quiet_end = b.mark("terminal window end");
    let resync_allowance = resync_pages * (knobs.terminal_seconds.div_ceil(60) + 1);

    // ---- 5. restart with every resource terminal ----------------------------------------------------------------
    b.stop_operator();
    let t_restart_terminal = b.start_operator();
    b.mark("restart, all terminal");
    tokio::time::sleep(Duration::from_secs(knobs.restart_seconds)).await;
    b.mark("restart, all terminal: window end");
    b.check_operator();

    // ---- 6. restart with moving tasks: the first half of the accounts stream again --------------------------------
    let moving_accounts: HashSet<usize> = (0..accounts.div_ceil(2)).collect();
    let restarted_keys: Vec<String> = kept
        .iter()
        .filter(|k| resources.iter().any(|r| &r.key == *k && moving_accounts.contains(&r.account)))
        .cloned()
        .collect();
    b.patch_stopped(&restarted_keys, false).await;
    let names = restarted_keys.clone();
    let restarted = b
        .wait_until("the restarted tasks streaming again", Duration::from_secs(240 + n as u64 / 20), move |w| {
            names.iter().all(|n| w.objects.get(n).is_some_and(|s| s.phase.as_deref() == Some("IncrementalMigrating")))
        })
        .await;
    b.mark(if restarted { "restarted" } else { "restarted (TIMED OUT)" });
    tokio::time::sleep(Duration::from_secs(5)).await;
    let restart_moving = if restarted_keys.is_empty() {
        None
    } else {
        b.stop_operator();
        // At most half of them: the others keep moving, so that the restart has moving tasks to observe.
        let sample_size = knobs.restart_sample.min(restarted_keys.len().div_ceil(2));
        let step = (restarted_keys.len() / sample_size.max(1)).max(1);
        let sample: Vec<String> = restarted_keys.iter().step_by(step).take(sample_size).cloned().collect();
        let forced = b.force_failed(&sample, || Duration::ZERO).await;
        let pages: usize = {
            let tasks = b.tasks_per_account().await;
            moving_accounts.iter().map(|a| tasks[*a].div_ceil(LIST_PAGE).max(1)).sum()
        };
        let t_restart = b.start_operator();
        b.mark("restart, tasks moving");
        let names = sample.clone();
        b.wait_until("the changes made while the operator was down, in status", Duration::from_secs(120), move |w| {
            names.iter().all(|n| w.objects.get(n).is_some_and(|s| s.failed_seen_ms.is_some()))
        })
        .await;
        let rest = (t_restart + knobs.restart_seconds as i64 * 1000 - now_ms()).max(0) as u64;
        tokio::time::sleep(Duration::from_millis(rest)).await;
        let t_end = b.mark("restart, tasks moving: window end");
        let (observed, missing) = latencies_of(&b.world.lock().unwrap(), &forced, Some(t_restart));
        Some((t_restart, t_end, pages, observed, missing, forced.iter().map(|f| f.0.clone()).collect::<Vec<_>>()))
    };

    // ---- 7. mass delete --------------------------------------------------------------------------------------
    let mut live: HashSet<(usize, String)> = HashSet::new();
    for account in 0..accounts {
        let state = b.sim_get(account, "/_sim/state").await;
        live.extend(
            state["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| !matches!(t["status"].as_str(), Some("SUCCESS" | "FAILED" | "TERMINATED" | "RELEASED")))
                .filter_map(|t| t["id"].as_str().or(t["task_id"].as_str()).map(|id| (account, id.to_owned()))),
        );
    }
    let t_delete = b.mark("mass delete");
    let mut kubectl = support::control_plane().kubectl();
    kubectl.args(["delete", "rmig", "--all", "--wait=false"]);
    if accounts == 1 {
        kubectl.args(["-n", &b.envs[0].ns]);
    } else {
        kubectl.arg("--all-namespaces");
    }
    let out = kubectl.output().expect("kubectl runs");
    assert!(out.status.success(), "kubectl delete: {}", String::from_utf8_lossy(&out.stderr));
    // kubectl deletes one object after the other: how fast deletions reach the operator.
    let t_deleted = b.mark("kubectl delete returned");
    let mut terminated_seen: HashMap<(usize, String), i64> = HashMap::new();
    let delete_deadline = tokio::time::Instant::now() + Duration::from_secs(300 + n as u64 / 4);
    let mut next_report = tokio::time::Instant::now() + Duration::from_secs(10);
    let all_gone = loop {
        let at = now_ms();
        for account in 0..accounts {
            if !live.iter().any(|(a, _)| *a == account) {
                continue;
            }
            let state = b.sim_get(account, "/_sim/state").await;
            let present: HashMap<String, String> = state["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| {
                    let id = t["id"].as_str().or(t["task_id"].as_str())?;
                    Some((id.to_owned(), t["status"].as_str().unwrap_or("").to_owned()))
                })
                .collect();
            for (a, id) in live.iter().filter(|(a, _)| *a == account) {
                let ended = present
                    .get(id)
                    .is_none_or(|s| matches!(s.as_str(), "TERMINATED" | "SUCCESS" | "FAILED" | "RELEASED"));
                if ended {
                    terminated_seen.entry((*a, id.clone())).or_insert(at);
                }
            }
        }
        // One item tells whether any is left; the count (printed) needs the whole list, as the API server leaves
        // `remainingItemCount` out of a list with a label selector: read every 10 s only, not every poll.
        let any_left = b.api_all().list_metadata(&ListParams::default().labels(LABEL).limit(1)).await;
        if any_left.is_ok_and(|l| l.items.is_empty()) {
            break true;
        }
        b.check_operator();
        let count_left = || async {
            let all = b.api_all().list_metadata(&ListParams::default().labels(LABEL)).await;
            all.map_or(usize::MAX, |l| l.items.len())
        };
        if tokio::time::Instant::now() >= delete_deadline {
            let left = count_left().await;
            b.say(&format!("TIMED OUT: {left} resources left"));
            break false;
        }
        if tokio::time::Instant::now() >= next_report {
            let left = count_left().await;
            b.say(&format!(
                "deleting: {left} resources left, {} of {} live tasks ended",
                terminated_seen.len(),
                live.len()
            ));
            next_report = tokio::time::Instant::now() + Duration::from_secs(10);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // The watch may lag the list by a moment.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t_gone_end = b.mark(if all_gone { "all gone" } else { "all gone (TIMED OUT)" });
    let final_cpu = b.cpu_base + b.operator.as_ref().and_then(|op| cpu_seconds(op.pid, clock_ticks())).unwrap_or(0.0);
    b.stop_operator();
    let calls = b.calls().await;
    let samples = b.samples.lock().unwrap().clone();
    let world = std::mem::take(&mut *b.world.lock().unwrap());

    // ---- 8. the peer ---------------------------------------------------------------------------------------------
    let peer = if knobs.peer { Some(run_peer(&mut b, n).await) } else { None };
    let t_end = now_ms();
    // Let the API server flush the audit log (blocking mode: it is written before each answer).
    let requests = read_audit(&audit_log);
    println!("audit log: {} requests of the operator and the peer", requests.len());

    // ---- measurements ------------------------------------------------------------------------------------------
    let tick_ms = (knobs.tick_s * 1000.0).round() as i64;
    let restart_ms = knobs.restart_seconds as i64 * 1000;

    // Time to Ready.
    let mut ready_s: Vec<f64> =
        world.objects.values().filter_map(|s| s.first_ready_ms).map(|t| (t - t_apply) as f64 / 1000.0).collect();
    ready_s.sort_by(|a, c| a.partial_cmp(c).unwrap());
    let ready_by_kind: BTreeMap<&str, f64> = Kind::ALL
        .iter()
        .map(|k| {
            let worst = world
                .objects
                .iter()
                .filter(|(key, _)| kinds.get(*key) == Some(k))
                .filter_map(|(_, s)| s.first_ready_ms)
                .max()
                .map_or(f64::NAN, |t| (t - t_apply) as f64 / 1000.0);
            (k.key(), worst)
        })
        .collect();
    let last_ready = world.objects.values().filter_map(|s| s.first_ready_ms).max().unwrap_or(t_ready);
    let time_to_ready = (last_ready - t_apply) as f64 / 1000.0;

    // Calls from apply to all Ready.
    let lifecycle = by_op(in_window(&calls, t_apply, last_ready + 1));
    let lifecycle_total: u64 = lifecycle.values().sum();
    let lifecycle_stats = lifecycle.get("ShowMigrationTaskStats").copied().unwrap_or(0);
    let minimum_total: u64 = resources.iter().map(|r| r.kind.minimum_calls() as u64).sum();
    let per_resource = lifecycle_total as f64 / n as f64;
    let per_resource_wo_stats = (lifecycle_total - lifecycle_stats) as f64 / n as f64;
    let minimum_per_resource = minimum_total as f64 / n as f64;
    let creates = lifecycle.get("CreateMigrationTask").copied().unwrap_or(0)
        + lifecycle.get("CreateOnlineMigrationTask").copied().unwrap_or(0);
    let configures = lifecycle.get("SetOnlineMigrationTask").copied().unwrap_or(0);
    let online = resources.iter().filter(|r| r.kind.online()).count() as u64;

    // The floor of the time to Ready: each account must spend one create per task and one configure per online
    // task at `--qps` after its `--burst`, and the last task then still runs its last phase on the remote side;
    // an online task needs at least two phases (CREATING, FULLMIGRATING) whatever the budget.
    let (qps, burst) = (knobs.qps(), knobs.burst() as f64);
    let phase_s = knobs.phase_seconds;
    let floor_calls_s = (0..accounts)
        .map(|a| {
            let writes: usize =
                resources.iter().filter(|r| r.account == a).map(|r| if r.kind.online() { 2 } else { 1 }).sum();
            (writes as f64 - burst).max(0.0) / qps
        })
        .fold(0.0, f64::max);
    let lifecycle_floor_s = if online > 0 { 2.0 * phase_s } else { phase_s };
    let floor_s = (floor_calls_s + phase_s).max(lifecycle_floor_s);
    let floor_ratio = time_to_ready / floor_s;

    // Reads per tick while tasks move: from the last create to all Ready (lookups by name are done), and
    // while the incremental tasks stream after all Ready.
    let last_create = calls
        .iter()
        .filter(|c| c.op.starts_with("Create") && c.at_ms <= last_ready)
        .map(|c| c.at_ms)
        .max()
        .unwrap_or(t_apply);
    let moving_reads = per_window(&calls, &READS, last_create + 1000, last_ready, tick_ms);
    let streaming_reads = per_window(&calls, &READS, t_ready + 1000, t_streaming_end, tick_ms);
    let lifecycle_reads = per_window(&calls, &READS, t_apply, last_ready, tick_ms);
    let reads_summary = |v: &[u64]| {
        json!({
            "windows": v.len(),
            "median": median_u64(v),
            "max": v.iter().copied().max().unwrap_or(0),
            "mean": if v.is_empty() { 0.0 } else { v.iter().sum::<u64>() as f64 / v.len() as f64 },
        })
    };

    // Calls per minute while the incremental tasks stream (everything else Ready and ended).
    let streaming_calls = by_op(in_window(&calls, t_ready, t_streaming_end));
    let streaming_per_min = per_minute(streaming_calls.values().sum(), t_ready, t_streaming_end);

    // Terminal resources.
    let terminal_calls = by_op(in_window(&calls, t_quiet, t_quiet_end));
    let terminal_total: u64 = terminal_calls.values().sum();
    let terminal_per_min = per_minute(terminal_total, t_quiet, t_quiet_end);

    // Mass delete.
    let delete_calls = by_op(in_window(&calls, t_delete, t_gone_end + 1));
    let stop_calls: u64 = STOPS.iter().map(|op| delete_calls.get(*op).copied().unwrap_or(0)).sum();
    let last_gone = world.objects.values().filter_map(|s| s.gone_ms).max().unwrap_or(t_gone_end);
    let last_terminated = terminated_seen.values().copied().max();
    let last_stop_call =
        calls.iter().filter(|c| c.at_ms >= t_delete && STOPS.contains(&c.op.as_str())).map(|c| c.at_ms).max();
    let release_after_terminated = last_terminated.map(|t| (last_gone - t) as f64 / 1000.0);
    let stop_phase_calls = by_op(in_window(&calls, t_latency_end, t_terminal + 1));

    // Memory and CPU.
    let mib = |kib: u64| kib as f64 / 1024.0;
    let steady: Vec<u64> =
        samples.iter().filter(|s| s.at_ms >= last_ready && s.at_ms < t_quiet_end).map(|s| s.rss_kib).collect();
    let steady_rss = median_u64(&steady) / 1024.0;
    let hwm_first = b.incarnation_hwm_kib.first().copied().unwrap_or(0);
    let peak_rss = mib(hwm_first.max(b.incarnation_hwm_kib.iter().copied().max().unwrap_or(0)));
    let restart_rss: Vec<f64> = b.incarnation_hwm_kib.iter().skip(1).map(|k| mib(*k)).collect();
    let cpu_at = |t: i64| samples.iter().rev().find(|s| s.at_ms <= t).map_or(0.0, |s| s.cpu_s);
    let cpu_to_ready = cpu_at(last_ready) - cpu_at(t_apply);
    let cpu_per_1000 = cpu_to_ready * 1000.0 / n as f64;
    let host = host.lock().unwrap().clone();
    let host_at = |t: i64| host.iter().rev().find(|s| s.at_ms <= t).copied();
    let (control_plane_to_ready, machine_busy_cores) = match (host_at(t_apply), host_at(last_ready)) {
        (Some(a), Some(r)) if r.at_ms > a.at_ms => (
            r.control_plane_cpu_s - a.control_plane_cpu_s,
            (r.machine_busy_s - a.machine_busy_s) / ((r.at_ms - a.at_ms) as f64 / 1000.0),
        ),
        _ => (f64::NAN, f64::NAN),
    };
    let control_plane_per_1000 = control_plane_to_ready * 1000.0 / n as f64;
    let control_plane_cores = control_plane_to_ready / ((last_ready - t_apply).max(1) as f64 / 1000.0);

    // ---- what the API server saw ----------------------------------------------------------------------------------
    let window_requests = |from: i64, to: i64| requests_by_label(requests_in(&requests, Agent::Ours, from, to));
    let writes_in = |from: i64, to: i64, f: &dyn Fn(&Request) -> bool| {
        requests_in(&requests, Agent::Ours, from, to).filter(|r| r.is_write() && f(r)).count() as u64
    };
    // Writes to each RedisMigration (metadata and status) from the apply to its first Ready.
    let mut writes_seq: HashMap<&str, Vec<&Request>> = HashMap::new();
    for r in requests_in(&requests, Agent::Ours, t_apply, last_ready + 1) {
        if r.is_write()
            && r.on_migration()
            && let Some(key) = &r.key
        {
            let ready_at = world.objects.get(key).and_then(|s| s.first_ready_ms).unwrap_or(i64::MAX);
            if r.at_ms <= ready_at {
                writes_seq.entry(key.as_str()).or_default().push(r);
            }
        }
    }
    let writes_of: HashMap<&str, u64> = writes_seq.iter().map(|(k, v)| (*k, v.len() as u64)).collect();
    let mut writes_by_kind = serde_json::Map::new();
    let mut writes_over_total = 0usize;
    let mut worst_kind_margin = f64::NEG_INFINITY;
    let mut import_writes_mean = f64::NAN;
    for kind in Kind::ALL {
        let of_kind: Vec<&Res> = resources.iter().filter(|r| r.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        let writes: Vec<u64> = of_kind.iter().map(|r| writes_of.get(r.key.as_str()).copied().unwrap_or(0)).collect();
        let phases: Vec<usize> = of_kind
            .iter()
            .map(|r| world.objects.get(&r.key).map_or(0, |s| s.phases_to_ready.len()).max(kind.nominal_phases()))
            .collect();
        let over_keys: Vec<&str> = of_kind
            .iter()
            .zip(writes.iter().zip(&phases))
            .filter(|(_, (w, p))| **w as usize > **p + 2)
            .map(|(r, _)| r.key.as_str())
            .collect();
        let over = over_keys.len();
        // What the audit log says of a few of them: which writes, and how the API server answered.
        for key in over_keys.iter().take(3) {
            let seq: Vec<String> = writes_seq[key]
                .iter()
                .map(|r| format!("+{}ms {} {} {}", r.at_ms - t_apply, r.verb, r.resource, r.code))
                .collect();
            let seen = world.objects.get(*key).map(|s| s.phases_to_ready.clone()).unwrap_or_default();
            b.say(&format!("over phases + 2: {key} phases {seen:?}, writes {seq:?}"));
        }
        let mean = writes.iter().sum::<u64>() as f64 / writes.len() as f64;
        let phases_mean = phases.iter().sum::<usize>() as f64 / phases.len() as f64;
        writes_over_total += over;
        worst_kind_margin = worst_kind_margin.max(mean - (phases_mean + 2.0));
        if !kind.online() {
            import_writes_mean = if import_writes_mean.is_nan() { mean } else { import_writes_mean.max(mean) };
        }
        writes_by_kind.insert(
            kind.key().to_owned(),
            json!({
                "resources": of_kind.len(),
                "writesMean": mean,
                "writesMax": writes.iter().max(),
                "writesMin": writes.iter().min(),
                "phasesMean": phases_mean,
                "limitMean": phases_mean + 2.0,
                "overLimit": over,
            }),
        );
    }
    let writes_mean_all = writes_of.values().sum::<u64>() as f64 / n as f64;
    let events_to_ready = writes_in(t_apply, last_ready + 1, &|r: &Request| r.on_events());
    let terminal_writes = writes_in(t_quiet, t_quiet_end, &|r: &Request| r.on_migration());
    let terminal_events = writes_in(t_quiet, t_quiet_end, &|r: &Request| r.on_events());
    let terminal_writes_per_min_per_res = per_minute(terminal_writes, t_quiet, t_quiet_end) / n as f64;
    let rt_end = t_restart_terminal + restart_ms;
    let rt_calls = by_op(in_window(&calls, t_restart_terminal, rt_end));
    let rt_calls_total: u64 = rt_calls.values().sum();
    let rt_writes = writes_in(t_restart_terminal, rt_end, &|_: &Request| true);
    let restart_moving_json;
    let (rm_row_ok, rm_obs_ok, rm_figure, rm_obs_figure, rm_reads_max, rm_pages, rm_obs_max) = match &restart_moving {
        Some((t_restart, _t_end, pages, observed, missing, forced_keys)) => {
            let sample = forced_keys.len();
            let from = *t_restart;
            let to = from + restart_ms;
            let first_minute = by_op(in_window(&calls, from, to));
            let reads_per_tick = per_window(&calls, &READS, from, to, tick_ms);
            let reads_max = reads_per_tick.iter().copied().max().unwrap_or(0);
            let idle_account_calls =
                in_window(&calls, from, to).filter(|c| !moving_accounts.contains(&c.account)).count() as u64;
            let max_obs = observed.last().copied().unwrap_or(f64::NAN);
            let obs_target_ms = (knobs.tick_s + 5.0) * 1000.0;
            let writes = writes_in(from, to, &|r: &Request| r.on_migration());
            let changed: HashSet<&str> = forced_keys.iter().map(String::as_str).collect();
            let unchanged_writes = writes_in(from, to, &|r: &Request| {
                r.on_migration() && r.key.as_deref().is_some_and(|k| !changed.contains(k))
            });
            restart_moving_json = json!({
                "accountsWithMovingTasks": moving_accounts.len(),
                "movingResources": restarted_keys.len(),
                "listPagesPerLook": pages,
                "callsFirstWindowByOperation": first_minute,
                "callsFirstWindow": first_minute.values().sum::<u64>(),
                "readsPerTick": reads_per_tick,
                "readsPerTickMax": reads_max,
                "callsToAccountsWithoutMovingTasks": idle_account_calls,
                "writesToRedisMigrationsFirstWindow": writes,
                "writesToUnchangedRedisMigrationsFirstWindow": unchanged_writes,
                "apiRequestsFirstWindow": window_requests(from, to),
                "forcedWhileDown": sample,
                "neverSeen": missing,
                "observedAfterStartMs": {"p50": percentile(observed, 50.0), "max": max_obs, "samples": observed},
            });
            (
                Some(reads_max as usize <= *pages && idle_account_calls == 0 && unchanged_writes == 0),
                Some(*missing == 0 && max_obs <= obs_target_ms),
                format!(
                    "restart with {} moving: reads per tick max {reads_max} vs {pages} list page(s) per look; \
                     {} calls in the first {} s ({first_minute:?}); {idle_account_calls} calls to accounts without \
                     moving tasks; {writes} writes to RedisMigrations, {unchanged_writes} to unchanged ones",
                    restarted_keys.len(),
                    first_minute.values().sum::<u64>(),
                    knobs.restart_seconds
                ),
                format!(
                    "restart with moving tasks: {sample} changed while down, in status {:.1} s (p50) / {:.1} s (max) \
                     after the start{}",
                    percentile(observed, 50.0) / 1000.0,
                    max_obs / 1000.0,
                    if *missing > 0 { format!(", {missing} NEVER seen") } else { String::new() }
                ),
                reads_max,
                *pages,
                max_obs,
            )
        }
        None => {
            restart_moving_json = Value::Null;
            (
                None,
                None,
                "no moving tasks in this mix".to_owned(),
                "no moving tasks in this mix".to_owned(),
                0,
                0,
                f64::NAN,
            )
        }
    };

    // ---- the peer, side by side ----------------------------------------------------------------------------------
    let ours_calls_to_ready = lifecycle_total;
    let (peer_json, peer_cmp) = match &peer {
        None => (Value::Null, None),
        Some(p) => {
            let to_ready: u64 = in_window(&p.calls, p.t_apply, p.last_ready + 1).count() as u64;
            let streaming = by_op(in_window(&p.calls, p.streaming.0, p.streaming.1));
            let streaming_per_min_peer = per_minute(streaming.values().sum(), p.streaming.0, p.streaming.1);
            let time = (p.last_ready - p.t_apply) as f64 / 1000.0;
            let peak = mib(p.hwm_kib.max(p.samples.iter().map(|s| s.hwm_kib).max().unwrap_or(0)));
            let peer_window: Vec<&Request> = requests
                .iter()
                .filter(|r| r.agent == Agent::Peer && r.at_ms >= p.t_apply && r.at_ms <= p.last_ready)
                .collect();
            let peer_writes = peer_window.iter().filter(|r| r.is_write() && r.on_migration()).count();
            let peer_events = peer_window.iter().filter(|r| r.is_write() && r.on_events()).count();
            let peer_json = json!({
                "namespace": p.ns,
                "log": p.log.display().to_string(),
                "allReady": p.all_ready,
                "timeToAllReadySeconds": time,
                "timeToReadySeconds": {"p50": percentile(&p.ready_s, 50.0), "max": p.ready_s.last()},
                "callsToReady": to_ready,
                "callsToReadyByOperation": by_op(in_window(&p.calls, p.t_apply, p.last_ready + 1)),
                "streamingCallsByOperation": streaming,
                "streamingCallsPerMinute": streaming_per_min_peer,
                "peakRssMiB": peak,
                "cpuSeconds": p.cpu_s,
                "apiRequestsApplyToReady": requests_by_label(peer_window.iter().copied()),
                "apiWritesToRedisMigrationsPerResource": peer_writes as f64 / n as f64,
                "apiEventWritesPerResource": peer_events as f64 / n as f64,
            });
            (peer_json, Some((to_ready, streaming_per_min_peer, time, peak, p.all_ready)))
        }
    };

    // Time series for the chart: one point per second from the start of the run.
    let t0 = b.marks.first().map(|m| m.1).unwrap_or(t_apply);
    let end = t_gone_end;
    let seconds = ((end - t0) / 1000 + 1).max(1) as usize;
    let mut series: Vec<BTreeMap<&str, f64>> = (0..seconds).map(|s| BTreeMap::from([("t", s as f64)])).collect();
    for c in in_window(&calls, t0, t0 + seconds as i64 * 1000) {
        let slot = &mut series[((c.at_ms - t0) / 1000) as usize];
        *slot.entry("calls").or_insert(0.0) += 1.0;
        *slot.entry(group_of(&c.op)).or_insert(0.0) += 1.0;
    }
    for r in requests_in(&requests, Agent::Ours, t0, t0 + seconds as i64 * 1000) {
        if r.is_write() {
            let slot = &mut series[((r.at_ms - t0) / 1000) as usize];
            *slot.entry(if r.on_events() { "apiEvents" } else { "apiWrites" }).or_insert(0.0) += 1.0;
        }
    }
    for s in &host {
        if s.at_ms >= t0 && s.at_ms < t0 + seconds as i64 * 1000 {
            let slot = &mut series[((s.at_ms - t0) / 1000) as usize];
            slot.insert("controlPlaneCpuSeconds", (s.control_plane_cpu_s * 100.0).round() / 100.0);
            slot.insert("machineBusySeconds", (s.machine_busy_s * 100.0).round() / 100.0);
        }
    }
    for s in &samples {
        if s.at_ms >= t0 && s.at_ms < t0 + seconds as i64 * 1000 {
            let slot = &mut series[((s.at_ms - t0) / 1000) as usize];
            slot.insert("rssMiB", (mib(s.rss_kib) * 100.0).round() / 100.0);
            slot.insert("cpuSeconds", (s.cpu_s * 100.0).round() / 100.0);
        }
    }

    // ---- verdicts --------------------------------------------------------------------------------------------
    let p50 = percentile(&latencies, 50.0);
    let p99 = percentile(&latencies, 99.0);
    let latency_target_ms = (knobs.tick_s + 1.0) * 1000.0;
    let release_target = knobs.tick_s + 5.0;
    struct Row {
        key: &'static str,
        label: &'static str,
        cell: String,
        figure: String,
        value: Value,
        target: String,
        ok: Option<bool>,
    }
    let mut rows: Vec<Row> = vec![];
    let mut row = |key, label, cell: String, figure: String, value: Value, target: &str, ok: Option<bool>| {
        rows.push(Row { key, label, cell, figure, value, target: target.to_owned(), ok })
    };
    let lifecycle_ratio = per_resource_wo_stats / minimum_per_resource;
    let stop_limit = 25usize.max(live.len().div_ceil(50) + accounts);
    // Peak RSS targets: 32 MiB at 200 (issue 5) and at 1,000 (issue 17), 64 MiB at 10,000, 36 MiB for 2,000
    // backup imports on one account; other sizes are reported.
    let rss_limit = match (knobs.mix, n, accounts) {
        (Mix::All, 1..=200, 1) | (Mix::All, 1000, 1) => Some(32.0),
        (Mix::All, 10_000.., _) => Some(64.0),
        (Mix::Imports, 2000, 1) => Some(36.0),
        _ => None,
    };
    let rss_target = rss_limit.map_or("(info)".to_owned(), |l| format!("<= {l:.0} MiB"));
    row(
        "peakRssMiB",
        "Operator peak RSS (VmHWM)",
        format!("{peak_rss:.1} MiB"),
        format!(
            "operator peak RSS (VmHWM): {peak_rss:.1} MiB (first run {:.1} MiB; after restarts {restart_rss:.1?} MiB)",
            mib(hwm_first)
        ),
        json!(peak_rss),
        &rss_target,
        rss_limit.map(|l| peak_rss <= l),
    );
    row(
        "steadyRssMiB",
        "Operator steady RSS (median, all Ready → terminal window end)",
        format!("{steady_rss:.1} MiB"),
        format!("operator steady RSS (median after all Ready): {steady_rss:.1} MiB"),
        json!(steady_rss),
        "(info)",
        None,
    );
    row(
        "cpuPer1000Lifecycles",
        "Operator CPU per 1,000 lifecycles (apply → Ready)",
        format!("{cpu_per_1000:.1} s"),
        format!(
            "operator CPU: {cpu_to_ready:.1} s apply -> all Ready = {cpu_per_1000:.1} s per 1,000 lifecycles; {final_cpu:.1} s in all"
        ),
        json!(cpu_per_1000),
        "reported",
        None,
    );
    row(
        "controlPlaneCpuPer1000Lifecycles",
        "Control plane (kube-apiserver + etcd) CPU per 1,000 lifecycles (apply → Ready)",
        format!("{control_plane_per_1000:.1} s"),
        format!(
            "control plane CPU: {control_plane_to_ready:.1} s apply -> all Ready = {control_plane_per_1000:.1} s per 1,000 \
             lifecycles, {control_plane_cores:.2} cores on average; the machine's {} cores were busy {machine_busy_cores:.2} \
             on average (everything on it: the control plane, the operator, the simulators, this harness)",
            machine["nproc"]
        ),
        json!({"seconds": control_plane_to_ready, "per1000": control_plane_per_1000, "cores": control_plane_cores, "machineBusyCores": machine_busy_cores}),
        "reported",
        None,
    );
    row(
        "timeToAllReadySeconds",
        "Time to all Ready (p50) vs floor at the configured QPS",
        format!("{time_to_ready:.1} s ({:.1} s) = {floor_ratio:.2}× floor {floor_s:.1} s", percentile(&ready_s, 50.0)),
        format!(
            "time to Ready: all {time_to_ready:.1} s (p50 {:.1} s; apply took {:.1} s); floor {floor_s:.1} s \
             (creates+configures per account beyond --burst {burst} at --qps {qps} = {floor_calls_s:.1} s, + one phase \
             {phase_s} s) = {floor_ratio:.2}x",
            percentile(&ready_s, 50.0),
            (t_applied - t_apply) as f64 / 1000.0
        ),
        json!({"seconds": time_to_ready, "floorSeconds": floor_s, "ratio": floor_ratio}),
        "<= 1.1× floor",
        Some(all_ready && floor_ratio <= 1.1),
    );
    row(
        "callsPerLifecycle",
        "DCS calls per lifecycle, excl. progress stats (× minimum)",
        format!("{per_resource_wo_stats:.2} = {lifecycle_ratio:.2}×"),
        format!(
            "DCS calls per lifecycle (excl. progress stats): {per_resource_wo_stats:.2} per resource vs minimum {minimum_per_resource:.2} = {lifecycle_ratio:.2}x"
        ),
        json!(lifecycle_ratio),
        "<= 1.2× minimum",
        Some(lifecycle_ratio <= 1.2),
    );
    row(
        "callsPerLifecycleWithStats",
        "… incl. progress stats",
        format!("{per_resource:.2} = {:.2}×", per_resource / minimum_per_resource),
        format!(
            "DCS calls per lifecycle incl. {lifecycle_stats} progress stats: {per_resource:.2} per resource = {:.2}x minimum",
            per_resource / minimum_per_resource
        ),
        json!(per_resource / minimum_per_resource),
        "(info)",
        None,
    );
    row(
        "createsConfigures",
        "Creates / configures",
        format!("{creates} / {configures}"),
        format!("creates {creates} for {n} resources, configures {configures} for {online} online"),
        json!({"creates": creates, "configures": configures}),
        "exactly 1 per task",
        Some(creates == n as u64 && configures == online),
    );
    row(
        "readsPerTick",
        "Reads (List+Show) per tick: moving median (max); streaming median (max)",
        format!(
            "{:.0} ({}); {:.0} ({})",
            median_u64(&moving_reads),
            moving_reads.iter().max().unwrap_or(&0),
            median_u64(&streaming_reads),
            streaming_reads.iter().max().unwrap_or(&0)
        ),
        format!(
            "reads (List+Show) per {}-s tick while moving: median {:.0}, max {} (streaming: median {:.0}, max {})",
            knobs.tick,
            median_u64(&moving_reads),
            moving_reads.iter().max().unwrap_or(&0),
            median_u64(&streaming_reads),
            streaming_reads.iter().max().unwrap_or(&0)
        ),
        json!(median_u64(&streaming_reads)),
        "independent of N (≤ list pages)",
        None,
    );
    row(
        "streamingCallsPerMinute",
        "DCS calls per minute while the incremental tasks stream",
        format!("{streaming_per_min:.0}"),
        format!(
            "calls/min while {} incremental tasks stream: {streaming_per_min:.1} ({streaming_calls:?})",
            incremental.len()
        ),
        json!(streaming_per_min),
        "(info; see the peer)",
        None,
    );
    row(
        "terminalCallsPerMinute",
        "DCS calls per minute, every resource terminal",
        format!("{terminal_per_min:.1}"),
        format!(
            "calls/min with every resource terminal: {terminal_per_min:.1} ({terminal_total} in {:.0} s: {terminal_calls:?}; \
             resync walks may read {resync_allowance} pages)",
            (t_quiet_end - t_quiet) as f64 / 1000.0
        ),
        json!(terminal_per_min),
        "only resync walks: <= 1 per account and minute",
        Some(
            terminal_total == terminal_calls.get("ListMigrationTask").copied().unwrap_or(0)
                && terminal_total <= resync_allowance,
        ),
    );
    row(
        "statusLatencyP99Ms",
        "Remote change → status p50 / p99",
        format!("{p50:.0} / {p99:.0} ms"),
        format!(
            "remote change -> status: p50 {p50:.0} ms, p99 {p99:.0} ms, max {:.0} ms ({} forced{})",
            latencies.last().copied().unwrap_or(f64::NAN),
            forced.len(),
            if latency_missing > 0 { format!(", {latency_missing} NEVER seen") } else { String::new() }
        ),
        json!(p99),
        &format!("p99 <= tick + 1 s = {latency_target_ms:.0} ms"),
        (!forced.is_empty()).then_some(p99 <= latency_target_ms && latency_missing == 0),
    );
    row(
        "apiWritesPerLifecycle",
        "API writes per resource, apply → Ready (mean; resources over phases + 2)",
        format!("{writes_mean_all:.2} ({writes_over_total} over)"),
        format!(
            "writes to each RedisMigration (metadata + status) from apply to Ready: mean {writes_mean_all:.2}; by kind \
             {}; {writes_over_total} resources over their phases + 2",
            writes_by_kind
                .iter()
                .map(|(k, v)| format!(
                    "{k} {:.2} (max {}, phases {:.1})",
                    v["writesMean"].as_f64().unwrap_or(f64::NAN),
                    v["writesMax"],
                    v["phasesMean"].as_f64().unwrap_or(f64::NAN)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        json!(writes_mean_all),
        "<= phases passed + 2 per resource",
        Some(worst_kind_margin <= 0.0 && writes_over_total == 0),
    );
    row(
        "apiWritesPerImport",
        "API writes per backup import, apply → Ready (mean)",
        format!("{import_writes_mean:.2}"),
        format!("writes to a backup import's RedisMigration from apply to Ready: mean {import_writes_mean:.2}"),
        json!(import_writes_mean),
        "<= 5",
        (!import_writes_mean.is_nan()).then_some(import_writes_mean <= 5.0),
    );
    row(
        "apiEventsPerLifecycle",
        "Event writes per resource, apply → Ready",
        format!("{:.2}", events_to_ready as f64 / n as f64),
        format!(
            "Events written (create/patch) from apply to all Ready: {events_to_ready} = {:.2} per resource",
            events_to_ready as f64 / n as f64
        ),
        json!(events_to_ready as f64 / n as f64),
        "reported apart",
        None,
    );
    row(
        "apiTerminalWritesPerMinute",
        "API writes per minute per terminal resource",
        format!("{terminal_writes_per_min_per_res:.4}"),
        format!(
            "writes to RedisMigrations with every resource terminal: {terminal_writes} in {:.0} s ({terminal_events} Events) = {terminal_writes_per_min_per_res:.4}/min per resource",
            (t_quiet_end - t_quiet) as f64 / 1000.0
        ),
        json!(terminal_writes_per_min_per_res),
        "0",
        Some(terminal_writes == 0),
    );
    row(
        "restartTerminal",
        "Restart, every resource terminal: DCS calls / API writes in the first minute",
        format!("{rt_calls_total} / {rt_writes}"),
        format!(
            "restart with every resource terminal: {rt_calls_total} DCS calls ({rt_calls:?}) and {rt_writes} API writes in the first {} s; requests {:?}",
            knobs.restart_seconds,
            window_requests(t_restart_terminal, rt_end)
        ),
        json!({"dcsCalls": rt_calls_total, "apiWrites": rt_writes}),
        "0 and 0",
        Some(rt_calls_total == 0 && rt_writes == 0),
    );
    row(
        "restartMovingCalls",
        "Restart with moving tasks: reads per tick (max) vs list pages",
        format!("{rm_reads_max} vs {rm_pages}"),
        rm_figure,
        json!({"readsPerTickMax": rm_reads_max, "listPages": rm_pages}),
        "reads per tick <= list pages of the accounts with moving tasks; no call to the others; no write to an unchanged resource",
        rm_row_ok,
    );
    row(
        "restartObservedSeconds",
        "Restart with moving tasks: change made while down → status (max)",
        format!("{:.1} s", rm_obs_max / 1000.0),
        rm_obs_figure,
        json!(rm_obs_max / 1000.0),
        &format!("<= tick + 5 s = {:.0} s", knobs.tick_s + 5.0),
        rm_obs_ok,
    );
    row(
        "massDeleteStopCalls",
        "Stop calls for the mass delete (live tasks)",
        format!("{stop_calls} ({})", live.len()),
        format!(
            "stop calls for the mass delete: {stop_calls} for {} live tasks ({:?})",
            live.len(),
            STOPS.iter().map(|o| (*o, delete_calls.get(*o).copied().unwrap_or(0))).collect::<Vec<_>>()
        ),
        json!(stop_calls),
        &format!("<= {stop_limit} (25 at 1,000; else 1 per 50 live + 1 per account)"),
        Some(stop_calls as usize <= stop_limit),
    );
    row(
        "finalizerReleaseSeconds",
        "Last task TERMINATED → last finalizer released",
        release_after_terminated.map_or("n/a".into(), |s| format!("{s:.1} s")),
        format!(
            "last task TERMINATED -> last finalizer released: {} (all gone {:.1} s after the delete)",
            release_after_terminated.map_or("n/a".into(), |s| format!("{s:.1} s")),
            (last_gone - t_delete) as f64 / 1000.0
        ),
        json!(release_after_terminated),
        &format!("<= tick + 5 s = {release_target:.0} s"),
        Some(all_gone && release_after_terminated.is_none_or(|s| s <= release_target)),
    );
    if let Some((peer_calls, peer_per_min, peer_time, peer_rss, peer_ready)) = peer_cmp {
        let calls_x = peer_calls as f64 / ours_calls_to_ready as f64;
        let stream_x = peer_per_min / streaming_per_min;
        let stream_target = if n >= 1000 { 10.0 } else { 3.0 };
        let mem_x = peer_rss / peak_rss;
        row(
            "peerCallsToReady",
            "vs Kopf peer: DCS calls to Ready (ours / peer)",
            format!("{ours_calls_to_ready} / {peer_calls} = {calls_x:.1}× fewer"),
            format!("DCS calls apply -> all Ready: ours {ours_calls_to_ready}, peer {peer_calls}: {calls_x:.2}x fewer"),
            json!(calls_x),
            ">= 2× fewer",
            Some(peer_ready && calls_x >= 2.0),
        );
        row(
            "peerStreamingCallsPerMinute",
            "vs Kopf peer: DCS calls per minute while streaming (ours / peer)",
            format!("{streaming_per_min:.0} / {peer_per_min:.0} = {stream_x:.1}× fewer"),
            format!(
                "calls/min while tasks stream: ours {streaming_per_min:.1}, peer {peer_per_min:.1}: {stream_x:.2}x fewer"
            ),
            json!(stream_x),
            &format!(">= {stream_target:.0}× fewer"),
            Some(stream_x >= stream_target),
        );
        row(
            "peerTimeToReady",
            "vs Kopf peer: time to all Ready (ours / peer)",
            format!("{time_to_ready:.1} / {peer_time:.1} s"),
            format!("time apply -> all Ready at the default QPS: ours {time_to_ready:.1} s, peer {peer_time:.1} s"),
            json!({"ours": time_to_ready, "peer": peer_time}),
            "ours faster",
            Some(all_ready && peer_ready && time_to_ready < peer_time),
        );
        row(
            "peerMemory",
            "vs Kopf peer: peak RSS (ours / peer)",
            format!("{peak_rss:.1} / {peer_rss:.1} MiB = {mem_x:.1}× less"),
            format!("peak RSS: ours {peak_rss:.1} MiB, peer {peer_rss:.1} MiB: {mem_x:.2}x less"),
            json!(mem_x),
            ">= 5× less",
            Some(mem_x >= 5.0),
        );
    }

    println!();
    println!("operator_scale summary, N = {n} ({})", machine["date"].as_str().unwrap_or(""));
    println!("{:<120} {:<34} verdict", "figure", "target");
    for r in &rows {
        let verdict = match r.ok {
            Some(true) => "ok",
            Some(false) => "MISSED",
            None => "-",
        };
        println!("{:<120} {:<34} {}", r.figure, r.target, verdict);
    }
    println!("DCS calls apply -> all Ready: {lifecycle:?}");
    println!("DCS calls during the mass delete: {delete_calls:?}");

    // ---- the result file ---------------------------------------------------------------------------------------
    let mut command = String::new();
    for var in [
        "BENCH_RESOURCES",
        "BENCH_NAMESPACES",
        "BENCH_MIX",
        "BENCH_PHASE_SECONDS",
        "BENCH_QPS",
        "BENCH_BURST",
        "BENCH_TICK",
        "BENCH_PEER",
    ] {
        if let Ok(v) = std::env::var(var) {
            command.push_str(&format!("{var}={v} "));
        }
    }
    command.push_str("cargo bench --bench operator_scale");
    let api_windows = json!({
        "applyToAllReady": window_requests(t_apply, last_ready + 1),
        "streaming": window_requests(t_ready, t_streaming_end),
        "terminal": window_requests(t_quiet, t_quiet_end),
        "restartAllTerminal": window_requests(t_restart_terminal, rt_end),
        "restartMoving": restart_moving.as_ref().map(|r| window_requests(r.0, r.0 + restart_ms)),
        "massDelete": window_requests(t_delete, t_gone_end + 1),
        "wholeRun": window_requests(t_start, t_gone_end + 1),
    });
    let operator_args: Vec<String> = [
        vec!["run".to_owned(), if accounts == 1 { "--watch-namespace <ns>" } else { "(all namespaces)" }.to_owned()],
        knobs.operator_args(),
    ]
    .concat();
    let result = json!({
        "benchmark": "operator_scale",
        "schema": 2,
        "command": command,
        "revision": revision,
        "machine": machine,
        "config": {
            "resources": n,
            "namespaces": accounts,
            "accounts": accounts,
            "mixKey": knobs.mix.key(),
            "mix": Kind::ALL.iter().map(|k| (k.key().to_owned(), json!({"label": k.label(), "count": resources.iter().filter(|r| r.kind == *k).count(), "minimumCalls": k.minimum_calls()}))).collect::<serde_json::Map<_, _>>(),
            "simulatorPhaseSeconds": knobs.phase_seconds,
            "operatorArgs": operator_args,
            "qps": qps,
            "burst": burst,
            "tickSeconds": knobs.tick_s,
            "latencySample": sample_size,
            "streamingWindowSeconds": knobs.streaming_seconds,
            "terminalWindowSeconds": knobs.terminal_seconds,
            "restartWindowSeconds": knobs.restart_seconds,
            "restartSample": knobs.restart_sample,
            "peer": knobs.peer,
            "apply": "server-side apply, 16 requests in flight",
            "operatorEnv": std::env::var("BENCH_OPERATOR_ENV").unwrap_or_default(),
        },
        "targets": rows.iter().map(|r| json!({"key": r.key, "label": r.label, "cell": r.cell, "figure": r.figure, "value": r.value, "target": r.target, "ok": r.ok})).collect::<Vec<_>>(),
        "figures": {
            "peakRssMiB": peak_rss,
            "peakRssFirstRunMiB": mib(hwm_first),
            "peakRssAfterRestartsMiB": restart_rss,
            "steadyRssMiB": steady_rss,
            "cpuSecondsTotal": final_cpu,
            "cpuSecondsApplyToReady": cpu_to_ready,
            "cpuSecondsPer1000Lifecycles": cpu_per_1000,
            "controlPlaneCpuSecondsApplyToReady": control_plane_to_ready,
            "controlPlaneCpuSecondsPer1000Lifecycles": control_plane_per_1000,
            "controlPlaneCoresApplyToReady": control_plane_cores,
            "machineBusyCoresApplyToReady": machine_busy_cores,
            "applySeconds": (t_applied - t_apply) as f64 / 1000.0,
            "timeToAllReadySeconds": time_to_ready,
            "timeFloorSeconds": floor_s,
            "timeFloorRatio": floor_ratio,
            "allReady": all_ready,
            "timeToReadySeconds": {"p50": percentile(&ready_s, 50.0), "p90": percentile(&ready_s, 90.0), "max": ready_s.last()},
            "timeToReadyByKindSeconds": ready_by_kind,
            "lifecycle": {
                "callsByOperation": lifecycle,
                "total": lifecycle_total,
                "perResource": per_resource,
                "perResourceExclStats": per_resource_wo_stats,
                "minimumPerResource": minimum_per_resource,
                "ratioExclStats": lifecycle_ratio,
                "ratioInclStats": per_resource / minimum_per_resource,
                "creates": creates,
                "configures": configures,
                "onlineResources": online,
            },
            "readsPerTick": {
                "tickSeconds": knobs.tick_s,
                "movingAfterLastCreate": reads_summary(&moving_reads),
                "streamingAfterAllReady": reads_summary(&streaming_reads),
                "applyToAllReady": reads_summary(&lifecycle_reads),
                "movingSeries": moving_reads,
                "streamingSeries": streaming_reads,
            },
            "streaming": {
                "windowSeconds": (t_streaming_end - t_ready) as f64 / 1000.0,
                "incrementalResources": incremental.len(),
                "callsByOperation": streaming_calls,
                "callsPerMinute": streaming_per_min,
            },
            "terminal": {
                "windowSeconds": (t_quiet_end - t_quiet) as f64 / 1000.0,
                "callsByOperation": terminal_calls,
                "callsPerMinute": terminal_per_min,
            },
            "statusLatencyMs": {
                "sample": forced.len(),
                "neverSeen": latency_missing,
                "p50": p50,
                "p90": percentile(&latencies, 90.0),
                "p99": p99,
                "max": latencies.last(),
                "samples": latencies,
            },
            "restartAllTerminal": {
                "windowSeconds": knobs.restart_seconds,
                "callsByOperation": rt_calls,
                "apiWrites": rt_writes,
                "apiRequests": window_requests(t_restart_terminal, rt_end),
            },
            "restartMoving": restart_moving_json,
            "apiServer": {
                "userAgent": "dcs-migration-operator/*",
                "requestsByWindow": api_windows,
                "writesPerLifecycleByKind": writes_by_kind,
                "writesPerLifecycleMean": writes_mean_all,
                "eventWritesApplyToReady": events_to_ready,
                "eventWritesPerResource": events_to_ready as f64 / n as f64,
                "terminalWrites": terminal_writes,
                "terminalEventWrites": terminal_events,
                "terminalWritesPerMinutePerResource": terminal_writes_per_min_per_res,
            },
            "stopForTerminalPhase": {"resources": kept.len(), "callsByOperation": stop_phase_calls},
            "massDelete": {
                "resources": n,
                "liveTasks": live.len(),
                "callsByOperation": delete_calls,
                "stopCalls": stop_calls,
                "allGone": all_gone,
                "allGoneSecondsAfterDelete": (last_gone - t_delete) as f64 / 1000.0,
                "kubectlDeleteSeconds": (t_deleted - t_delete) as f64 / 1000.0,
                "lastTerminatedSecondsAfterDelete": last_terminated.map(|t| (t - t_delete) as f64 / 1000.0),
                "lastStopCallSecondsAfterDelete": last_stop_call.map(|t| (t - t_delete) as f64 / 1000.0),
                "finalizerReleaseAfterLastTerminatedSeconds": release_after_terminated,
                "terminatedPollMs": 500,
            },
            "callsTotal": by_op(calls.iter()),
            "peer": peer_json,
        },
        "marks": b.marks.iter().map(|(name, t)| json!({"name": name, "t": (t - t0) as f64 / 1000.0})).collect::<Vec<_>>(),
        "runSeconds": (t_end - t0) as f64 / 1000.0,
        "series": series,
    });
    let file = match knobs.mix {
        Mix::All => format!("operator-scale-{n}.json"),
        Mix::Imports => format!("operator-scale-imports-{n}.json"),
    };
    let out =
        std::env::var("BENCH_OUT").map(PathBuf::from).unwrap_or_else(|_| e2e::repo().join("bench-results").join(file));
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).expect("result directory");
    }
    std::fs::write(&out, serde_json::to_string_pretty(&result).unwrap() + "\n").expect("writing the result file");
    println!("result: {}", out.display());
    println!("operator log: {}", log.display());
    if let Some(p) = &peer {
        println!("peer log: {}", p.log.display());
    }
}
