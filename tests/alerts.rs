//! The chart's PrometheusRule alerts, unit-tested with `promtool test rules` (built from the Go module proxy by
//! tools/build.sh) on the series a real operator serves: the operator runs against the simulator, a task fails, DCS
//! calls fail, and two scrapes of its `/metrics` become promtool's input series (with the `job` and `namespace`
//! labels a Prometheus scrape of the chart's Service adds). The expressions, `for` durations and labels are
//! tested here; the annotations (runbook_url) in tests/chart.rs. promtool also parses every query of the chart's
//! Grafana dashboard (tests/chart.rs checks that they name only served series).

mod e2e;
mod support;

use e2e::{Env, Operator};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::{Duration, Instant};

const RELEASE: &str = "dcs";
const NAMESPACE: &str = "ops";

/// `name{labels} value` samples of a scrape (comments and exemplars dropped), keyed by series.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let l = l.split(" # ").next().unwrap();
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_string(), value.parse::<f64>().unwrap())
        })
        .collect()
}

/// A scraped series as Prometheus stores it: the target's `job` and `namespace` labels added.
fn scraped(series: &str) -> String {
    let job = format!("job=\"{}-metrics\",namespace=\"{NAMESPACE}\"", e2e::chart_fullname(RELEASE));
    match series.split_once('{') {
        Some((name, labels)) => format!("{name}{{{job},{labels}"),
        None => format!("{series}{{{job}}}"),
    }
}

async fn scrape(port: u16) -> String {
    reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap()
}

/// The chart's rules (annotations dropped: promtool compares them verbatim, and they are tested elsewhere).
fn rules_file(dir: &std::path::Path) -> std::path::PathBuf {
    let rendered =
        e2e::helm_template(RELEASE, NAMESPACE, &["prometheusRule.enabled=true"], &["templates/prometheusrule.yaml"]);
    let mut rule: Value = serde_saphyr::from_str(&rendered).unwrap();
    for r in rule["spec"]["groups"][0]["rules"].as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("annotations");
    }
    let path = dir.join("rules.json");
    std::fs::write(&path, serde_json::to_string(&rule["spec"]).unwrap()).unwrap();
    path
}

