//! A shared cluster (design.md §2, Tenancy), on the real control plane: the chart's ValidatingAdmissionPolicy
//! refuses a RedisMigration whose author may not read a Secret it references (users impersonated with
//! `kubectl --as`); the operator's default credentials serve only namespaces labelled
//! `dcs.migration.io/default-credentials: "true"`; the chart's default endpoint allow-list admits no loopback host
//! (the operator process against the simulator); one account's backlog does not starve another account's resource
//! of the operator's reconcile slots.

mod e2e;
mod support;

use e2e::{ChartIdentity, Env, Operator, helm_template};
use serde_json::{Value, json};
use std::process::Output;
use std::time::Duration;

const PHASE: Duration = Duration::from_millis(400);

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `kubectl --as USER -n NS create -f -` with a JSON manifest.
fn create_as(user: &str, ns: &str, manifest: &Value) -> Output {
    kubectl_as(user, ns, &["create", "-f", "-"], &manifest.to_string())
}

fn kubectl_as(user: &str, ns: &str, args: &[&str], input: &str) -> Output {
    support::kubectl_stdin(&[&["--as", user, "-n", ns], args].concat(), input)
}

/// An online migration that references three Secrets: credentials, source and target passwords.
fn migration(name: &str) -> Value {
    json!({
        "apiVersion": "dcs.migration.io/v1alpha1",
        "kind": "RedisMigration",
        "metadata": {"name": name},
        "spec": {
            "region": "cn-north-4",
            "credentialsSecretRef": {"name": "team-credentials"},
            "type": "Online",
            "method": "Incremental",
            "online": {"network": {
                "vpcId": "5e3a9b5a-0c3e-4bcf-9a6b-2a1d9c3b7e11",
                "subnetId": "b7d7a0c4-3a4f-4b8e-9f3e-1c2d3e4f5a6b",
                "securityGroupId": "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"}},
            "source": {"address": "10.0.0.1:6379", "passwordSecretRef": {"name": "source-password", "key": "pw"}},
            "target": {
                "instanceId": "6f3b2a1c-9d8e-4f7a-b6c5-d4e3f2a1b0c9",
                "passwordSecretRef": {"name": "target-password", "key": "pw"}
            }
        }
    })
}

/// A Role in `ns` and its binding to `subjects` (`{kind, name[, namespace]}`), applied as the admin.
fn grant(ns: &str, role: &str, rules: Value, subjects: Value) {
    let manifests = [
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": role, "namespace": ns}, "rules": rules}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": role, "namespace": ns},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
               "subjects": subjects}),
    ];
    for m in manifests {
        e2e::kubectl_apply(&m.to_string());
    }
}

fn revoke(ns: &str, role: &str) {
    let cp = support::control_plane();
    for kind in ["rolebinding", "role"] {
        let out = cp.kubectl().args(["-n", ns, "delete", kind, role]).output().unwrap();
        assert!(out.status.success(), "deleting {kind} {role}: {}", stderr(&out));
    }
}

/// The request was refused by the policy with a message naming each of `names` and none of `not`.
fn refused_naming(out: &Output, names: &[&str], not: &[&str]) {
    assert!(!out.status.success(), "accepted, though {names:?} may not be read");
    let message = stderr(out);
    assert!(message.contains("ValidatingAdmissionPolicy"), "refused by the policy: {message}");
    for s in names {
        assert!(message.contains(s), "the message names {s}: {message}");
    }
    for s in not {
        assert!(!message.contains(s), "the message names only unreadable Secrets, not {s}: {message}");
    }
}

/// The chart's admission policy for `release`, bound to namespace `ns` only (as with `watchNamespace`): policies
/// are cluster-wide, and each exempts only its own release's operator, so concurrent tests must not overlap.
fn scoped_admission_policy(release: &str, ns: &str) -> String {
    helm_template(release, ns, &[&format!("watchNamespace={ns}")], &["templates/admissionpolicy.yaml"])
}

