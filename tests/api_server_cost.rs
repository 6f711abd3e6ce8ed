//! What the operator costs the API server, read from the control plane's audit log by the operator's user agent
//! (design.md §7): reads of Secrets and writes to RedisMigrations from apply to Ready.

mod e2e;
mod support;

use e2e::{Env, Operator};
use std::time::Duration;
use support::audit::{Agent, read_audit};

const PHASE: Duration = Duration::from_millis(400);
const CONVERGE: Duration = Duration::from_secs(60);
const IMPORTS: usize = 4;

#[tokio::test]
async fn secrets_are_read_once_per_version_and_burst_and_each_phase_costs_one_write() {
    let audit_log = support::control_plane_with_audit().audit_log();
    let env = Env::new("api-cost", PHASE).await;
    let mut op = Operator::start(&env);
    let (import, online) = (env.example("backup-import-obs.yaml"), env.example("online-full.yaml"));
    let names: Vec<String> = (0..IMPORTS).map(|i| format!("import-{i}")).chain(["online-0".into()]).collect();
    for name in &names[..IMPORTS] {
        env.apply(&import.replace("name: import-from-obs", &format!("name: {name}")));
    }
    env.apply(&online.replace("name: online-full", "name: online-0"));
    for name in &names {
        env.wait_condition(name, "Ready", "True", None, CONVERGE).await;
    }
    // A little longer than a tick: nothing more is written for a resource that stays Succeeded.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let prefix = format!("{}/", env.ns);
    let ours: Vec<_> = read_audit(&audit_log)
        .into_iter()
        .filter(|r| r.agent == Agent::Ours && r.key.as_deref().is_some_and(|k| k.starts_with(&prefix)))
        .collect();
    let secret_reads = ours.iter().filter(|r| r.verb == "get" && r.resource == "secrets").count();
    // Two Secrets (credentials, passwords): each read for its in-use finalizer and once for its data, whatever
    // the number of resources and passes.
    assert!(secret_reads <= 4, "{secret_reads} Secret reads for {} resources of two Secrets", names.len());
    for name in &names {
        let key = format!("{prefix}{name}");
        let writes: Vec<String> = ours
            .iter()
            .filter(|r| r.key.as_deref() == Some(key.as_str()) && r.on_migration() && r.is_write() && r.code < 300)
            .map(|r| r.label())
            .collect();
        // The create-pending mark with the finalizer, the mark cleared, then one write per phase: Creating,
        // FullMigrating, Succeeded; an online task adds Provisioning.
        let limit = if name.starts_with("online") { 6 } else { 5 };
        assert!(writes.len() <= limit, "{name}: {} writes to reach Ready: {writes:?}", writes.len());
    }

    // A restarted operator has read nothing yet; its deletion passes start together and share one read per Secret.
    let restarted = jiff::Timestamp::now().as_millisecond();
    op.restart(&[]);
    let out = env.kubectl(&["delete", "rmig", "--all", "--timeout=60s"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reads_since = |from: i64| {
        read_audit(&audit_log)
            .into_iter()
            .filter(|r| r.agent == Agent::Ours && r.at_ms >= from && r.verb == "get" && r.resource == "secrets")
            .filter(|r| r.key.as_deref().is_some_and(|k| k.starts_with(&prefix)))
            .map(|r| format!("{} at {} ms", r.key.unwrap_or_default(), r.at_ms - from))
            .collect::<Vec<_>>()
    };
    // The credentials Secret's data once, and each Secret's metadata once when its in-use finalizer goes.
    let reads = reads_since(restarted);
    assert!(
        reads.len() <= 3,
        "{} Secret reads to delete {} resources after a restart: {reads:?}",
        reads.len(),
        names.len()
    );
    env.assert_no_secret_leaked(&[op.logs()]);
}
