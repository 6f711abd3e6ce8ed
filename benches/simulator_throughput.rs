//! Simulator throughput: starts the `dcs-simulator` binary (built by `cargo bench` in the bench
//! profile, i.e. release), creates 1,000 tasks, then fires signed ShowMigrationTask requests
//! concurrently for ~10 s and reports requests/s and the simulator's memory (VmHWM / VmRSS).
//!
//! Run: `cargo bench --bench simulator_throughput`
//! Knobs (env): `BENCH_SECONDS` (10), `BENCH_TASKS` (1000), `BENCH_CONCURRENCY` (32),
//! `DCS_SIMULATOR_BIN` (default: the binary Cargo built for this bench).
//! Targets (issue 3): ≥ 5,000 signed show requests/s with 1,000 tasks held, ≤ 50 MiB RSS.

#[path = "../tests/simulator_support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use support::{AK, Client, PROJECT, SK};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let seconds = env_or("BENCH_SECONDS", 10);
    let tasks = env_or("BENCH_TASKS", 1000) as usize;
    let concurrency = env_or("BENCH_CONCURRENCY", 32) as usize;
    let binary = std::env::var("DCS_SIMULATOR_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_dcs-simulator").to_owned());

    let mut child = Command::new(&binary)
        .args(["--listen", "127.0.0.1:0", "--access-key", AK, "--secret-key", SK, "--project-id", PROJECT])
        .args(["--phase-seconds", "1"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    let pid = child.id();
    let mut url = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut url).expect("URL line");
    let url = url.trim().to_owned();
    println!("simulator {binary} (pid {pid}) at {url}");

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let result = runtime.block_on(async {
        let client = Client::new(&url);
        // 1,000 tasks: half backup imports, half online tasks.
        let created = Instant::now();
        let mut ids = Vec::with_capacity(tasks);
        for chunk in (0..tasks).collect::<Vec<_>>().chunks(50) {
            let futures = chunk.iter().map(|i| {
                let client = client.clone();
                let i = *i;
                async move {
                    if i % 2 == 0 {
                        client.create_backup_import(&format!("bench-import-{i}")).await
                    } else {
                        client.create_online(&format!("bench-online-{i}")).await
                    }
                }
            });
            ids.extend(futures::future::join_all(futures).await);
        }
        println!("created {} tasks in {:.2?}", ids.len(), created.elapsed());
        let list = client.call("GET", "/migration-tasks", &[("limit", "1")], None).await.json();
        assert_eq!(list["count"].as_u64(), Some(tasks as u64));

        let ids = Arc::new(ids);
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let workers: Vec<_> = (0..concurrency)
            .map(|w| {
                let (client, ids, ok, failed) = (client.clone(), ids.clone(), ok.clone(), failed.clone());
                tokio::spawn(async move {
                    let mut i = w * 7919;
                    while Instant::now() < deadline {
                        let id = &ids[i % ids.len()];
                        i += 1;
                        match client.try_call("GET", &format!("/migration-task/{id}"), None).await {
                            Ok(a) if a.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                            _ => failed.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                })
            })
            .collect();
        for w in workers {
            let _ = w.await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed), elapsed)
    });
    let (ok, failed, elapsed) = result;
    let hwm = proc_status_kib(pid, "VmHWM:").unwrap_or(0);
    let rss = proc_status_kib(pid, "VmRSS:").unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();

    let rate = ok as f64 / elapsed;
    println!(
        "signed ShowMigrationTask: {ok} ok, {failed} failed in {elapsed:.1}s with {concurrency} concurrent clients \
         and {tasks} tasks held: {rate:.0} requests/s"
    );
    println!("simulator memory: VmHWM {:.1} MiB, VmRSS {:.1} MiB", hwm as f64 / 1024.0, rss as f64 / 1024.0);
    println!(
        "targets: >= 5000 requests/s [{}], <= 50 MiB peak RSS [{}]",
        if rate >= 5000.0 { "met" } else { "NOT met" },
        if hwm <= 50 * 1024 { "met" } else { "NOT met" }
    );
}
