//! GitOps health (design.md §3, the kstatus and Argo CD columns; peers.md §4): recorded RedisMigration objects, one
//! per row of the design's status table (tests/fixtures/gitops/*.json, written as src/controller/status.rs sets the
//! conditions), judged by
//! - the Argo CD health check shipped in docs/argocd-health.lua, run in a real Lua interpreter (mlua, Lua 5.4; the
//!   script keeps to Lua 5.1, which Argo CD's gopher-lua runs), and
//! - kstatus's own `status.Compute` (sigs.k8s.io/cli-utils, what Flux's `wait`/`healthChecks` use), built from
//!   tools/kstatus through the Go module proxy.
//!
//! And the docs that carry the Lua (docs/gitops.md, the chart's README) carry exactly the tested script.

use dcs_migration_operator::controller::conditions::{ConditionType, Reason};
use dcs_migration_operator::crd::RedisMigration;
use mlua::serde::SerializeOptions;
use mlua::{Lua, LuaSerdeExt};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One row: fixture, the Ready reason it records, and what kstatus and Argo CD must conclude.
struct Row {
    fixture: &'static str,
    ready_reason: Reason,
    kstatus: &'static str,
    argo: &'static str,
}

const fn row(fixture: &'static str, ready_reason: Reason, kstatus: &'static str, argo: &'static str) -> Row {
    Row { fixture, ready_reason, kstatus, argo }
}

/// design.md §3's table, row by row (several fixtures per row where the row lists several remote words).
const TABLE: &[Row] = &[
    // none yet
    row("pending", Reason::Creating, "InProgress", "Progressing"),
    row("creating", Reason::Creating, "InProgress", "Progressing"),
    // CREATING, RUNNING (awaits configure)
    row("provisioning", Reason::Configuring, "InProgress", "Progressing"),
    row("awaiting-configuration", Reason::Configuring, "InProgress", "Progressing"),
    // MIGRATING, FULLMIGRATING
    row("full-migrating", Reason::Migrating, "InProgress", "Progressing"),
    row("backup-import-migrating", Reason::Migrating, "InProgress", "Progressing"),
    // INCRMIGEATING (streaming)
    row("incremental-syncing", Reason::IncrementalSyncing, "Current", "Healthy"),
    // SUCCESS (then RELEASED)
    row("succeeded", Reason::Succeeded, "Current", "Healthy"),
    row("succeeded-released", Reason::Succeeded, "Current", "Healthy"),
    // TERMINATING
    row("terminating", Reason::Stopping, "InProgress", "Progressing"),
    // TERMINATED with stopped: true: Ready=True with reason StoppedByUser, so kstatus (which falls back to the
    // Ready condition, cli-utils status.go checkReadyCondition) says Current and the Lua says Suspended.
    row("stopped-by-user", Reason::StoppedByUser, "Current", "Suspended"),
    // FAILED, MIGRATION_FAILED, ERROR
    row("failed", Reason::Failed, "Failed", "Degraded"),
    row("migration-failed", Reason::Failed, "Failed", "Degraded"),
    // TERMINATED not asked for, DELETED, task gone
    row("stopped-remotely", Reason::StoppedRemotely, "Failed", "Degraded"),
    row("remote-task-gone", Reason::RemoteTaskGone, "Failed", "Degraded"),
    // 429 / 5xx / network on a later call: unchanged
    row("api-error-while-migrating", Reason::Migrating, "InProgress", "Progressing"),
    row("api-error-while-ready", Reason::IncrementalSyncing, "Current", "Healthy"),
    // non-retryable 4xx, invalid spec, missing Secret
    row("invalid-spec", Reason::InvalidSpec, "Failed", "Degraded"),
    row("credentials-missing", Reason::CredentialsMissing, "Failed", "Degraded"),
    row("credentials-rejected", Reason::CredentialsRejected, "Failed", "Degraded"),
    // transitional longer than progressDeadlineSeconds
    row("progress-deadline-exceeded", Reason::ProgressDeadlineExceeded, "Failed", "Degraded"),
    // paused: conditions unchanged, so kstatus unchanged; Argo CD Suspended
    row("paused-while-ready", Reason::IncrementalSyncing, "Current", "Suspended"),
    row("paused-while-migrating", Reason::Migrating, "InProgress", "Suspended"),
    // deleting
    row("deleting", Reason::Deleting, "Terminating", "Progressing"),
    // not in the table: a spec change not yet acted on must not pass for the old generation's verdict
    row("generation-not-yet-observed", Reason::IncrementalSyncing, "InProgress", "Progressing"),
];

