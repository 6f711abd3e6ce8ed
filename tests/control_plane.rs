//! Proof that the test control plane (scripts/control-plane, tests/support) is the real thing: CRDs, OpenAPI and
//! CEL validation, server-side apply, the status subresource, finalizers, watches and RBAC all behave as a real
//! kube-apiserver makes them behave. Uses a small test CRD of its own (`Widget`), not the product's.

mod support;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::{
    api::{
        authentication::v1::SelfSubjectReview,
        core::v1::{ConfigMap, Secret},
        rbac::v1::{Role, RoleBinding, RoleRef, Subject},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, CustomResource, ResourceExt,
    api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent, WatchParams},
};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The test resource. Its schema is written by hand below (`widget_crd`), with the rules the tests exercise.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "cptest.dcs.migration.io",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct WidgetSpec {
    size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    color: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WidgetStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phase: Option<String>,
}

const CRD_NAME: &str = "widgets.cptest.dcs.migration.io";
const FIELD_MANAGER: &str = "control-plane-test";

fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": CRD_NAME },
        "spec": {
            "group": "cptest.dcs.migration.io",
            "scope": "Namespaced",
            "names": { "plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList" },
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "subresources": { "status": {} },
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["size"],
                            "properties": {
                                "size": { "type": "integer", "minimum": 1, "maximum": 10 },
                                "mode": { "type": "string", "enum": ["Fast", "Slow"] },
                                "color": {
                                    "type": "string",
                                    "x-kubernetes-validations": [
                                        { "rule": "self == oldSelf", "message": "color is immutable" }
                                    ]
                                }
                            },
                            "x-kubernetes-validations": [{
                                "rule": "!has(self.mode) || self.mode != 'Slow' || self.size <= 5",
                                "message": "a Slow widget has size 5 at most",
                                "fieldPath": ".size"
                            }]
                        },
                        "status": {
                            "type": "object",
                            "properties": { "phase": { "type": "string" } }
                        }
                    }
                }}
            }]
        }
    }))
    .expect("a valid CustomResourceDefinition")
}

/// Applies the Widget CRD (server-side, idempotent: every test calls it) and waits until it is Established and
/// Widgets are served.
async fn install_widget_crd(client: &Client) {
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    crds.patch(CRD_NAME, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(widget_crd()))
        .await
        .expect("applying the Widget CRD");
    support::eventually("the Widget CRD to be Established", Duration::from_secs(30), || {
        let crds = crds.clone();
        async move { crds.get(CRD_NAME).await.ok().filter(is_established) }
    })
    .await;
    let widgets = Api::<Widget>::all(client.clone());
    support::eventually("Widgets to be served", Duration::from_secs(30), || {
        let widgets = widgets.clone();
        async move { widgets.list(&ListParams::default().limit(1)).await.ok() }
    })
    .await;
}

fn is_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"))
}

fn widget(name: &str, spec: WidgetSpec) -> Widget {
    Widget::new(name, spec)
}

/// The API's refusal of a request, or a panic if it was accepted or failed otherwise.
fn refusal<T: std::fmt::Debug>(result: kube::Result<T>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected the API server to refuse the request, got {other:?}"),
    }
}

#[tokio::test]
async fn crd_applied_becomes_established() {
    let client = support::admin_client().await;
    install_widget_crd(&client).await;
    let crd = Api::<CustomResourceDefinition>::all(client).get(CRD_NAME).await.unwrap();
    let conditions = crd.status.unwrap().conditions.unwrap();
    for wanted in ["NamesAccepted", "Established"] {
        assert!(
            conditions.iter().any(|c| c.type_ == wanted && c.status == "True"),
            "{wanted} not True in {conditions:?}"
        );
    }
}

