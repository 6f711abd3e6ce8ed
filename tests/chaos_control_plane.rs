//! The control plane failing under the operator (issue 8, item 1): kube-apiserver and etcd
//! restarted (`scripts/control-plane restart`), then etcd frozen (SIGSTOP) for a few seconds.
//! Watches resume, remote changes made during the outage reach the status, resources created and
//! deleted after it converge, and nothing is lost or duplicated. A binary of its own: the restart
//! is an outage for every test sharing the control plane.

mod e2e;
mod support;

use e2e::{Env, Operator};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

const PHASE: Duration = Duration::from_millis(300);
const CONVERGE: Duration = Duration::from_secs(90);

fn apply_incrementals(env: &Env, names: &[&str]) {
    let base = env.example("online-incremental.yaml");
    env.apply(
        &names
            .iter()
            .map(|n| format!("---\n{}", base.replace("name: online-incremental", &format!("name: {n}"))))
            .collect::<String>(),
    );
}

fn signal_etcd(signal: &str) {
    let pids = std::fs::read_to_string(support::control_plane().dir().join("pids")).unwrap();
    let etcd = pids.lines().next().expect("etcd's pid is the first line of DIR/pids").trim().to_owned();
    let status = Command::new("kill").args([signal, &etcd]).status().unwrap();
    assert!(status.success(), "kill {signal} {etcd}");
}

/// Forces the remote status of a task (by id: kubectl may be unreachable).
async fn force(env: &Env, id: &str, status: &str) {
    env.sim_admin(
        reqwest::Method::PUT,
        &format!("/_sim/tasks/{id}"),
        Some(json!({"status": status, "errorMessage": "forced during the outage"})),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_resume_and_nothing_is_lost_across_an_apiserver_restart_and_an_etcd_freeze() {
    let env = Env::new("cp-outage", PHASE).await;
    let mut op = Operator::start(&env);
    apply_incrementals(&env, &["before-a", "before-b", "before-c"]);
    for n in ["before-a", "before-b", "before-c"] {
        env.wait_phase(n, "IncrementalMigrating", CONVERGE).await;
    }

    let task_of = |name: &str| env.get(name)["status"]["taskId"].as_str().unwrap().to_owned();
    let before_a = task_of("before-a");

    // 1. kube-apiserver and etcd restarted; a remote change happens while they are down.
    let cp = support::control_plane();
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    let restart = std::thread::spawn(move || {
        support::control_plane().restart();
        let _ = tx.send(());
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    force(&env, &before_a, "FAILED").await;
    tokio::task::block_in_place(|| rx.recv_timeout(Duration::from_secs(120)).expect("the control plane restarts"));
    restart.join().unwrap();
    let outage = started.elapsed();
    eprintln!("control plane restarted in {outage:?} ({})", cp.dir().display());
    assert!(op.try_exit().is_none(), "the operator exited when the apiserver went away:\n{}", op.logs());

    apply_incrementals(&env, &["after-a", "after-b"]);
    let out = env.kubectl(&["delete", "rmig/before-b", "--wait=false"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    env.wait_phase("before-a", "Failed", CONVERGE).await;
    for n in ["after-a", "after-b"] {
        env.wait_phase(n, "IncrementalMigrating", CONVERGE).await;
    }
    support::eventually("before-b released after the restart", CONVERGE, || async {
        (!env.kubectl(&["get", "rmig/before-b"]).status.success()).then_some(())
    })
    .await;
    eprintln!("after the restart: everything converged {:?} after the outage began", started.elapsed());

    // 2. etcd frozen for 5 s: a remote change, a new resource and a deletion meanwhile.
    let after_a = task_of("after-a");
    let frozen = Instant::now();
    signal_etcd("-STOP");
    force(&env, &after_a, "FAILED").await;
    let create = {
        let yaml = format!(
            "---\n{}",
            env.example("online-incremental.yaml").replace("name: online-incremental", "name: during-freeze")
        );
        let ns = env.ns.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut child = support::control_plane()
                .kubectl()
                .args(["-n", &ns, "apply", "--request-timeout=60s", "-f", "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
            child.wait_with_output().unwrap()
        })
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    signal_etcd("-CONT");
    let out = tokio::task::block_in_place(|| create.join().unwrap());
    assert!(out.status.success(), "creating during the freeze: {}", String::from_utf8_lossy(&out.stderr));
    let out = env.kubectl(&["delete", "rmig/before-c", "--wait=false"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    env.wait_phase("after-a", "Failed", CONVERGE).await;
    env.wait_phase("during-freeze", "IncrementalMigrating", CONVERGE).await;
    support::eventually("before-c released after the freeze", CONVERGE, || async {
        (!env.kubectl(&["get", "rmig/before-c"]).status.success()).then_some(())
    })
    .await;
    eprintln!("after a 5 s etcd freeze: everything converged in {:?}", frozen.elapsed());

    // Nothing lost, nothing duplicated, the same process all along.
    let state = env.sim_state().await;
    let mut per_name: HashMap<String, Vec<Value>> = HashMap::new();
    for t in state["tasks"].as_array().unwrap() {
        per_name.entry(t["task_name"].as_str().unwrap_or_default().to_owned()).or_default().push(t.clone());
    }
    assert_eq!(per_name.len(), 6, "one task per resource ever created: {:?}", per_name.keys().collect::<Vec<_>>());
    assert!(per_name.values().all(|v| v.len() == 1), "duplicates: {per_name:?}");
    assert_eq!(state["calls"]["CreateOnlineMigrationTask"], 6, "created once each");
    for deleted in ["before-b", "before-c"] {
        let task =
            per_name.iter().find(|(k, _)| k.contains(&format!("-{deleted}-"))).map(|(_, v)| v[0]["status"].clone());
        assert_eq!(task, Some(json!("TERMINATED")), "{deleted}'s task is stopped");
    }
    assert!(op.try_exit().is_none(), "the operator exited");
    assert_eq!(op.logs().matches("starting the controller").count(), 1, "the same operator process throughout");
    env.assert_no_secret_leaked(&[op.logs()]);
}