fn fixture_path(name: &str) -> PathBuf {
    repo().join("tests/fixtures/gitops").join(format!("{name}.json"))
}

fn fixture(name: &str) -> Value {
    let path = fixture_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn conditions<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)
}

#[test]
fn every_fixture_is_a_redismigration_as_the_operator_writes_it() {
    let listed: Vec<&str> = TABLE.iter().map(|r| r.fixture).collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(repo().join("tests/fixtures/gitops"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".json").map(str::to_owned))
        .collect();
    on_disk.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(on_disk, sorted, "every fixture is a row of the table and every row has a fixture");

    for row in TABLE {
        let obj = fixture(row.fixture);
        // The operator's own types read it: spec and status have the CRD's shape.
        let _typed: RedisMigration = serde_json::from_value(obj.clone())
            .unwrap_or_else(|e| panic!("{}: not a RedisMigration: {e}", row.fixture));
        // Ready, Reconciling and Stalled are always there (kstatus's race on a brand-new object, peers.md §4.2).
        for type_ in
            [ConditionType::Ready.as_str(), ConditionType::Reconciling.as_str(), ConditionType::Stalled.as_str()]
        {
            let c = conditions(&obj, type_).unwrap_or_else(|| panic!("{}: no {type_} condition", row.fixture));
            assert!(c["status"] == "True" || c["status"] == "False", "{}: {type_} is True or False", row.fixture);
        }
        assert_eq!(
            conditions(&obj, ConditionType::Ready.as_str()).unwrap()["reason"],
            row.ready_reason.as_str(),
            "{}: Ready reason",
            row.fixture
        );
        let status_generation = &obj["status"]["observedGeneration"];
        assert!(status_generation.is_i64(), "{}: status.observedGeneration", row.fixture);
        for c in obj["status"]["conditions"].as_array().unwrap() {
            assert_eq!(
                &c["observedGeneration"], status_generation,
                "{}: conditions carry observedGeneration",
                row.fixture
            );
        }
    }
}

/// Runs docs/argocd-health.lua as Argo CD does: `obj` set, the chunk returns `hs`.
fn argo_health(lua_source: &str, obj: &Value) -> (String, String) {
    let lua = Lua::new();
    let options = SerializeOptions::new().serialize_none_to_null(false).serialize_unit_to_null(false);
    let value = lua.to_value_with(obj, options).expect("the object converts to Lua");
    lua.globals().set("obj", value).unwrap();
    let hs: mlua::Table = lua.load(lua_source).set_name("argocd-health.lua").eval().expect("the health script runs");
    let status: String = hs.get("status").expect("hs.status is a string");
    let message: String = hs.get("message").expect("hs.message is a string");
    (status, message)
}

fn health_script() -> String {
    std::fs::read_to_string(repo().join("docs/argocd-health.lua")).unwrap()
}