#[tokio::test]
async fn openapi_schema_rule_refuses_object_and_names_the_field() {
    let client = support::admin_client().await;
    install_widget_crd(&client).await;
    let ns = support::fresh_namespace("openapi-schema-rule").await;
    let widgets = Api::<Widget>::namespaced(client, &ns);

    let too_big = widget("too-big", WidgetSpec { size: 11, ..Default::default() });
    let status = refusal(widgets.create(&PostParams::default(), &too_big).await);
    assert_eq!(status.code, 422, "{status:?}");
    assert!(status.message.contains("spec.size"), "field not named: {}", status.message);
    assert!(status.message.contains("less than or equal to 10"), "{}", status.message);

    let bad_enum = widget("bad-mode", WidgetSpec { size: 1, mode: Some("Turbo".into()), ..Default::default() });
    let status = refusal(widgets.create(&PostParams::default(), &bad_enum).await);
    assert_eq!(status.code, 422, "{status:?}");
    assert!(status.message.contains("spec.mode"), "field not named: {}", status.message);

    // The same schema accepts a valid object.
    widgets
        .create(&PostParams::default(), &widget("fine", WidgetSpec { size: 10, ..Default::default() }))
        .await
        .unwrap();
}

#[tokio::test]
async fn cel_rule_refuses_object_and_names_the_field() {
    let client = support::admin_client().await;
    install_widget_crd(&client).await;
    let ns = support::fresh_namespace("cel-rule").await;
    let widgets = Api::<Widget>::namespaced(client, &ns);

    let slow_and_big = widget("slow-big", WidgetSpec { size: 8, mode: Some("Slow".into()), ..Default::default() });
    let status = refusal(widgets.create(&PostParams::default(), &slow_and_big).await);
    assert_eq!(status.code, 422, "{status:?}");
    assert!(status.message.contains("spec.size"), "field not named: {}", status.message);
    assert!(status.message.contains("a Slow widget has size 5 at most"), "{}", status.message);

    // A transition rule (oldSelf): the field can be set, not changed.
    let w = widget("painted", WidgetSpec { size: 2, color: Some("red".into()), ..Default::default() });
    widgets.create(&PostParams::default(), &w).await.unwrap();
    let repaint = json!({ "spec": { "color": "blue" } });
    let status = refusal(widgets.patch("painted", &PatchParams::default(), &Patch::Merge(&repaint)).await);
    assert_eq!(status.code, 422, "{status:?}");
    assert!(status.message.contains("spec.color"), "field not named: {}", status.message);
    assert!(status.message.contains("color is immutable"), "{}", status.message);
}

#[tokio::test]
async fn server_side_apply_records_the_field_manager_and_detects_conflicts() {
    let client = support::admin_client().await;
    install_widget_crd(&client).await;
    let ns = support::fresh_namespace("server-side-apply").await;
    let widgets = Api::<Widget>::namespaced(client, &ns);

    let applied = json!({
        "apiVersion": "cptest.dcs.migration.io/v1", "kind": "Widget",
        "metadata": { "name": "ssa" },
        "spec": { "size": 3, "mode": "Fast" }
    });
    let w = widgets.patch("ssa", &PatchParams::apply("manager-a"), &Patch::Apply(&applied)).await.unwrap();
    let entry = w
        .managed_fields()
        .iter()
        .find(|m| m.manager.as_deref() == Some("manager-a"))
        .unwrap_or_else(|| panic!("manager-a not in managedFields: {:?}", w.managed_fields()));
    assert_eq!(entry.operation.as_deref(), Some("Apply"));
    let owned = serde_json::to_string(&entry.fields_v1).unwrap();
    assert!(owned.contains("f:size") && owned.contains("f:mode"), "manager-a owns {owned}");

    // Another manager applying a different value for an owned field conflicts, unless it forces.
    let other = json!({
        "apiVersion": "cptest.dcs.migration.io/v1", "kind": "Widget",
        "metadata": { "name": "ssa" },
        "spec": { "size": 4 }
    });
    let status = refusal(widgets.patch("ssa", &PatchParams::apply("manager-b"), &Patch::Apply(&other)).await);
    assert_eq!(status.code, 409, "{status:?}");
    assert!(status.message.contains("manager-a"), "{}", status.message);
    let w = widgets.patch("ssa", &PatchParams::apply("manager-b").force(), &Patch::Apply(&other)).await.unwrap();
    assert_eq!(w.spec.size, 4);
    assert!(w.managed_fields().iter().any(|m| m.manager.as_deref() == Some("manager-b")));
}

