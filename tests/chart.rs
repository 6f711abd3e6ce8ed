//! The Helm chart (charts/dcs-migration-operator) and the plain manifests generated from it (deploy/), on the real
//! test control plane: lint, schema, server-side dry runs, a real `helm install`, the RBAC as the chart's own
//! ServiceAccount (allowed and forbidden, with real requests), and the operator's end-to-end scenario authenticated
//! as that ServiceAccount.

mod e2e;
mod support;

use dcs_migration_operator::crd::RedisMigration;
use e2e::{ChartIdentity, Env, Operator, helm_template};
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

const CRD_NAME: &str = "redismigrations.dcs.migration.io";

fn helm(args: &[&str]) -> Output {
    support::control_plane().command("helm").args(args).output().expect("helm runs")
}

fn chart() -> String {
    e2e::repo().join(e2e::CHART_DIR).display().to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every object of a multi-document YAML stream.
fn objects(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(yaml).expect("valid YAML").into_iter().filter(|v| v.is_object()).collect()
}

fn kinds(yaml: &str) -> Vec<String> {
    objects(yaml).iter().map(|o| o["kind"].as_str().unwrap().to_owned()).collect()
}

/// `kubectl apply --dry-run=server -f -`: the API server validates and admits every object, persisting nothing.
fn server_dry_run(manifests: &str) -> Output {
    let mut child = support::control_plane()
        .kubectl()
        .args(["apply", "--dry-run=server", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(manifests.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

static MONITORING_CRDS: OnceLock<()> = OnceLock::new();

/// prometheus-operator's ServiceMonitor and PrometheusRule kinds (minimal stand-ins), once per test binary.
fn install_monitoring_crds() {
    MONITORING_CRDS.get_or_init(|| {
        let cp = support::control_plane();
        let file = e2e::repo().join("tests/fixtures/monitoring-crds.yaml");
        let out = cp.kubectl().args(["apply", "--server-side", "-f"]).arg(&file).output().unwrap();
        assert!(out.status.success(), "monitoring CRDs: {}", stderr(&out));
        let out = cp
            .kubectl()
            .args([
                "wait",
                "--for=condition=Established",
                "crd/servicemonitors.monitoring.coreos.com",
                "crd/prometheusrules.monitoring.coreos.com",
                "--timeout=60s",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "monitoring CRDs not established: {}", stderr(&out));
    });
}

#[test]
fn helm_lint_passes_with_default_and_non_default_values() {
    let chart = chart();
    let out = helm(&["lint", "--strict", &chart]);
    assert!(out.status.success(), "helm lint: {}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    let out = helm(&[
        "lint",
        "--strict",
        &chart,
        "--set",
        "watchNamespace=shop,leaderElection.enabled=false,replicaCount=2,credentials.secretName=dcs-credentials",
        "--set",
        "metrics.serviceMonitor.enabled=true,prometheusRule.enabled=true,crds.install=false,logFormat=text",
        "--set",
        "allowedEndpoints={dcs.*.myhuaweicloud.com,127.0.0.1}",
    ]);
    assert!(out.status.success(), "helm lint: {}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
}

#[test]
fn values_schema_refuses_bad_values_naming_the_key() {
    let chart = chart();
    // (--set or --set-json value, what the message must name)
    let cases: &[(&str, &str, &[&str])] = &[
        ("--set", "replicas=2", &["additional properties 'replicas' not allowed"]),
        ("--set", "image.registry=example.com", &["/image", "additional properties 'registry' not allowed"]),
        ("--set", "qps=fast", &["/qps", "does not match pattern"]),
        ("--set", "qps=0", &["/qps"]),
        ("--set", "qps=-1", &["/qps", "exclusiveMinimum"]),
        ("--set", "burst=0", &["/burst", "minimum"]),
        ("--set", "maxConcurrentReconciles=0", &["/maxConcurrentReconciles", "minimum"]),
        ("--set", "replicaCount=-1", &["/replicaCount", "minimum"]),
        ("--set", "logFormat=xml", &["/logFormat", "'text', 'json'"]),
        ("--set", "image.pullPolicy=Sometimes", &["/image/pullPolicy", "'Always', 'IfNotPresent', 'Never'"]),
        ("--set", "leaderElection.enabled=maybe", &["/leaderElection/enabled", "want boolean"]),
        ("--set", "watchNamespace=Not_A_Namespace", &["/watchNamespace", "does not match pattern"]),
        ("--set", "resources.requests.memory=lots", &["/resources/requests/memory", "does not match pattern"]),
        ("--set", "resources.requests.gpu=1", &["/resources/requests", "additional properties 'gpu' not allowed"]),
        ("--set-json", "allowedEndpoints=\"dcs.example.com\"", &["/allowedEndpoints", "want array"]),
        ("--set", "crds.install=yes", &["/crds/install", "want boolean"]),
        (
            "--set",
            "metrics.serviceMonitor.interval=30s",
            &["/metrics/serviceMonitor", "additional properties 'interval' not allowed"],
        ),
    ];
    for (flag, value, wanted) in cases {
        let out = helm(&["template", "x", &chart, flag, value]);
        assert!(!out.status.success(), "helm template {flag} {value} was accepted");
        let message = stderr(&out);
        for w in *wanted {
            assert!(message.contains(w), "helm template {flag} {value}: the message should contain {w:?}:\n{message}");
        }
        assert!(message.contains("don't meet the specifications of the schema"), "{message}");
    }
}

#[test]
fn the_charts_crd_is_crds_verbatim_and_deploy_is_generated_from_the_chart() {
    // scripts/render-deploy --check: the chart's copy of the CRD is crds/ byte for byte, and deploy/ is what the
    // chart renders with its defaults.
    let cp = support::control_plane();
    let out = cp.command(e2e::repo().join("scripts/render-deploy").to_str().unwrap()).arg("--check").output().unwrap();
    assert!(out.status.success(), "{}\n(run scripts/render-deploy and commit the result)", stderr(&out));

    // The rendered CRD is crds/'s, plus the keep policy and the chart's labels.
    let rendered = helm_template("dcs-migration-operator", "dcs-migration-operator", &[], &["templates/crd.yaml"]);
    let mut crd = objects(&rendered).pop().expect("the chart renders the CRD by default");
    let source = std::fs::read_to_string(e2e::repo().join(e2e::CRD_FILE)).unwrap();
    let want: Value = serde_saphyr::from_str(&source).unwrap();
    assert_eq!(crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
    let meta = crd["metadata"].as_object_mut().unwrap();
    meta.remove("annotations");
    meta.remove("labels");
    // Helm's toYaml writes `maximum: 10240.0` as `10240`: the same JSON number to the API server.
    assert_eq!(numbers_as_f64(crd), numbers_as_f64(want), "the chart's CRD differs from {}", e2e::CRD_FILE);

    let off = helm_template("x", "x", &["crds.install=false"], &[]);
    assert!(!kinds(&off).contains(&"CustomResourceDefinition".to_owned()), "crds.install=false renders no CRD");
}

fn numbers_as_f64(v: Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.into_iter().map(numbers_as_f64).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, numbers_as_f64(v))).collect()),
        other => other,
    }
}

#[test]
fn deployment_runs_the_operator_as_the_design_says() {
    let defaults = objects(&helm_template("dcs-migration-operator", "ops", &[], &["templates/deployment.yaml"]));
    let d = &defaults[0];
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let args: Vec<&str> = c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(
        args,
        [
            "run",
            "--metrics-addr",
            "0.0.0.0:8080",
            "--probe-addr",
            "0.0.0.0:8081",
            "--qps",
            "10",
            "--burst",
            "20",
            "--max-concurrent-reconciles",
            "50",
            "--log-format",
            "json",
            "--leader-elect"
        ]
    );
    assert_eq!(c["image"], "dcs-migration-operator:0.1.0", "the tag defaults to the appVersion");
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["runAsUser"], 65532);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["automountServiceAccountToken"], true);
    assert_eq!(c["livenessProbe"]["httpGet"], json!({"path": "/healthz", "port": "probes"}));
    assert_eq!(c["readinessProbe"]["httpGet"], json!({"path": "/readyz", "port": "probes"}));
    assert_eq!(
        c["ports"],
        json!([
            {"name": "metrics", "containerPort": 8080, "protocol": "TCP"},
            {"name": "probes", "containerPort": 8081, "protocol": "TCP"},
        ])
    );
    assert_eq!(c["resources"]["requests"], json!({"cpu": "50m", "memory": "64Mi"}));
    assert_eq!(c["resources"]["limits"], json!({"cpu": "200m", "memory": "128Mi"}));
    let env: Vec<&str> = c["env"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(env, ["POD_NAMESPACE", "POD_NAME"], "no default credentials unless asked for");

    let custom = objects(&helm_template(
        "dcs-migration-operator",
        "ops",
        &[
            "leaderElection.enabled=false",
            "watchNamespace=shop",
            "credentials.secretName=dcs-credentials",
            "allowedEndpoints={dcs.*.myhuaweicloud.com,127.0.0.1}",
            "qps=2.5",
            "burst=5",
            "maxConcurrentReconciles=16",
            "logFormat=text",
        ],
        &["templates/deployment.yaml"],
    ));
    let c = &custom[0]["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(
        args,
        [
            "run",
            "--metrics-addr",
            "0.0.0.0:8080",
            "--probe-addr",
            "0.0.0.0:8081",
            "--qps",
            "2.5",
            "--burst",
            "5",
            "--max-concurrent-reconciles",
            "16",
            "--log-format",
            "text",
            "--watch-namespace",
            "shop",
            "--allowed-endpoints",
            "dcs.*.myhuaweicloud.com,127.0.0.1"
        ]
    );
    let env = c["env"].as_array().unwrap();
    let from_secret = |name: &str| {
        env.iter().find(|e| e["name"] == name).unwrap_or_else(|| panic!("no {name}"))["valueFrom"]["secretKeyRef"]
            .clone()
    };
    assert_eq!(from_secret("HUAWEICLOUD_SDK_AK"), json!({"name": "dcs-credentials", "key": "accessKey"}));
    assert_eq!(from_secret("HUAWEICLOUD_SDK_SK"), json!({"name": "dcs-credentials", "key": "secretKey"}));
    assert_eq!(
        from_secret("HUAWEICLOUD_SDK_SECURITY_TOKEN"),
        json!({"name": "dcs-credentials", "key": "securityToken", "optional": true})
    );
    assert_eq!(
        from_secret("HUAWEICLOUD_SDK_PROJECT_ID"),
        json!({"name": "dcs-credentials", "key": "projectId", "optional": true})
    );

    // The PodDisruptionBudget never blocks the drain of a single replica, and keeps a standby of several.
    let one = objects(&helm_template("x", "ops", &[], &["templates/poddisruptionbudget.yaml"]));
    assert_eq!(one[0]["spec"]["maxUnavailable"], 1);
    let two = objects(&helm_template("x", "ops", &["replicaCount=2"], &["templates/poddisruptionbudget.yaml"]));
    assert_eq!(two[0]["spec"]["minAvailable"], 1);
}

#[tokio::test]
async fn the_rendered_chart_passes_server_side_dry_run_in_every_mode() {
    install_monitoring_crds();
    let release_ns = support::fresh_namespace("chart-dry-run").await;
    let watched = support::fresh_namespace("chart-dry-run-watched").await;
    let watch = format!("watchNamespace={watched}");
    let modes: &[(&str, &[&str], &[&str])] = &[
        (
            "defaults",
            &[],
            &[
                "CustomResourceDefinition",
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Role",
                "RoleBinding",
                "Service",
                "Deployment",
                "PodDisruptionBudget",
            ],
        ),
        (
            "watchNamespace, no leader election",
            &[&watch, "leaderElection.enabled=false", "crds.install=false"],
            &["ServiceAccount", "Role", "RoleBinding", "Service", "Deployment", "PodDisruptionBudget"],
        ),
        (
            "monitoring, two replicas, credentials",
            &[
                "metrics.serviceMonitor.enabled=true",
                "prometheusRule.enabled=true",
                "replicaCount=2",
                "credentials.secretName=dcs-credentials",
                "podDisruptionBudget.enabled=false",
                "crds.install=false",
            ],
            &[
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Role",
                "RoleBinding",
                "Service",
                "Deployment",
                "ServiceMonitor",
                "PrometheusRule",
            ],
        ),
    ];
    for (mode, sets, want_kinds) in modes {
        let release = format!("dry-{release_ns}");
        let manifests = helm_template(&release, &release_ns, sets, &[]);
        let mut got = kinds(&manifests);
        got.sort();
        let mut want: Vec<String> = want_kinds.iter().map(|k| k.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "{mode}: the objects rendered");
        let out = server_dry_run(&manifests);
        assert!(out.status.success(), "{mode}: kubectl apply --dry-run=server: {}", stderr(&out));
    }
}

#[tokio::test]
async fn kustomize_of_deploy_passes_server_side_dry_run() {
    let cp = support::control_plane();
    let out = cp.kubectl().args(["kustomize"]).arg(e2e::repo().join("deploy")).output().unwrap();
    assert!(out.status.success(), "kubectl kustomize deploy/: {}", stderr(&out));
    let manifests = String::from_utf8(out.stdout).unwrap();
    let objs = objects(&manifests);
    for o in &objs {
        let namespaced = !matches!(
            o["kind"].as_str().unwrap(),
            "Namespace" | "CustomResourceDefinition" | "ClusterRole" | "ClusterRoleBinding"
        );
        if namespaced {
            assert_eq!(o["metadata"]["namespace"], "dcs-migration-operator", "{} {}", o["kind"], o["metadata"]["name"]);
        }
    }
    let mut got = kinds(&manifests);
    got.sort();
    assert_eq!(
        got,
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "Deployment",
            "Namespace",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ]
    );
    // A server-side dry run does not create the Namespace, so the namespaced objects need it to exist for real.
    let ns =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dcs-migration-operator"}}).to_string();
    e2e::kubectl_apply(&ns);
    let out = server_dry_run(&manifests);
    assert!(out.status.success(), "kubectl apply --dry-run=server of deploy/: {}", stderr(&out));
}

#[tokio::test]
async fn helm_install_creates_the_objects_and_uninstall_keeps_the_crd() {
    e2e::install_crd(); // the CRD exists already, as on a cluster upgraded from deploy/: the chart takes it over
    let ns = support::fresh_namespace("chart-install").await;
    let release = format!("inst-{ns}");
    let chart = chart();
    let out = helm(&[
        "install",
        &release,
        &chart,
        "--namespace",
        &ns,
        "--take-ownership",
        "--set",
        "credentials.secretName=dcs-credentials",
    ]);
    assert!(out.status.success(), "helm install: {}", stderr(&out));
    let notes = String::from_utf8_lossy(&out.stdout);
    assert!(
        notes.contains("deletionPolicy") && notes.contains("Orphan"),
        "NOTES name the deletion escape hatch:\n{notes}"
    );

    let name = e2e::chart_fullname(&release);
    let cp = support::control_plane();
    for (kind, namespaced) in [
        ("deployment", true),
        ("serviceaccount", true),
        ("service", true),
        ("poddisruptionbudget", true),
        ("role", true),
        ("rolebinding", true),
        ("clusterrole", false),
        ("clusterrolebinding", false),
    ] {
        let object = match kind {
            "service" => format!("{name}-metrics"),
            "role" | "rolebinding" => format!("{name}-leader-election"),
            _ => name.clone(),
        };
        let mut cmd = cp.kubectl();
        cmd.args(["get", kind, &object]);
        if namespaced {
            cmd.args(["-n", &ns]);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "helm install created no {kind} {object}: {}", stderr(&out));
    }
    let crds: Api<CustomResourceDefinition> = Api::all(support::admin_client().await);
    let crd = crds.get(CRD_NAME).await.unwrap();
    let annotations = crd.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(annotations.get("helm.sh/resource-policy").map(String::as_str), Some("keep"));
    assert_eq!(annotations.get("meta.helm.sh/release-name"), Some(&release), "the release owns the CRD");

    let out = helm(&["uninstall", &release, "--namespace", &ns]);
    assert!(out.status.success(), "helm uninstall: {}", stderr(&out));
    assert!(
        crds.get_opt(CRD_NAME).await.unwrap().is_some(),
        "helm uninstall keeps the CRD (helm.sh/resource-policy: keep)"
    );
    let out = cp.kubectl().args(["get", "deployment", &name, "-n", &ns]).output().unwrap();
    assert!(!out.status.success(), "helm uninstall removed the Deployment");
}

/// Asks the API server (SelfSubjectAccessReview, the real authorizer) whether the client may do `verb`.
async fn may(client: &kube::Client, group: &str, resource: &str, verb: &str, namespace: Option<&str>) -> bool {
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r, Some(s.to_owned())),
        None => (resource, None),
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(group.to_owned()),
                resource: Some(resource.to_owned()),
                subresource,
                verb: Some(verb.to_owned()),
                namespace: namespace.map(str::to_owned),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer =
        Api::<SelfSubjectAccessReview>::all(client.clone()).create(&PostParams::default(), &review).await.unwrap();
    answer.status.unwrap().allowed
}