#[tokio::test]
async fn a_user_who_may_not_get_a_referenced_secret_is_refused_until_granted_get_on_it() {
    e2e::install_crd();
    let ns = support::fresh_namespace("vap-secrets").await;
    let release = format!("vap-{ns}");
    let operator = e2e::chart_fullname(&release);
    e2e::kubectl_apply(&scoped_admission_policy(&release, &ns));
    for name in ["team-credentials", "source-password", "target-password", "someone-elses"] {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
                            "stringData": {"pw": e2e::secret_value("pw")}});
        e2e::kubectl_apply(&secret.to_string());
    }
    // alice, and the operator's own ServiceAccount, may create and change RedisMigrations here; nobody but the
    // admin may read the Secrets yet.
    let author = json!([{"apiGroups": ["dcs.migration.io"], "resources": ["redismigrations"],
                         "verbs": ["create", "get", "update", "patch"]}]);
    grant(
        &ns,
        "rmig-author",
        author,
        json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"},
               {"kind": "ServiceAccount", "name": operator, "namespace": ns}]),
    );

    // The policy takes a moment to be loaded: until it is, the create would go through, so dry runs probe it.
    let first = support::eventually("the admission policy to be enforced", Duration::from_secs(30), || async {
        let out = kubectl_as("alice", &ns, &["create", "--dry-run=server", "-f", "-"], &migration("m").to_string());
        (!out.status.success()).then_some(out)
    })
    .await;
    refused_naming(&first, &["spec.credentialsSecretRef", "team-credentials"], &["source-password", "target-password"]);

    // get on each Secret in turn (resourceNames): refused, naming the next unreadable one, until all are readable.
    let alice = json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]);
    let read = |secret: &str| json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": [secret]}]);
    grant(&ns, "read-credentials", read("team-credentials"), alice.clone());
    let out = create_as("alice", &ns, &migration("m"));
    refused_naming(
        &out,
        &["spec.source.passwordSecretRef", "source-password"],
        &["team-credentials", "target-password"],
    );
    grant(&ns, "read-source", read("source-password"), alice.clone());
    let out = create_as("alice", &ns, &migration("m"));
    refused_naming(
        &out,
        &["spec.target.passwordSecretRef", "target-password"],
        &["team-credentials", "source-password"],
    );
    grant(&ns, "read-target", read("target-password"), alice);
    let out = create_as("alice", &ns, &migration("m"));
    assert!(out.status.success(), "accepted once alice may get every referenced Secret: {}", stderr(&out));

    // An update is checked for the Secrets it newly references, and only those.
    revoke(&ns, "read-credentials");
    revoke(&ns, "read-source");
    let out = kubectl_as("alice", &ns, &["label", "rmig", "m", "team=orders"], "");
    assert!(out.status.success(), "an update that references no new Secret is not checked again: {}", stderr(&out));
    let swap = json!({"spec": {"target": {"passwordSecretRef": {"name": "someone-elses", "key": "pw"}}}}).to_string();
    let out = kubectl_as("alice", &ns, &["patch", "rmig", "m", "--type=merge", "-p", &swap], "");
    refused_naming(&out, &["someone-elses"], &["team-credentials", "source-password", "target-password"]);

    // The operator's own ServiceAccount is not subject to the policy.
    let out = create_as(&format!("system:serviceaccount:{ns}:{operator}"), &ns, &migration("by-operator"));
    assert!(out.status.success(), "the operator's ServiceAccount is exempt: {}", stderr(&out));
    // Another ServiceAccount with the same RBAC is not.
    grant(
        &ns,
        "other-author",
        json!([{"apiGroups": ["dcs.migration.io"], "resources": ["redismigrations"], "verbs": ["create"]}]),
        json!([{"kind": "ServiceAccount", "name": "ci", "namespace": ns}]),
    );
    let out = create_as(&format!("system:serviceaccount:{ns}:ci"), &ns, &migration("by-ci"));
    refused_naming(&out, &["team-credentials"], &[]);
}

