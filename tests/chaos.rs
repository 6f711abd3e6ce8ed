//! Chaos suite (issue 8, item 1), on the real control plane and the real simulator:
//! - the operator SIGKILLed at random crash points (`DCS_OPERATOR_CRASH_AT=random:SEED:PERCENT`)
//!   and at random moments, and restarted each time, while a mixed fleet goes through create,
//!   configure, status, stop, switch-over and deletion: no duplicate task, no task left running,
//!   no stuck finalizer, every switch-over request acted on once;
//! - fault storms from the simulator (5xx, 429 bursts, dropped connections, lost replies, 2 s
//!   latency): every resource converges, the call rate stays under `--qps`/`--burst`, backoff shows;
//! - the simulator restarted with its state lost: resources say so, no crash loop, no hot retry,
//!   deletion completes;
//! - a whole namespace deleted with 50 resources and their Secrets, the operator restarted midway.
//!
//! `CHAOS_FULL=1` (what `make chaos` sets) runs the long forms: ≥ 50 kills, several minutes of
//! storm. The short forms (what `make test` runs) keep the file well under two minutes.
//! `CHAOS_SEED=N` replays a kill sequence.

mod e2e;
mod support;

use dcs_migration_operator::crash::Draws;
use e2e::{Env, Operator};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

const PHASE: Duration = Duration::from_millis(300);

fn full() -> bool {
    std::env::var("CHAOS_FULL").is_ok_and(|v| v == "1" || v == "true")
}

/// Remote words of tasks that still move (everything that is not an end state).
fn is_running(status: &str) -> bool {
    !matches!(
        status,
        "SUCCESS"
            | "MIGRATION_SUCCESS"
            | "FAILED"
            | "MIGRATION_FAILED"
            | "ERROR"
            | "TERMINATED"
            | "DELETED"
            | "RELEASED"
    )
}

fn calls(state: &Value, op: &str) -> u64 {
    state["calls"][op].as_u64().unwrap_or(0)
}

fn condition<'a>(rm: &'a Value, type_: &str) -> Option<&'a Value> {
    rm["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)
}

fn has_condition(rm: &Value, type_: &str, status: &str, reason: Option<&str>) -> bool {
    condition(rm, type_).is_some_and(|c| c["status"] == status && reason.is_none_or(|r| c["reason"] == r))
}

/// The namespace's RedisMigrations by name.
fn list(env: &Env) -> BTreeMap<String, Value> {
    let out = env.kubectl(&["get", "rmig", "-o", "json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap_or(json!({"items": []}));
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| (r["metadata"]["name"].as_str().unwrap_or_default().to_owned(), r.clone()))
        .collect()
}

/// What docs/operations.md tells a user to do when a switch-over request is `SwitchUnconfirmed`
/// (a kill between recording it and confirming it): raise `spec.switchover.attempt`. The operator
/// never resends it by itself; the simulator shows an unconfirmed request had no effect, so the
/// counts of exchanges and rollbacks per task stay one per request.
fn ask_again_where_unconfirmed(env: &Env, items: &BTreeMap<String, Value>) {
    for (name, rm) in items {
        let asked = rm["spec"]["switchover"]["attempt"].as_i64().unwrap_or(0);
        let answered = rm["status"]["switchover"]["attempt"].as_i64().unwrap_or(0);
        if condition(rm, "SwitchedOver").is_some_and(|c| c["reason"] == "SwitchUnconfirmed") && asked == answered {
            let patch = json!({"spec": {"switchover": {"attempt": asked + 1}}}).to_string();
            kubectl_ok(env, &["patch", &format!("rmig/{name}"), "--type=merge", "-p", &patch]);
        }
    }
}

fn kubectl_ok(env: &Env, args: &[&str]) {
    let out = env.kubectl(args);
    assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// An example renamed, with extra spec lines appended (the examples end inside `spec`).
fn doc(env: &Env, file: &str, original: &str, name: &str, extra: &str) -> String {
    let mut doc = env.example(file).replace(&format!("name: {original}"), &format!("name: {name}"));
    if !extra.is_empty() {
        doc.push_str(extra);
        doc.push('\n');
    }
    format!("---\n{doc}")
}

/// `/metrics` of the operator when it serves one (another part of the product adds
/// `--metrics-addr`); `None` when the flag does not exist.
fn metrics_flag_supported() -> bool {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcs-migration-operator"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("--metrics-addr")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn scrape(addr: &str) -> Option<String> {
    let resp = reqwest::get(format!("http://{addr}/metrics")).await.ok()?;
    resp.text().await.ok()
}

/// Sum of a counter's samples in a Prometheus text exposition.
fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut found = false;
    let mut sum = 0.0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else { continue };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        if let Some(v) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            found = true;
            sum += v;
        }
    }
    found.then_some(sum)
}