fn forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>, what: &str) {
    match result {
        Err(kube::Error::Api(e)) if e.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

/// The operator's calls: (group, resource, verbs).
const OPERATOR_CALLS: &[(&str, &str, &[&str])] = &[
    ("dcs.migration.io", "redismigrations", &["get", "list", "watch", "patch"]),
    ("dcs.migration.io", "redismigrations/status", &["get", "patch"]),
    ("events.k8s.io", "events", &["create", "patch"]),
    ("", "secrets", &["get", "list", "watch", "update", "patch"]),
];

#[tokio::test]
async fn the_charts_service_account_may_do_what_the_operator_does_and_nothing_more() {
    e2e::install_crd();
    let ns = support::fresh_namespace("chart-rbac").await;
    let other = support::fresh_namespace("chart-rbac-other").await;
    let sa = e2e::apply_chart_rbac(&ns, ChartIdentity::ClusterWide);
    let client = support::service_account_client(&ns, &sa).await;

    // What the operator does, in any namespace (the default ClusterRole).
    for (group, resource, verbs) in OPERATOR_CALLS {
        for verb in *verbs {
            assert!(
                may(&client, group, resource, verb, Some(&other)).await,
                "may {verb} {group}/{resource} in {other}"
            );
        }
    }
    for verb in ["get", "create", "update"] {
        assert!(may(&client, "coordination.k8s.io", "leases", verb, Some(&ns)).await, "may {verb} its Lease");
    }
    // Real requests: list RedisMigrations and Secrets cluster-wide, as the operator's watches do.
    let rmigs: Api<RedisMigration> = Api::all(client.clone());
    rmigs.list(&ListParams::default()).await.expect("list RedisMigrations in every namespace");
    Api::<Secret>::all(client.clone()).list(&ListParams::default()).await.expect("list Secrets in every namespace");

    // And nothing more.
    let denied: &[(&str, &str, &str, Option<&str>)] = &[
        ("dcs.migration.io", "redismigrations", "create", Some(&other)),
        ("dcs.migration.io", "redismigrations", "delete", Some(&other)),
        ("dcs.migration.io", "redismigrations", "update", Some(&other)),
        ("", "secrets", "create", Some(&other)),
        ("", "secrets", "delete", Some(&other)),
        ("", "pods", "create", Some(&ns)),
        ("", "pods", "list", Some(&ns)),
        ("", "configmaps", "get", Some(&ns)),
        ("", "events", "create", Some(&ns)),
        ("events.k8s.io", "events", "delete", Some(&ns)),
        ("coordination.k8s.io", "leases", "delete", Some(&ns)),
        ("coordination.k8s.io", "leases", "create", Some(&other)),
        ("apiextensions.k8s.io", "customresourcedefinitions", "delete", None),
        ("apiextensions.k8s.io", "customresourcedefinitions", "create", None),
        ("rbac.authorization.k8s.io", "clusterrolebindings", "create", None),
        ("rbac.authorization.k8s.io", "roles", "create", Some(&ns)),
        ("", "serviceaccounts", "create", Some(&ns)),
    ];
    for (group, resource, verb, namespace) in denied {
        assert!(
            !may(&client, group, resource, verb, *namespace).await,
            "must not {verb} {group}/{resource} in {namespace:?}"
        );
    }
    // Real requests, refused by the API server (dry runs: nothing would change even if they were allowed).
    let dry = DeleteParams { dry_run: true, ..Default::default() };
    forbidden(Api::<CustomResourceDefinition>::all(client.clone()).delete(CRD_NAME, &dry).await, "deleting the CRD");
    let secrets_other: Api<Secret> = Api::namespaced(client.clone(), &other);
    let admin_secrets: Api<Secret> = Api::namespaced(support::admin_client().await, &other);
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "unrelated"}, "stringData": {"k": "v"}})).unwrap();
    admin_secrets.create(&PostParams::default(), &secret).await.unwrap();
    forbidden(secrets_other.delete("unrelated", &dry).await, "deleting a Secret");
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    )
    .unwrap();
    forbidden(
        Api::<Pod>::namespaced(client.clone(), &ns)
            .create(&PostParams { dry_run: true, ..Default::default() }, &pod)
            .await,
        "creating a Pod",
    );
}