fn promtool() -> std::path::PathBuf {
    let out = std::process::Command::new(e2e::repo().join("tools/build.sh")).arg("--check").output().unwrap();
    assert!(
        out.status.success(),
        "promtool is missing: run `make control-plane`\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()).join("promtool")
}

#[tokio::test]
async fn the_alerts_fire_on_the_metrics_of_a_real_operator_with_a_failed_task_and_failing_calls() {
    // Slow phases: the task is still migrating when it is made to fail (a terminal resource is only resynced).
    let env = Env::new("alerts", Duration::from_secs(5)).await;
    let port = e2e::free_port();
    let op = Operator::start_with(&env, &["--metrics-addr", &format!("127.0.0.1:{port}")], &[]);
    env.apply(&env.example("backup-import-obs.yaml"));
    let id = support::eventually("a task id", Duration::from_secs(60), || async {
        env.get("import-from-obs")["status"]["taskId"].as_str().map(str::to_owned)
    })
    .await;
    // The task fails remotely: the resource goes Failed and Stalled.
    let failed = json!({"status": "FAILED", "errorMessage": "disk full"});
    env.sim_admin(reqwest::Method::PUT, &format!("/_sim/tasks/{id}"), Some(failed)).await;
    env.wait_phase("import-from-obs", "Failed", Duration::from_secs(60)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        let s = samples(&scrape(port).await);
        if s.get("dcs_migration_resources{phase=\"Failed\"}") == Some(&1.0)
            && s.get("dcs_migration_resources_stalled") == Some(&1.0)
        {
            break s;
        }
        assert!(Instant::now() < deadline, "/metrics never showed the failed resource:\n{s:?}\n{}", op.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Then, with a task moving (observed every tick), every DCS call fails for a while: the error counters grow,
    // the success counters stand still.
    env.apply(&env.example("backup-import-record.yaml"));
    support::eventually("a second task id", Duration::from_secs(60), || async {
        env.get("import-from-backup-record")["status"]["taskId"].as_str().map(str::to_owned)
    })
    .await;
    env.sim_admin(reqwest::Method::PUT, "/_sim/faults", Some(json!({"errorRate": 1.0}))).await;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let second = samples(&scrape(port).await);
    let elapsed = t0.elapsed().as_secs_f64();
    env.sim_admin(reqwest::Method::DELETE, "/_sim/faults", None).await;
    let failed_calls: f64 = second
        .iter()
        .filter(|(k, _)| k.starts_with("dcs_migration_dcs_calls_total{") && !k.contains("code=\"2"))
        .map(|(k, v)| v - first.get(k).unwrap_or(&0.0))
        .sum();
    assert!(failed_calls > 0.0, "DCS calls failed under the fault: {second:?}");
    let reconcile_errors = second.get("dcs_migration_reconcile_total{result=\"error\"}").unwrap_or(&0.0)
        - first.get("dcs_migration_reconcile_total{result=\"error\"}").unwrap_or(&0.0);

    // promtool input: each series from the first scrape, then growing at the rate seen between the scrapes, for an
    // hour at one-minute steps (the gauges stay as they were).
    let mut series = String::new();
    for (name, v1) in &second {
        let v0 = first.get(name).copied().unwrap_or(0.0);
        let per_minute = if name.contains("_total")
            || name.contains("_bucket")
            || name.contains("_sum")
            || name.contains("_count")
        {
            (v1 - v0) / elapsed * 60.0
        } else {
            0.0
        };
        let start = if per_minute == 0.0 { *v1 } else { v0 };
        writeln!(series, "      - series: '{}'\n        values: '{start}+{per_minute}x60'", scraped(name)).unwrap();
    }
    let fires = |name: &str, at: &str| {
        format!(
            "          - eval_time: {at}\n            alertname: {name}\n            exp_alerts:\n              - exp_labels: {{severity: warning}}\n"
        )
    };
    let silent = |name: &str, at: &str| {
        format!("          - eval_time: {at}\n            alertname: {name}\n            exp_alerts: []\n")
    };
    let mut alerts = String::new();
    alerts += &silent("DcsMigrationFailed", "4m");
    alerts += &fires("DcsMigrationFailed", "10m");
    alerts += &silent("DcsMigrationStalled", "14m");
    alerts += &fires("DcsMigrationStalled", "20m");
    alerts += &fires("DcsApiErrorRate", "30m");
    alerts += &if reconcile_errors > 0.0 {
        fires("DcsMigrationReconcileErrors", "30m")
    } else {
        silent("DcsMigrationReconcileErrors", "30m")
    };
    alerts += &silent("DcsMigrationOperatorNoLeader", "30m");
    let dir = std::env::temp_dir().join(format!("alerts-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = rules_file(&dir);
    // No operator scraped at all: only the missing leader is noticed.
    let nothing_scraped = format!(
        "          - eval_time: 11m\n            alertname: DcsMigrationOperatorNoLeader\n            exp_alerts:\n              - exp_labels: {{severity: critical}}\n{}",
        silent("DcsMigrationStalled", "30m")
    );
    let tests = format!(
        "rule_files: ['{}']\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n{series}    alert_rule_test:\n{alerts}\
         \n  - interval: 1m\n    input_series: []\n    alert_rule_test:\n{nothing_scraped}",
        rules.display(),
    );
    let file = dir.join("tests.yaml");
    std::fs::write(&file, &tests).unwrap();
    let out = std::process::Command::new(promtool()).args(["test", "rules"]).arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "promtool test rules:\n{}{}\n--- {}:\n{tests}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        file.display()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_query_of_the_grafana_dashboard_parses_as_promql() {
    // promtool parses rule files: each query becomes a recording rule, Grafana's variables given sample values.
    let rendered = e2e::helm_template(
        RELEASE,
        NAMESPACE,
        &["grafanaDashboard.enabled=true"],
        &["templates/grafana-dashboard.yaml"],
    );
    let map: Value = serde_saphyr::from_str(&rendered).unwrap();
    let dashboard: Value = serde_json::from_str(map["data"]["dcs-migration-operator.json"].as_str().unwrap()).unwrap();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            queries.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    assert!(queries.len() >= 8, "{queries:?}");
    let rules: Vec<Value> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let q = q.replace("$__rate_interval", "5m").replace("$job", ".+").replace("$namespace", ".+");
            json!({"record": format!("dashboard:query{i}"), "expr": q})
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("dashboard-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("dashboard-rules.json");
    std::fs::write(&file, json!({"groups": [{"name": "dashboard", "rules": rules}]}).to_string()).unwrap();
    let out = std::process::Command::new(promtool()).args(["check", "rules"]).arg(&file).output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