// ------------------------------------------------------------------------------------------------
// Random kills

/// One death of the operator.
#[derive(Debug, Clone)]
struct Kill {
    phase: &'static str,
    /// The crash point, `external` for a SIGKILL from the test at a random moment.
    point: String,
}

/// The operator under a kill regime: dies at random crash points (and, now and then, by a SIGKILL
/// from outside at a random moment), and is restarted each time with the next seed.
struct Chaos {
    op: Operator,
    seed: u64,
    percent: f64,
    incarnation: u64,
    kills: Vec<Kill>,
    /// Deaths without a crash point or an external kill: real crashes (panics, aborts).
    unexpected: Vec<String>,
    phase: &'static str,
    draws: Draws,
    next_external: Instant,
    external_mean: Duration,
    crash_lines_seen: usize,
}

impl Chaos {
    fn start(env: &Env, seed: u64, percent: f64, external_mean: Duration) -> Self {
        let var = format!("random:{seed}:{percent}");
        let op = Operator::start_with(env, &["--qps", "30", "--burst", "30"], &[("DCS_OPERATOR_CRASH_AT", &var)]);
        let mut draws = Draws::new(seed ^ 0x5eed);
        let next_external = Instant::now() + external_mean.mul_f64(0.5 + draws.next_unit());
        Self {
            op,
            seed,
            percent,
            incarnation: 0,
            kills: Vec::new(),
            unexpected: Vec::new(),
            phase: "create",
            draws,
            next_external,
            external_mean,
            crash_lines_seen: 0,
        }
    }

    fn var(&self) -> String {
        format!("random:{}:{}", self.seed.wrapping_add(self.incarnation * 7919), self.percent)
    }

    fn restart(&mut self) {
        self.incarnation += 1;
        let var = self.var();
        self.op.restart(&[("DCS_OPERATOR_CRASH_AT", &var)]);
    }

    /// Restarts the operator if it died; kills it from outside when that is due.
    fn tick(&mut self) {
        if let Some(status) = self.op.try_exit() {
            let logs = self.op.logs();
            let lines: Vec<&str> = logs.lines().filter(|l| l.starts_with("crash point ")).collect();
            if lines.len() > self.crash_lines_seen {
                let line = lines[lines.len() - 1];
                let point = line.trim_start_matches("crash point ").split(' ').next().unwrap_or("?").to_owned();
                self.crash_lines_seen = lines.len();
                self.kills.push(Kill { phase: self.phase, point });
            } else {
                let tail: Vec<&str> = logs.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect();
                self.unexpected.push(format!("exit {status} in phase {}:\n{}", self.phase, tail.join("\n")));
            }
            self.restart();
        } else if Instant::now() >= self.next_external {
            self.op.kill();
            self.kills.push(Kill { phase: self.phase, point: "external".into() });
            self.restart();
            self.next_external = Instant::now() + self.external_mean.mul_f64(0.5 + self.draws.next_unit());
        }
    }