#[tokio::test]
async fn in_watch_namespace_mode_the_service_account_cannot_touch_other_namespaces() {
    e2e::install_crd();
    let ns = support::fresh_namespace("chart-rbac-watch").await;
    let other = support::fresh_namespace("chart-rbac-elsewhere").await;
    let sa = e2e::apply_chart_rbac(&ns, ChartIdentity::WatchNamespace);
    let client = support::service_account_client(&ns, &sa).await;
    let admin = support::admin_client().await;
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "creds"}, "stringData": {"secretKey": "s"}})).unwrap();
    for namespace in [&ns, &other] {
        Api::<Secret>::namespaced(admin.clone(), namespace).create(&PostParams::default(), &secret).await.unwrap();
    }

    for (group, resource, verbs) in OPERATOR_CALLS {
        for verb in *verbs {
            assert!(
                may(&client, group, resource, verb, Some(&ns)).await,
                "may {verb} {group}/{resource} in the watched namespace"
            );
            assert!(
                !may(&client, group, resource, verb, Some(&other)).await,
                "must not {verb} {group}/{resource} in {other}"
            );
            assert!(
                !may(&client, group, resource, verb, None).await,
                "must not {verb} {group}/{resource} cluster-wide"
            );
        }
    }
    Api::<Secret>::namespaced(client.clone(), &ns).get("creds").await.expect("reads a Secret in the watched namespace");
    forbidden(
        Api::<Secret>::namespaced(client.clone(), &other).get("creds").await,
        "reading a Secret in another namespace",
    );
    forbidden(Api::<Secret>::all(client.clone()).list(&ListParams::default()).await, "listing Secrets cluster-wide");
    let rmigs: Api<RedisMigration> = Api::all(client.clone());
    forbidden(rmigs.list(&ListParams::default()).await, "listing RedisMigrations cluster-wide");
}