#[tokio::test]
async fn status_subresource_ignores_status_on_main_update_and_takes_it_via_status() {
    let client = support::admin_client().await;
    install_widget_crd(&client).await;
    let ns = support::fresh_namespace("status-subresource").await;
    let widgets = Api::<Widget>::namespaced(client, &ns);

    let mut w = widget("with-status", WidgetSpec { size: 1, ..Default::default() });
    w.status = Some(WidgetStatus { phase: Some("FromCreate".into()) });
    let created = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(created.status, None, "status set through create");
    let generation = created.metadata.generation;

    let patch = json!({ "status": { "phase": "FromMainResource" } });
    let after = widgets.patch("with-status", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    assert_eq!(after.status, None, "status set through the main resource");

    let patch = json!({ "status": { "phase": "Ready" } });
    let after = widgets.patch_status("with-status", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    assert_eq!(after.status.and_then(|s| s.phase).as_deref(), Some("Ready"));
    assert_eq!(after.metadata.generation, generation, "a status write must not bump the generation");

    // And /status ignores spec changes.
    let patch = json!({ "spec": { "size": 9 } });
    let after = widgets.patch_status("with-status", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    assert_eq!(after.spec.size, 1);
}

#[tokio::test]
async fn finalizer_holds_deletion_until_removed() {
    let client = support::admin_client().await;
    install_widget_crd(&client).await;
    let ns = support::fresh_namespace("finalizer").await;
    let widgets = Api::<Widget>::namespaced(client, &ns);

    let mut w = widget("held", WidgetSpec { size: 1, ..Default::default() });
    w.metadata.finalizers = Some(vec!["cptest.dcs.migration.io/hold".into()]);
    widgets.create(&PostParams::default(), &w).await.unwrap();

    widgets.delete("held", &DeleteParams::default()).await.unwrap();
    let held = widgets.get("held").await.expect("the finalizer keeps the object");
    assert!(held.metadata.deletion_timestamp.is_some(), "no deletionTimestamp on {held:?}");

    let release = json!({ "metadata": { "finalizers": null } });
    widgets.patch("held", &PatchParams::default(), &Patch::Merge(&release)).await.unwrap();
    let status = refusal(widgets.get("held").await);
    assert_eq!(status.code, 404, "{status:?}");
}

#[tokio::test]
async fn watch_receives_added_modified_and_deleted_events() {
    let client = support::admin_client().await;
    install_widget_crd(&client).await;
    let ns = support::fresh_namespace("watch").await;
    let widgets = Api::<Widget>::namespaced(client, &ns);

    let list = widgets.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.expect("a list has a resourceVersion");
    let mut events = widgets.watch(&WatchParams::default().timeout(60), &rv).await.unwrap().boxed();

    widgets
        .create(&PostParams::default(), &widget("watched", WidgetSpec { size: 1, ..Default::default() }))
        .await
        .unwrap();
    let patch = json!({ "spec": { "size": 2 } });
    widgets.patch("watched", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    widgets.delete("watched", &DeleteParams::default()).await.unwrap();

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(20), events.try_next())
            .await
            .unwrap_or_else(|_| panic!("no watch event within 20 s; saw {seen:?}"))
            .expect("the watch stream failed")
            .expect("the watch ended early");
        seen.push(match event {
            WatchEvent::Added(w) => ("Added", w.spec.size),
            WatchEvent::Modified(w) => ("Modified", w.spec.size),
            WatchEvent::Deleted(w) => ("Deleted", w.spec.size),
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Error(e) => panic!("watch error: {e:?}"),
        });
    }
    assert_eq!(seen, [("Added", 1), ("Modified", 2), ("Deleted", 2)]);
}

#[tokio::test]
async fn service_account_token_is_forbidden_what_its_role_does_not_allow_and_allowed_what_it_does() {
    let admin = support::admin_client().await;
    let ns = support::fresh_namespace("rbac").await;
    let other_ns = support::fresh_namespace("rbac-other").await;

    let role: Role = serde_json::from_value(json!({
        "metadata": { "name": "configmap-reader" },
        "rules": [{ "apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "create"] }]
    }))
    .unwrap();
    Api::<Role>::namespaced(admin.clone(), &ns).create(&PostParams::default(), &role).await.unwrap();
    let binding = RoleBinding {
        metadata: ObjectMeta { name: Some("operator-reads-configmaps".into()), ..Default::default() },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "configmap-reader".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "operator".into(),
            namespace: Some(ns.clone()),
            ..Default::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(admin.clone(), &ns).create(&PostParams::default(), &binding).await.unwrap();

    let sa = support::service_account_client(&ns, "operator").await;

    // It is who the token says.
    let review = Api::<SelfSubjectReview>::all(sa.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap();
    let user = review.status.and_then(|s| s.user_info).and_then(|u| u.username);
    assert_eq!(user.as_deref(), Some(format!("system:serviceaccount:{ns}:operator").as_str()));

    // Allowed: what the Role grants (retry briefly: the RBAC authorizer learns the binding from a watch).
    let configmaps = Api::<ConfigMap>::namespaced(sa.clone(), &ns);
    support::eventually("the Role to take effect", Duration::from_secs(10), || {
        let configmaps = configmaps.clone();
        async move { configmaps.list(&ListParams::default()).await.ok() }
    })
    .await;
    let cm = ConfigMap {
        metadata: ObjectMeta { name: Some("made-by-sa".into()), ..Default::default() },
        ..Default::default()
    };
    configmaps.create(&PostParams::default(), &cm).await.expect("create is granted");
    configmaps.get("made-by-sa").await.expect("get is granted");

    // Forbidden: a verb, a resource and a namespace the Role does not grant.
    let status = refusal(configmaps.delete("made-by-sa", &DeleteParams::default()).await);
    assert_eq!(status.code, 403, "{status:?}");
    assert!(status.message.contains(&format!("system:serviceaccount:{ns}:operator")), "{}", status.message);
    let status = refusal(Api::<Secret>::namespaced(sa.clone(), &ns).list(&ListParams::default()).await);
    assert_eq!(status.code, 403, "{status:?}");
    let status = refusal(Api::<ConfigMap>::namespaced(sa.clone(), &other_ns).list(&ListParams::default()).await);
    assert_eq!(status.code, 403, "{status:?}");

    // The admin still can.
    Api::<ConfigMap>::namespaced(admin, &ns).delete("made-by-sa", &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn kubectl_version_shows_the_pinned_server_version() {
    let cp = support::control_plane();
    let out = cp
        .kubectl()
        .arg("--kubeconfig")
        .arg(cp.kubeconfig())
        .args(["version", "-o", "json"])
        .output()
        .expect("running kubectl");
    assert!(out.status.success(), "kubectl version failed: {}", String::from_utf8_lossy(&out.stderr));
    let version: serde_json::Value = serde_json::from_slice(&out.stdout).expect("kubectl version -o json");
    let server = version["serverVersion"]["gitVersion"].as_str().expect("a serverVersion").to_string();
    assert!(!server.starts_with("v0.0.0"), "unstamped server version {server}");
    assert_eq!(version["serverVersion"]["gitTreeState"], "clean");
    if std::env::var_os("KUBEBUILDER_ASSETS").is_none() {
        assert_eq!(server, pinned_kubernetes_version(), "server version vs tools/k8s/go.mod");
    }
}

/// The k8s.io/kubernetes version tools/k8s/go.mod pins.
fn pinned_kubernetes_version() -> String {
    let go_mod = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/k8s/go.mod")).unwrap();
    go_mod
        .lines()
        .filter_map(|l| l.trim().strip_prefix("require ").or(Some(l.trim())))
        .find_map(|l| l.strip_prefix("k8s.io/kubernetes "))
        .map(|v| v.split_whitespace().next().unwrap().to_string())
        .expect("tools/k8s/go.mod requires k8s.io/kubernetes")
}

#[tokio::test]
async fn kubectl_apply_dry_run_server_validates_without_persisting() {
    let client = support::admin_client().await;
    install_widget_crd(&client).await;
    let ns = support::fresh_namespace("kubectl-dry-run").await;
    let cp = support::control_plane();
    let kubectl_apply = |manifest: String| {
        use std::io::Write;
        let mut child = cp
            .kubectl()
            .args(["apply", "--dry-run=server", "-n", &ns, "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("running kubectl");
        child.stdin.take().unwrap().write_all(manifest.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let manifest = |size: i64| {
        format!("apiVersion: cptest.dcs.migration.io/v1\nkind: Widget\nmetadata:\n  name: dry\nspec:\n  size: {size}\n")
    };

    let out = kubectl_apply(manifest(3));
    assert!(out.status.success(), "dry run refused: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("(server dry run)"));
    let status = refusal(Api::<Widget>::namespaced(client, &ns).get("dry").await);
    assert_eq!(status.code, 404, "a server dry run persisted the object");

    let out = kubectl_apply(manifest(0));
    assert!(!out.status.success(), "the dry run accepted an invalid object");
    assert!(String::from_utf8_lossy(&out.stderr).contains("spec.size"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn up_with_audit_logs_every_request_once_at_metadata_level_with_verb_resource_user_and_user_agent() {
    // A control plane of its own: the shared one runs without an audit log.
    let dir = std::env::temp_dir().join(format!("dcs-control-plane-audit-{}", std::process::id()));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/control-plane");
    let out = std::process::Command::new(script)
        .arg("up")
        .arg(&dir)
        .arg("--audit")
        .env("CONTROL_PLANE_NO_BUILD", "1")
        .env("CONTROL_PLANE_OWNER_PID", std::process::id().to_string())
        .env("CONTROL_PLANE_REMOVE_DIR", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "up --audit: {}", String::from_utf8_lossy(&out.stderr));
    let kubeconfig = std::fs::read_to_string(dir.join("kubeconfig")).unwrap();
    let server = kubeconfig.lines().find_map(|l| l.trim().strip_prefix("server: ")).unwrap().to_string();
    let token = std::fs::read_to_string(dir.join("pki/admin.token.csv")).unwrap();
    let token = token.split(',').next().unwrap();
    let agent = format!("audit-test/{:016x}", rand::random::<u64>());
    let curl = |method: &str, path: &str| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--fail", "-X", method, "-A", &agent, "--cacert"])
            .arg(dir.join("pki/ca.crt"))
            .args(["-H", &format!("Authorization: Bearer {token}"), &format!("{server}{path}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{method} {path}: {}", String::from_utf8_lossy(&out.stderr));
    };
    curl("GET", "/api/v1/namespaces/default/configmaps");
    curl("GET", "/api/v1/namespaces/default/status");
    curl("GET", "/api/v1/namespaces/default/status");

    // Blocking mode: a request's line is written before its answer.
    let log = std::fs::read_to_string(dir.join("audit.log")).unwrap();
    let ours: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("every line is one JSON event"))
        .filter(|e| e["userAgent"] == agent.as_str())
        .collect();
    assert_eq!(ours.len(), 3, "one line per request: {ours:#?}");
    for e in &ours {
        assert_eq!(e["level"], "Metadata");
        assert_eq!(e["stage"], "ResponseComplete");
        assert_eq!(e["user"]["username"], "admin");
        assert_eq!(e["responseStatus"]["code"], 200);
        assert!(e.get("requestObject").is_none() && e.get("responseObject").is_none(), "metadata only: {e}");
    }
    assert_eq!((&ours[0]["verb"], &ours[0]["objectRef"]["resource"]), (&json!("list"), &json!("configmaps")));
    assert_eq!(ours[1]["verb"], "get");
    assert_eq!(ours[1]["objectRef"]["resource"], "namespaces");
    assert_eq!(ours[1]["objectRef"]["subresource"], "status");

    let out = std::process::Command::new(script).arg("down").arg(&dir).output().unwrap();
    assert!(out.status.success(), "down: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}