#[test]
fn argocd_health_check_gives_the_design_tables_status_for_every_row() {
    let script = health_script();
    let mut wrong = Vec::new();
    for row in TABLE {
        let obj = fixture(row.fixture);
        let (status, message) = argo_health(&script, &obj);
        if status != row.argo {
            wrong.push(format!("{}: Argo CD {status} ({message}), the design says {}", row.fixture, row.argo));
        }
        assert!(!message.is_empty(), "{}: a message", row.fixture);
        // Degraded and Progressing carry the operator's own words (the Ready/Stalled message).
        let ready = conditions(&obj, ConditionType::Ready.as_str()).unwrap();
        if matches!(status.as_str(), "Degraded" | "Healthy")
            || (status == "Progressing" && row.fixture != "generation-not-yet-observed")
        {
            let words = ready["message"].as_str().unwrap();
            assert!(message.contains(words), "{}: message {message:?} carries {words:?}", row.fixture);
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn argocd_health_check_waits_for_a_status_on_a_brand_new_object() {
    let script = health_script();
    let mut obj = fixture("pending");
    obj.as_object_mut().unwrap().remove("status");
    let (status, _) = argo_health(&script, &obj);
    assert_eq!(status, "Progressing", "no status yet is not Healthy");
    obj["status"] = serde_json::json!({});
    assert_eq!(argo_health(&script, &obj).0, "Progressing");
}

/// The block under `key: |` in a Markdown/YAML text, unindented.
fn yaml_block_after(text: &str, key: &str) -> Option<String> {
    let mut lines = text.lines().skip_while(|l| !l.trim_start().starts_with(key));
    let header = lines.next()?;
    let header_indent = header.len() - header.trim_start().len();
    let body: Vec<&str> =
        lines.take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > header_indent).collect();
    let indent = body.iter().filter(|l| !l.trim().is_empty()).map(|l| l.len() - l.trim_start().len()).min()?;
    let mut out: String = body
        .iter()
        .map(|l| if l.trim().is_empty() { "\n".to_owned() } else { format!("{}\n", &l[indent..]) })
        .collect();
    while out.ends_with("\n\n") {
        out.pop();
    }
    Some(out)
}

#[test]
fn argocd_cm_snippets_in_the_docs_are_the_tested_script() {
    let script = health_script();
    let key = "resource.customizations.health.dcs.migration.io_RedisMigration: |";
    for doc in ["docs/gitops.md", "charts/dcs-migration-operator/README.md"] {
        let text = std::fs::read_to_string(repo().join(doc)).unwrap_or_else(|e| panic!("{doc}: {e}"));
        let block = yaml_block_after(&text, key).unwrap_or_else(|| panic!("{doc} has no `{key}` snippet"));
        assert_eq!(
            block.trim_end(),
            script.trim_end(),
            "{doc}'s argocd-cm snippet differs from docs/argocd-health.lua"
        );
    }
}

/// Builds tools/kstatus (GOTOOLCHAIN=local; modules from the Go module proxy or the module cache).
fn kstatus_binary() -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kstatus");
    let build = Command::new("go")
        .args(["build", "-mod=readonly", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(repo().join("tools/kstatus"))
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0")
        .output()
        .expect("`go` runs (Go is needed to build tools/kstatus)");
    assert!(build.status.success(), "building tools/kstatus: {}", String::from_utf8_lossy(&build.stderr));
    out
}

#[test]
fn kstatus_compute_gives_the_design_tables_status_for_every_row() {
    let bin = kstatus_binary();
    let out = Command::new(&bin).args(TABLE.iter().map(|r| fixture_path(r.fixture))).output().unwrap();
    assert!(out.status.success(), "kstatus: {}", String::from_utf8_lossy(&out.stderr));
    let results: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(results.len(), TABLE.len());
    let mut wrong = Vec::new();
    for (row, result) in TABLE.iter().zip(&results) {
        if result["status"] != row.kstatus {
            wrong.push(format!(
                "{}: kstatus {} ({}), the design says {}",
                row.fixture, result["status"], result["message"], row.kstatus
            ));
        }
        // Failed carries the Stalled message: what `flux get kustomizations` shows the user.
        if row.kstatus == "Failed" {
            let stalled =
                conditions(&fixture(row.fixture), ConditionType::Stalled.as_str()).unwrap()["message"].clone();
            assert_eq!(result["message"], stalled, "{}: kstatus reports the Stalled message", row.fixture);
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