    /// Polls the namespace's resources (restarting the operator as needed) until `check` holds.
    async fn until<T>(
        &mut self,
        env: &Env,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&BTreeMap<String, Value>) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            self.tick();
            let items = list(env);
            ask_again_where_unconfirmed(env, &items);
            if let Some(v) = check(&items) {
                return v;
            }
            if Instant::now() > deadline {
                let statuses: BTreeMap<&String, &Value> = items.iter().map(|(k, v)| (k, &v["status"])).collect();
                panic!(
                    "timed out after {timeout:?} waiting for {what} (kills so far: {:?})\nstatuses: {}\noperator log tail:\n{}",
                    self.kills,
                    serde_json::to_string_pretty(&statuses).unwrap(),
                    tail(&self.op.logs(), 60)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Enters a phase and arranges an outside SIGKILL within the next 1.5 s, so that every phase
    /// sees at least one kill at an arbitrary moment (not only at named points).
    fn enter(&mut self, phase: &'static str) {
        self.phase = phase;
        self.next_external =
            Instant::now() + Duration::from_millis(200) + Duration::from_millis(1300).mul_f64(self.draws.next_unit());
    }

    fn by_phase(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for k in &self.kills {
            *m.entry(k.phase).or_insert(0) += 1;
        }
        m
    }

    fn by_point(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for k in &self.kills {
            *m.entry(k.point.clone()).or_insert(0) += 1;
        }
        m
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// What a member of the fleet is and where it should end up.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    ImportObs,
    ImportRecord,
    OnlineFull,
    Incremental,
    Switchover,
}

struct Member {
    name: String,
    kind: Kind,
    delete_policy: bool,
}

fn fleet(round: usize, big: bool) -> Vec<Member> {
    let copies = if big { 2 } else { 1 };
    let mut members = Vec::new();
    for c in 0..copies {
        let m =
            |prefix: &str, kind, delete_policy| Member { name: format!("{prefix}-r{round}-{c}"), kind, delete_policy };
        members.push(m("imp-obs", Kind::ImportObs, false));
        members.push(m("imp-rec", Kind::ImportRecord, true));
        members.push(m("full", Kind::OnlineFull, false));
        members.push(m("full-del", Kind::OnlineFull, true));
        members.push(m("inc-stop", Kind::Incremental, false));
        members.push(m("inc-del", Kind::Incremental, true));
        members.push(m("inc", Kind::Incremental, false));
        members.push(m("sw", Kind::Switchover, c == 1));
    }
    members
}

fn manifest(env: &Env, m: &Member) -> String {
    let policy = if m.delete_policy { "  deletionPolicy: Delete" } else { "  deletionPolicy: Stop" };
    match m.kind {
        // backup-import-record.yaml already ends with `deletionPolicy: Delete`.
        Kind::ImportRecord => doc(env, "backup-import-record.yaml", "import-from-backup-record", &m.name, ""),
        Kind::ImportObs => doc(env, "backup-import-obs.yaml", "import-from-obs", &m.name, policy),
        Kind::OnlineFull => doc(env, "online-full.yaml", "online-full", &m.name, policy),
        Kind::Incremental => doc(env, "online-incremental.yaml", "online-incremental", &m.name, policy),
        Kind::Switchover => doc(env, "online-incremental-switchover.yaml", "online-switchover", &m.name, policy),
    }
}

fn settled(m: &Member, rm: &Value) -> bool {
    let phase = rm["status"]["phase"].as_str().unwrap_or("");
    let has_task = rm["status"]["taskId"].as_str().is_some_and(|t| !t.is_empty());
    has_task
        && match m.kind {
            Kind::ImportObs | Kind::ImportRecord | Kind::OnlineFull => phase == "Succeeded",
            Kind::Incremental => phase == "IncrementalMigrating",
            Kind::Switchover => {
                phase == "IncrementalMigrating" && has_condition(rm, "SwitchedOver", "True", Some("SwitchedOver"))
            }
        }
}

/// The phases of a lifecycle that must each see a kill.
const PHASES: [&str; 4] = ["create", "stop", "switchover", "delete"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills_across_the_whole_lifecycle_lose_duplicate_and_wedge_nothing() {
    let (target_kills, max_rounds, big) = if full() { (50, 12, true) } else { (15, 4, false) };
    let seed: u64 =
        std::env::var("CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random::<u32>) as u64;
    eprintln!("chaos seed {seed} (CHAOS_SEED={seed} replays the crash-point draws)");
    let env = Env::new("chaos-kills", PHASE).await;
    let mut chaos = Chaos::start(&env, seed, 7.0, Duration::from_secs(if full() { 9 } else { 6 }));
    let started = Instant::now();
    const STEP: Duration = Duration::from_secs(120);
    let mut task_names: HashMap<String, (String, bool)> = HashMap::new(); // task name → (resource, Delete policy)
    let mut switch_requests: HashMap<String, (u64, u64)> = HashMap::new(); // task id → (exchanges, rollbacks) asked
    let mut resources = 0usize;
    let mut round = 0;
    // Rounds go on until the kills reach the target and every phase had one: a seed whose draws cluster on
    // creates would otherwise end the test without a kill during a switch-over.
    let covered = |chaos: &Chaos| {
        let phases = chaos.by_phase();
        chaos.kills.len() >= target_kills && PHASES.iter().all(|p| phases.get(p).copied().unwrap_or(0) > 0)
    };
    while round < max_rounds && (round == 0 || !covered(&chaos)) {
        let members = fleet(round, big);
        resources += members.len();

        chaos.enter("create");
        let all: String = members.iter().map(|m| manifest(&env, m)).collect();
        env.apply(&all);
        let ids: HashMap<String, String> = chaos
            .until(&env, &format!("round {round}: the fleet to settle"), STEP, |items| {
                members.iter().all(|m| items.get(&m.name).is_some_and(|rm| settled(m, rm))).then(|| {
                    members
                        .iter()
                        .map(|m| (m.name.clone(), items[&m.name]["status"]["taskId"].as_str().unwrap().to_owned()))
                        .collect()
                })
            })
            .await;
        let items = list(&env);
        for m in &members {
            let name = items[&m.name]["status"]["taskName"].as_str().unwrap().to_owned();
            task_names.insert(name, (m.name.clone(), m.delete_policy));
        }
        assert_no_duplicates(&env, &task_names).await;

        // Stop and restart through spec.stopped.
        chaos.enter("stop");
        let stoppable: Vec<&Member> = members.iter().filter(|m| m.name.starts_with("inc-stop")).collect();
        for m in &stoppable {
            kubectl_ok(
                &env,
                &["patch", &format!("rmig/{}", m.name), "--type=merge", "-p", r#"{"spec":{"stopped":true}}"#],
            );
        }
        chaos
            .until(&env, &format!("round {round}: stopped resources Terminated"), STEP, |items| {
                stoppable
                    .iter()
                    .all(|m| {
                        items[&m.name]["status"]["phase"] == "Terminated"
                            && condition(&items[&m.name], "Ready").is_some_and(|c| c["reason"] == "StoppedByUser")
                    })
                    .then_some(())
            })
            .await;
        for m in &stoppable {
            assert_eq!(
                env.sim_state().await["tasks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|t| t["task_id"] == ids[&m.name])
                    .unwrap()["status"],
                "TERMINATED"
            );
            kubectl_ok(
                &env,
                &["patch", &format!("rmig/{}", m.name), "--type=merge", "-p", r#"{"spec":{"stopped":false}}"#],
            );
        }
        chaos
            .until(&env, &format!("round {round}: restarted resources streaming again"), STEP, |items| {
                stoppable.iter().all(|m| items[&m.name]["status"]["phase"] == "IncrementalMigrating").then_some(())
            })
            .await;

        // Switch-over: exchanged on creation; roll back, then exchange again.
        chaos.enter("switchover");
        let switchers: Vec<&Member> = members.iter().filter(|m| m.kind == Kind::Switchover).collect();
        for (rollback, status, reason, step) in
            [(true, "False", "RolledBack", "rolled back"), (false, "True", "SwitchedOver", "switched over again")]
        {
            let patch = json!({"spec": {"switchover": {"rollback": rollback}}}).to_string();
            for m in &switchers {
                kubectl_ok(&env, &["patch", &format!("rmig/{}", m.name), "--type=merge", "-p", &patch]);
            }
            chaos
                .until(&env, &format!("round {round}: {step}"), STEP, |items| {
                    switchers
                        .iter()
                        .all(|m| has_condition(&items[&m.name], "SwitchedOver", status, Some(reason)))
                        .then_some(())
                })
                .await;
        }
        for m in &switchers {
            switch_requests.insert(ids[&m.name].clone(), (2, 1));
        }
        let state = env.sim_state().await;
        for m in &switchers {
            let s = &state["switchovers"][&ids[&m.name]];
            let done = (s["exchanges"].as_u64().unwrap_or(0), s["rollbacks"].as_u64().unwrap_or(0));
            assert_eq!(
                done,
                (2, 1),
                "{}: exactly one exchange or rollback per request (exchange, rollback, exchange)",
                m.name
            );
        }

        // Deletion of the whole round.
        chaos.enter("delete");
        let mut args = vec!["delete".to_owned(), "--wait=false".to_owned()];
        args.extend(members.iter().map(|m| format!("rmig/{}", m.name)));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kubectl_ok(&env, &args);
        chaos
            .until(&env, &format!("round {round}: every resource released (no stuck finalizer)"), STEP, |items| {
                members.iter().all(|m| !items.contains_key(&m.name)).then_some(())
            })
            .await;
        let state = env.sim_state().await;
        assert_after_deletion(&state, &task_names);
        // Tasks still present (Stop policy) keep their counts; Delete-policy tasks left the state.
        for (id, asked) in switch_requests.iter().filter(|(id, _)| state["switchovers"].get(id.as_str()).is_some()) {
            let s = &state["switchovers"][id];
            let done = (s["exchanges"].as_u64().unwrap_or(0), s["rollbacks"].as_u64().unwrap_or(0));
            assert_eq!(
                done, *asked,
                "switch-over of task {id}: exactly one exchange/rollback per request (asked, done)"
            );
        }
        eprintln!(
            "round {round} done after {:?}: {} kills so far {:?}",
            started.elapsed(),
            chaos.kills.len(),
            chaos.by_phase()
        );
        round += 1;
    }
    // A last incarnation without crash points: a kill right after the last release may leave the
    // Secrets' sweep to the next start.
    chaos.op.restart(&[]);

    let state = env.sim_state().await;
    let creates = calls(&state, "CreateMigrationTask") + calls(&state, "CreateOnlineMigrationTask");
    eprintln!(
        "random kills: {} kills in {round} rounds, {resources} resources, {:?}; by phase {:?}; by point {:?}; {creates} create calls; seed {seed}",
        chaos.kills.len(),
        started.elapsed(),
        chaos.by_phase(),
        chaos.by_point()
    );
    assert!(
        chaos.unexpected.is_empty(),
        "the operator died on its own (not at a crash point): {:#?}",
        chaos.unexpected
    );
    assert!(chaos.kills.len() >= target_kills, "only {} kills in {round} rounds: {:?}", chaos.kills.len(), chaos.kills);
    let phases = chaos.by_phase();
    for phase in PHASES {
        assert!(phases.get(phase).copied().unwrap_or(0) > 0, "no kill in phase {phase}: {phases:?}");
    }
    assert_secrets_released(&env).await;
    env.assert_no_secret_leaked(&[chaos.op.logs()]);
}

/// One remote task per resource: no two tasks share a name, and every task belongs to one of the
/// fleet's resources.
async fn assert_no_duplicates(env: &Env, names: &HashMap<String, (String, bool)>) {
    let state = env.sim_state().await;
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for t in state["tasks"].as_array().unwrap() {
        let name = t["task_name"].as_str().unwrap_or_default();
        *seen.entry(name).or_insert(0) += 1;
        assert!(names.contains_key(name), "a task that belongs to no resource: {name} ({})", t["status"]);
    }
    let dupes: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "duplicate remote tasks: {dupes:?}");
}

/// Nothing runs for a deleted resource; Delete-policy tasks are gone; no duplicate anywhere.
fn assert_after_deletion(state: &Value, names: &HashMap<String, (String, bool)>) {
    let mut per_name: HashMap<&str, Vec<&Value>> = HashMap::new();
    for t in state["tasks"].as_array().unwrap() {
        per_name.entry(t["task_name"].as_str().unwrap_or_default()).or_default().push(t);
    }
    for (name, tasks) in &per_name {
        let (resource, delete) = names.get(*name).unwrap_or_else(|| panic!("a task of no resource: {name}"));
        assert_eq!(tasks.len(), 1, "{resource}: {} remote tasks named {name}", tasks.len());
        let status = tasks[0]["status"].as_str().unwrap_or_default();
        assert!(!is_running(status), "{resource} is deleted but its task {name} is still {status}");
        assert!(!delete, "{resource} had deletionPolicy Delete but its task {name} ({status}) still exists");
    }
}

/// No Secret keeps the in-use finalizer once no resource needs it.
async fn assert_secrets_released(env: &Env) {
    support::eventually("the in-use finalizers to come off the Secrets", Duration::from_secs(30), || async {
        let out = env.kubectl(&["get", "secrets", "-o", "json"]);
        let list: Value = serde_json::from_slice(&out.stdout).ok()?;
        list["items"]
            .as_array()?
            .iter()
            .all(|s| s["metadata"]["finalizers"].as_array().is_none_or(|f| f.is_empty()))
            .then_some(())
    })
    .await;
}

// ------------------------------------------------------------------------------------------------
// Fault storms

/// The faults of second `t` of a storm: 20 % 5xx, 5 % dropped connections and 5 % lost replies
/// throughout; a 2 s burst of 429 every 10 s; 2 s latency for 4 s of every 15 s.
fn storm_at(t: u64) -> Value {
    json!({
        "errorRate": 0.2,
        "dropRate": 0.05,
        "lostReplyRate": 0.05,
        "throttleRate": if t % 10 < 2 { 1.0 } else { 0.0 },
        "latencyMs": if (5..9).contains(&(t % 15)) { 2000 } else { 0 },
    })
}

/// The largest excess, over every window between two calls, of calls over what a token bucket of
/// `burst` and `qps` allows (`burst + qps × window`), with the window where it happens.
fn token_bucket_excess(times_ms: &[i64], qps: f64, burst: f64) -> (f64, i64, usize) {
    let mut worst = (f64::MIN, 0, 0);
    for i in 0..times_ms.len() {
        for j in i..times_ms.len() {
            let window = (times_ms[j] - times_ms[i]) as f64 / 1000.0;
            let excess = (j - i + 1) as f64 - (burst + qps * window);
            if excess > worst.0 {
                worst = (excess, times_ms[j] - times_ms[i], j - i + 1);
            }
        }
    }
    worst
}

/// The most calls that arrived within any one second.
fn peak_per_second(times_ms: &[i64]) -> usize {
    let mut peak = 0;
    let mut i = 0;
    for j in 0..times_ms.len() {
        while times_ms[j] - times_ms[i] >= 1000 {
            i += 1;
        }
        peak = peak.max(j - i + 1);
    }
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_storms_converge_under_the_qps_limit_with_visible_backoff() {
    let storm = Duration::from_secs(if full() { 240 } else { 40 });
    let (qps, burst) = (5.0, 5.0);
    let env = Env::new("chaos-storm", PHASE).await;
    let metrics_addr = metrics_flag_supported().then(|| format!("127.0.0.1:{}", free_port()));
    let mut args = vec!["--qps", "5", "--burst", "5"];
    if let Some(addr) = &metrics_addr {
        args.extend(["--metrics-addr", addr.as_str()]);
    }
    let mut op = Operator::start_with(&env, &args, &[]);
    let members: Vec<Member> = vec![
        Member { name: "storm-imp-obs".into(), kind: Kind::ImportObs, delete_policy: false },
        Member { name: "storm-imp-rec".into(), kind: Kind::ImportRecord, delete_policy: true },
        Member { name: "storm-full".into(), kind: Kind::OnlineFull, delete_policy: false },
        Member { name: "storm-inc-0".into(), kind: Kind::Incremental, delete_policy: false },
        Member { name: "storm-inc-1".into(), kind: Kind::Incremental, delete_policy: false },
        Member { name: "storm-inc-2".into(), kind: Kind::Incremental, delete_policy: true },
        Member { name: "storm-sw".into(), kind: Kind::Switchover, delete_policy: false },
    ];
    let started_ms = jiff::Timestamp::now().as_millisecond();
    let started = Instant::now();
    env.sim_admin(reqwest::Method::PUT, "/_sim/faults", Some(storm_at(0))).await;
    env.apply(&members.iter().map(|m| manifest(&env, m)).collect::<String>());
    let mut current = storm_at(0);
    let (mut stopped, mut deleted) = (false, false);
    let mut settled_during_storm = 0;
    while started.elapsed() < storm {
        let t = started.elapsed().as_secs();
        let next = storm_at(t);
        if next != current {
            env.sim_admin(reqwest::Method::PUT, "/_sim/faults", Some(next.clone())).await;
            current = next;
        }
        let items = list(&env);
        let is_settled = |name: &str| {
            members.iter().find(|m| m.name == name).zip(items.get(name)).is_some_and(|(m, rm)| settled(m, rm))
        };
        if !stopped && started.elapsed() > storm / 3 && is_settled("storm-inc-0") {
            kubectl_ok(&env, &["patch", "rmig/storm-inc-0", "--type=merge", "-p", r#"{"spec":{"stopped":true}}"#]);
            stopped = true;
        }
        if !deleted && started.elapsed() > storm * 2 / 3 && is_settled("storm-inc-1") {
            kubectl_ok(&env, &["delete", "rmig/storm-inc-1", "--wait=false"]);
            deleted = true;
        }
        settled_during_storm = members.iter().filter(|m| items.get(&m.name).is_some_and(|rm| settled(m, rm))).count();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    env.sim_admin(reqwest::Method::DELETE, "/_sim/faults", None).await;
    let storm_log: Vec<Value> = serde_json::from_value(
        env.sim_admin(reqwest::Method::GET, &format!("/_sim/log?sinceMs={started_ms}"), None).await,
    )
    .unwrap();
    eprintln!(
        "storm of {storm:?}: {settled_during_storm}/{} resources settled while it raged (stopped: {stopped}, deleted: {deleted})",
        members.len()
    );
    if !stopped {
        kubectl_ok(&env, &["patch", "rmig/storm-inc-0", "--type=merge", "-p", r#"{"spec":{"stopped":true}}"#]);
    }
    if !deleted {
        kubectl_ok(&env, &["delete", "rmig/storm-inc-1", "--wait=false"]);
    }
    let converge = Instant::now();
    support::eventually("every resource to converge after the storm", Duration::from_secs(90), || async {
        let items = list(&env);
        // A dropped exchange call reads as unconfirmed: the user asks again, as the docs say.
        ask_again_where_unconfirmed(&env, &items);
        let ok = members.iter().all(|m| match m.name.as_str() {
            "storm-inc-0" => items.get(&m.name).is_some_and(|rm| rm["status"]["phase"] == "Terminated"),
            "storm-inc-1" => !items.contains_key(&m.name),
            _ => items.get(&m.name).is_some_and(|rm| settled(m, rm) && has_condition(rm, "Synced", "True", None)),
        });
        ok.then_some(())
    })
    .await;
    eprintln!("converged {:?} after the storm ended", converge.elapsed());

    // One task per resource; the deleted one's task stopped.
    let state = env.sim_state().await;
    let mut per_name: HashMap<String, Vec<Value>> = HashMap::new();
    for t in state["tasks"].as_array().unwrap() {
        per_name.entry(t["task_name"].as_str().unwrap_or_default().to_owned()).or_default().push(t.clone());
    }
    let dupes: Vec<_> = per_name.iter().filter(|(_, v)| v.len() > 1).map(|(k, v)| (k, v.len())).collect();
    assert!(dupes.is_empty(), "duplicate remote tasks after the storm: {dupes:?}");
    assert_eq!(per_name.len(), members.len(), "one task per resource: {:?}", per_name.keys().collect::<Vec<_>>());
    let deleted_task = per_name.iter().find(|(k, _)| k.contains("storm-inc-1")).map(|(_, v)| v[0]["status"].clone());
    assert_eq!(deleted_task, Some(json!("TERMINATED")), "the resource deleted during the storm had its task stopped");
    let switch = state["switchovers"]
        .as_object()
        .map(|m| m.values().map(|s| s["exchanges"].as_u64().unwrap_or(0)).sum::<u64>())
        .unwrap_or(0);
    assert_eq!(switch, 1, "the switch-over exchanged exactly once through the storm");

    // The call rate never exceeded the token bucket (arrival times, before injected latency).
    let mut times: Vec<i64> =
        storm_log.iter().map(|r| r["receivedAtMs"].as_i64().or_else(|| r["atMs"].as_i64()).unwrap()).collect();
    times.sort_unstable();
    let (excess, window_ms, n) = token_bucket_excess(&times, qps, burst);
    let statuses: BTreeMap<String, usize> = storm_log.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r["status"].to_string()).or_insert(0) += 1;
        m
    });
    eprintln!(
        "storm calls: {} in {:?} ({:.2}/s average, peak {} in one second; limit {qps}/s, burst {burst}); worst window: {n} calls in {window_ms} ms (excess {excess:.2}); answers {statuses:?}",
        times.len(),
        storm,
        times.len() as f64 / storm.as_secs_f64(),
        peak_per_second(&times)
    );
    assert!(
        excess <= 1.0,
        "the operator exceeded its QPS limit: {n} calls in {window_ms} ms with qps {qps} and burst {burst}"
    );

    // Backoff is visible: in the logs, and in /metrics when the operator serves it.
    let logs = op.logs();
    let retries_logged = logs.matches("retrying DCS call").count();
    assert!(retries_logged > 0, "no retry with backoff in the operator's log");
    let mut others = Vec::new();
    if let Some(addr) = &metrics_addr {
        let text = scrape(addr).await.unwrap_or_default();
        match metric_sum(&text, "dcs_migration_dcs_retries_total") {
            Some(n) => {
                eprintln!("dcs_migration_dcs_retries_total = {n}, {retries_logged} retries logged");
                assert!(n > 0.0, "dcs_migration_dcs_retries_total stays 0 through a storm");
            }
            None => {
                eprintln!("note: /metrics has no dcs_migration_dcs_retries_total yet; {retries_logged} retries logged")
            }
        }
        others.push(("/metrics", text));
    } else {
        eprintln!("note: the operator has no --metrics-addr yet; {retries_logged} retries logged");
    }
    assert!(op.try_exit().is_none(), "the operator died during the storm");
    env.assert_no_secret_leaked_in(&[logs], &others);
}

// ------------------------------------------------------------------------------------------------
// The simulator restarted with its state lost

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulator_that_lost_its_tasks_is_reported_without_crash_loop_or_hot_retry_and_deletion_completes() {
    let mut env = Env::new("chaos-sim-lost", PHASE).await;
    let mut op = Operator::start(&env);
    let members: Vec<Member> = (0..3)
        .map(|i| Member { name: format!("lost-inc-{i}"), kind: Kind::Incremental, delete_policy: i == 2 })
        .chain([Member { name: "lost-full".into(), kind: Kind::OnlineFull, delete_policy: false }])
        .collect();
    env.apply(&members.iter().map(|m| manifest(&env, m)).collect::<String>());
    support::eventually("the resources to settle", Duration::from_secs(90), || async {
        let items = list(&env);
        members.iter().all(|m| items.get(&m.name).is_some_and(|rm| settled(m, rm))).then_some(())
    })
    .await;
    tokio::task::block_in_place(|| env.restart_simulator_with_state_lost(Duration::from_secs(1)));
    assert!(env.sim_state().await["tasks"].as_array().unwrap().is_empty(), "the new simulator knows no task");

    for m in members.iter().filter(|m| m.kind == Kind::Incremental) {
        let rm = env.wait_condition(&m.name, "Ready", "False", Some("RemoteTaskGone"), Duration::from_secs(60)).await;
        assert!(
            has_condition(&rm, "Stalled", "True", None),
            "{}: Stalled=True with a lost task: {}",
            m.name,
            rm["status"]
        );
        let message = condition(&rm, "Ready").unwrap()["message"].as_str().unwrap_or_default().to_owned();
        assert!(!message.is_empty(), "{}: the Ready condition says what happened", m.name);
        eprintln!("{}: phase {} Ready=False RemoteTaskGone: {message}", m.name, rm["status"]["phase"]);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(op.try_exit().is_none(), "the operator exited after the tasks vanished:\n{}", tail(&op.logs(), 40));
    let incarnations = op.logs().matches("starting the controller").count();

    // No hot retry: count the calls of a quiet window.
    let since = jiff::Timestamp::now().as_millisecond();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let window: Vec<Value> =
        serde_json::from_value(env.sim_admin(reqwest::Method::GET, &format!("/_sim/log?sinceMs={since}"), None).await)
            .unwrap();
    let per_op: BTreeMap<&str, usize> = window.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r["operation"].as_str().unwrap_or("?")).or_insert(0) += 1;
        m
    });
    eprintln!("calls in 5 s with every task gone: {} {per_op:?}", window.len());
    // Terminal resources are not polled beyond the slow resync (design §4): a handful at most.
    assert!(
        window.len() <= 3,
        "hot retry: {} calls in 5 s for {} terminal resources whose tasks are gone: {per_op:?}",
        window.len(),
        members.len()
    );
    assert_eq!(
        calls(&env.sim_state().await, "CreateOnlineMigrationTask"),
        0,
        "a lost task is reported, not created again"
    );
    assert!(op.try_exit().is_none(), "the operator exited");
    assert_eq!(op.logs().matches("starting the controller").count(), incarnations, "no restart of the operator");

    kubectl_ok(&env, &["delete", "rmig", "--all", "--wait=false"]);
    support::eventually("deletion to complete with the tasks gone", Duration::from_secs(60), || async {
        list(&env).is_empty().then_some(())
    })
    .await;
    assert_secrets_released(&env).await;
    env.assert_no_secret_leaked(&[op.logs()]);
}

// ------------------------------------------------------------------------------------------------
// A whole namespace deleted

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_of_fifty_resources_and_their_secrets_across_a_restart_stops_every_task() {
    const N: usize = 50;
    let mut env = Env::new("chaos-ns-delete", PHASE).await;
    let mut op = Operator::start_with(&env, &["--qps", "100", "--burst", "100"], &[]);
    // A password Secret per resource, besides the shared credentials.
    let mut secrets = String::new();
    for i in 0..N {
        let (source, target) = (e2e::secret_value("NsSourcePw"), e2e::secret_value("NsTargetPw"));
        secrets.push_str(&format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: pw-{i}\nstringData:\n  source: {source}\n  target: {target}\n"
        ));
        env.secrets.extend([source, target]);
    }
    env.apply(&secrets);
    let base = env.example("online-incremental.yaml");
    let mut all = String::new();
    for i in 0..N {
        let mut doc = base
            .replace("name: online-incremental", &format!("name: ns-{i}"))
            .replace("name: redis-passwords", &format!("name: pw-{i}"));
        if i % 3 == 0 {
            doc.push_str("  deletionPolicy: Delete\n");
        }
        all.push_str("---\n");
        all.push_str(&doc);
    }
    env.apply(&all);
    env.wait_count_in_phase("IncrementalMigrating", N, Duration::from_secs(150)).await;
    let deleted_policy = (0..N).filter(|i| i % 3 == 0).count();

    // What the namespace controller does (this control plane has none).
    let started = Instant::now();
    let out =
        support::control_plane().kubectl().args(["delete", "namespace", &env.ns, "--wait=false"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    kubectl_ok(&env, &["delete", "secrets,rmig", "--all", "--wait=false"]);
    tokio::time::sleep(Duration::from_millis(800)).await;
    op.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    op.restart(&[]);
    support::eventually("every RedisMigration to be released", Duration::from_secs(120), || async {
        list(&env).is_empty().then_some(())
    })
    .await;
    support::eventually("every Secret to be released", Duration::from_secs(30), || async {
        let out = env.kubectl(&["get", "secrets", "-o", "json"]);
        let list: Value = serde_json::from_slice(&out.stdout).ok()?;
        list["items"].as_array()?.is_empty().then_some(())
    })
    .await;
    let state = env.sim_state().await;
    let tasks = state["tasks"].as_array().unwrap();
    let running: Vec<_> = tasks
        .iter()
        .filter(|t| is_running(t["status"].as_str().unwrap_or_default()))
        .map(|t| &t["task_name"])
        .collect();
    assert!(running.is_empty(), "tasks left running after the namespace was deleted: {running:?}");
    assert_eq!(tasks.len(), N - deleted_policy, "the Delete-policy tasks are deleted, the others kept TERMINATED");
    let stops = calls(&state, "BatchStopMigrationTasks")
        + calls(&state, "StopMigrationTask")
        + calls(&state, "StopMigrationTaskSync");
    eprintln!(
        "namespace of {N} resources and {} Secrets released in {:?} across a restart: {stops} stop calls, {} delete calls",
        N + 2,
        started.elapsed(),
        calls(&state, "DeleteMigrationTask")
    );
    env.assert_no_secret_leaked(&[op.logs()]);
}