#[tokio::test]
async fn a_user_who_may_not_mint_the_named_service_accounts_token_is_refused_that_identity() {
    e2e::install_crd();
    let ns = support::fresh_namespace("vap-identity").await;
    let release = format!("vap-{ns}");
    e2e::kubectl_apply(&scoped_admission_policy(&release, &ns));
    let bob = json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}]);
    let author = json!([{"apiGroups": ["dcs.migration.io"], "resources": ["redismigrations"], "verbs": ["create"]}]);
    grant(&ns, "rmig-author", author, bob.clone());
    let mut keyless = migration("keyless");
    let spec = keyless["spec"].as_object_mut().unwrap();
    spec.remove("credentialsSecretRef");
    spec.insert("projectId".into(), json!("0123456789abcdef0123456789abcdef"));
    spec.insert("identity".into(), json!({"serviceAccountName": "migrator", "idpId": "k8s-cluster"}));
    spec["source"].as_object_mut().unwrap().remove("passwordSecretRef");
    spec["target"].as_object_mut().unwrap().remove("passwordSecretRef");

    let first = support::eventually("the admission policy to be enforced", Duration::from_secs(30), || async {
        let out = kubectl_as("bob", &ns, &["create", "--dry-run=server", "-f", "-"], &keyless.to_string());
        (!out.status.success()).then_some(out)
    })
    .await;
    refused_naming(&first, &["spec.identity.serviceAccountName", "migrator"], &[]);
    // A token for another ServiceAccount is not enough; for this one it is.
    let mint = |sa: &str| json!([{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"], "resourceNames": [sa]}]);
    grant(&ns, "mint-other", mint("someone-else"), bob.clone());
    refused_naming(&create_as("bob", &ns, &keyless), &["migrator"], &[]);
    grant(&ns, "mint-migrator", mint("migrator"), bob);
    let out = create_as("bob", &ns, &keyless);
    assert!(out.status.success(), "accepted once bob may mint the ServiceAccount's token: {}", stderr(&out));
}

/// `backup-import-obs.yaml` without `credentialsSecretRef`: it relies on the operator's default credentials.
fn without_own_credentials(env: &Env, name: &str) -> String {
    env.example("backup-import-obs.yaml")
        .replace("  credentialsSecretRef:\n    name: dcs-credentials\n", "")
        .replace("name: import-from-obs", &format!("name: {name}"))
}

fn dcs_calls(state: &Value) -> u64 {
    state["calls"].as_object().map_or(0, |calls| calls.values().filter_map(Value::as_u64).sum())
}

#[tokio::test]
async fn default_credentials_serve_only_namespaces_labelled_to_use_them() {
    let env = Env::new("default-creds", PHASE).await;
    let defaults = [
        ("HUAWEICLOUD_SDK_AK", e2e::AK),
        ("HUAWEICLOUD_SDK_SK", env.secret_key.as_str()),
        ("HUAWEICLOUD_SDK_PROJECT_ID", e2e::PROJECT),
    ];
    // As the chart's ServiceAccount in watchNamespace mode: its RBAC lets it watch this namespace's labels.
    let op = Operator::start_as_chart_identity(&env, ChartIdentity::WatchNamespace, &[], &defaults);
    let manifest = without_own_credentials(&env, "borrowing");
    assert!(!manifest.contains("credentialsSecretRef"), "{manifest}");
    env.apply(&manifest);

    let rm =
        env.wait_condition("borrowing", "Ready", "False", Some("CredentialsMissing"), Duration::from_secs(60)).await;
    let ready = rm["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
    let message = ready["message"].as_str().unwrap();
    assert!(
        message.contains(&env.ns) && message.contains("dcs.migration.io/default-credentials=true"),
        "the message names the namespace and the label: {message}"
    );
    let stalled = rm["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Stalled").unwrap();
    assert_eq!((&stalled["status"], &stalled["reason"]), (&json!("True"), &json!("CredentialsMissing")));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let state = env.sim_state().await;
    assert_eq!(dcs_calls(&state), 0, "no DCS call for an unlabelled namespace: {}", state["calls"]);

    // The namespace opts in: the resource proceeds, well within 60 s.
    let out = support::control_plane()
        .kubectl()
        .args(["label", "namespace", &env.ns, "dcs.migration.io/default-credentials=true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "labelling the namespace: {}", stderr(&out));
    let labelled = std::time::Instant::now();
    env.wait_phase("borrowing", "Succeeded", Duration::from_secs(60)).await;
    assert!(labelled.elapsed() < Duration::from_secs(60), "the label took effect within 60 s");
    assert_eq!(env.sim_state().await["tasks"].as_array().unwrap().len(), 1);

    // And opts out again: a new resource without its own credentials stops before any DCS call.
    let out = support::control_plane()
        .kubectl()
        .args(["label", "namespace", &env.ns, "dcs.migration.io/default-credentials-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "removing the label: {}", stderr(&out));
    support::eventually("the operator to see the label gone", Duration::from_secs(60), || async {
        let name = format!("late-{}", rand::random::<u16>());
        env.apply(&without_own_credentials(&env, &name));
        tokio::time::sleep(Duration::from_secs(3)).await;
        let rm = env.get(&name);
        let reason = rm["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
            .map(|c| c["reason"].clone());
        (reason == Some(json!("CredentialsMissing"))).then_some(())
    })
    .await;
    let logs = op.logs();
    assert!(!logs.to_lowercase().contains("forbidden"), "no request of the operator was forbidden:\n{logs}");
    env.assert_no_secret_leaked(&[logs]);
}

#[tokio::test]
async fn the_charts_default_allow_list_refuses_a_loopback_endpoint_and_a_list_naming_the_host_admits_plain_http() {
    let env = Env::new("allow-list", PHASE).await;
    let values = helm_template("x", "x", &[], &["templates/deployment.yaml"]);
    let args: Vec<&str> = values.lines().map(str::trim).collect();
    let at = args.iter().position(|l| *l == "- --allowed-endpoints").expect("the chart sets --allowed-endpoints");
    let chart_default = args[at + 1].trim_start_matches("- ").trim_matches('"').to_owned();
    assert_eq!(
        chart_default,
        "dcs.*.myhuaweicloud.com,dcs.*.otc.t-systems.com,iam.*.myhuaweicloud.com,sts.*.myhuaweicloud.com,\
         iam.*.otc.t-systems.com,sts.*.otc.t-systems.com"
    );

    let mut op = Operator::start_with(&env, &["--allowed-endpoints", &chart_default], &[]);
    env.apply(&env.example("backup-import-obs.yaml"));
    let rm =
        env.wait_condition("import-from-obs", "Stalled", "True", Some("InvalidSpec"), Duration::from_secs(60)).await;
    let ready = rm["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
    assert!(
        ready["message"].as_str().unwrap().contains("\"127.0.0.1\" is not in the operator's allowed endpoints"),
        "{ready}"
    );
    assert_eq!(dcs_calls(&env.sim_state().await), 0, "nothing is sent to a host the list does not admit");

    // A list that admits the loopback host, on any port: plain http to it goes through.
    op.kill();
    let admitting = Operator::start_with(&env, &["--allowed-endpoints", "dcs.*.myhuaweicloud.com,127.0.0.1"], &[]);
    env.kubectl(&["annotate", "rmig", "import-from-obs", "dcs.migration.io/reconcile-requested-at=now"]);
    env.wait_phase("import-from-obs", "Succeeded", Duration::from_secs(60)).await;
    env.assert_no_secret_leaked(&[op.logs(), admitting.logs()]);
}

/// Tasks the account's simulator holds.
async fn tasks(env: &Env) -> usize {
    env.sim_state().await["tasks"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn one_accounts_backlog_does_not_hold_the_reconcile_slots_another_accounts_resource_needs() {
    let mut busy = Env::new("backlog", PHASE).await;
    let other =
        Env::with_account("backlog-other", PHASE, "OTHERTEAMACCESSKEY00", "fedcba9876543210fedcba9876543210", |c| c)
            .await;
    // The operator watches one namespace: the other team's resource names its own account's keys there.
    busy.put_secret(
        "other-credentials",
        &[("accessKey", &other.access_key), ("secretKey", &other.secret_key), ("projectId", &other.project)],
    )
    .await;
    // Four slots; each account may send 2 calls a second: the backlog's creates take 20 s.
    let op = Operator::start_with(&busy, &["--max-concurrent-reconciles", "4", "--qps", "2", "--burst", "1"], &[]);
    let backlog = 40;
    let imports: Vec<String> = (0..backlog)
        .map(|i| {
            busy.example("backup-import-obs.yaml").replace("name: import-from-obs", &format!("name: backlog-{i:02}"))
        })
        .collect();
    busy.apply(&imports.join("\n---\n"));
    support::eventually("the backlog's first creates", Duration::from_secs(30), || async {
        (tasks(&busy).await >= 1).then_some(())
    })
    .await;

    let theirs = other
        .example("backup-import-obs.yaml")
        .replace("name: import-from-obs", "name: other-team")
        .replace("name: dcs-credentials", "name: other-credentials");
    busy.apply(&theirs);
    let created_before = support::eventually("the other account's task", Duration::from_secs(60), || async {
        let busy_tasks = tasks(&busy).await;
        (tasks(&other).await == 1).then_some(busy_tasks)
    })
    .await;
    // Measured with a backlog of 30: in line behind it, the other team's task came after 27 of its creates; with
    // turns, after 7.
    assert!(
        created_before < backlog / 2,
        "the other account's task was created while {created_before} of the backlog's {backlog} were: it waited in line"
    );

    // Nothing of the backlog is lost by giving slots back: every resource gets its one task.
    busy.wait_count_in_phase("Succeeded", backlog + 1, Duration::from_secs(120)).await;
    assert_eq!(tasks(&busy).await, backlog, "one task per resource");
    busy.assert_no_secret_leaked(&[op.logs()]);
}