const PHASE: Duration = Duration::from_millis(400);

/// The examples scenario (backup imports and online migrations to Ready, then a deletion that stops a task) with
/// the operator authenticated as the chart's ServiceAccount: the chart's RBAC is sufficient for real.
async fn examples_reach_ready_as(identity: ChartIdentity, hint: &str) {
    let env = Env::new(hint, PHASE).await;
    let op = Operator::start_as_chart_identity(&env, identity, &[], &[]);
    for file in ["backup-import-obs.yaml", "backup-import-record.yaml", "online-full.yaml", "online-incremental.yaml"] {
        env.apply(&env.example(file));
    }
    for (name, phase) in [
        ("import-from-obs", "Succeeded"),
        ("import-from-backup-record", "Succeeded"),
        ("online-full", "Succeeded"),
        ("online-incremental", "IncrementalMigrating"),
    ] {
        let out = env.kubectl(&["wait", "--for=condition=Ready", &format!("rmig/{name}"), "--timeout=45s"]);
        assert!(
            out.status.success(),
            "kubectl wait {name}: {}\noperator log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            op.logs()
        );
        let rm = env.wait_phase(name, phase, Duration::from_secs(30)).await;
        assert_eq!(rm["status"]["observedGeneration"], rm["metadata"]["generation"], "{name}: status written");
    }
    assert_eq!(env.sim_state().await["tasks"].as_array().unwrap().len(), 4, "one task per resource");

    // Events were posted (events.k8s.io create/patch).
    let events = env.kubectl(&["get", "events.events.k8s.io", "-o", "json"]);
    let events: Value = serde_json::from_slice(&events.stdout).unwrap();
    assert!(
        events["items"].as_array().unwrap().iter().any(|e| e["reportingController"] == "dcs-migration-operator"),
        "the operator posted Events as the chart's ServiceAccount"
    );

    // Deleting stops the streaming task and releases the finalizer.
    let task_id = env.get("online-incremental")["status"]["taskId"].as_str().unwrap().to_owned();
    let out = env.kubectl(&["delete", "rmig/online-incremental", "--timeout=45s"]);
    assert!(
        out.status.success(),
        "deleting online-incremental: {}\noperator log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        op.logs()
    );
    let task = env.sim_state().await["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == task_id.as_str() || t["task_id"] == task_id.as_str())
        .cloned();
    if let Some(task) = task {
        assert_ne!(task["status"], "INCRMIGEATING", "the deletion stopped the task: {task}");
    }

    let logs = op.logs();
    assert!(!logs.to_lowercase().contains("forbidden"), "no request of the operator was forbidden:\n{logs}");
    env.assert_no_secret_leaked(&[logs]);
}

#[tokio::test]
async fn examples_reach_ready_with_the_operator_as_the_charts_service_account_in_watch_namespace_mode() {
    examples_reach_ready_as(ChartIdentity::WatchNamespace, "chart-sa-watch-ns").await;
}

#[tokio::test]
async fn examples_reach_ready_with_the_operator_as_the_charts_service_account_with_the_cluster_role() {
    examples_reach_ready_as(ChartIdentity::ClusterWide, "chart-sa-cluster").await;
}
