//! The Helm chart (charts/dcs-migration-operator) and the plain manifests generated from it (deploy/), on the real
//! test control plane: lint, schema, server-side dry runs, a real `helm install`, the RBAC as the chart's own
//! ServiceAccount (allowed and forbidden, with real requests), and the operator's end-to-end scenario authenticated
//! as that ServiceAccount.

mod e2e;
mod support;

use dcs_migration_operator::crd::RedisMigration;
use e2e::{ChartIdentity, Env, Operator, helm_template};
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
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
                "crd/podmonitors.monitoring.coreos.com",
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
    for keyless in [
        "keyless.idpId=cluster-a,keyless.iamEndpoint=https://iam.eu-west-101.myhuaweicloud.com,metadataEndpoint=none",
        format!("keyless.providerUrn={PROVIDER_URN},keyless.agencyUrn={AGENCY_URN},tokenAudience=cluster-a").as_str(),
    ] {
        let out = helm(&["lint", "--strict", &chart, "--set", keyless]);
        assert!(out.status.success(), "helm lint: {}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    }
}

#[test]
fn values_schema_refuses_bad_values_naming_the_key() {
    // (--set or --set-json value, what the message must name)
    let cases: &[(&str, &str, &[&str])] = &[
        ("--set", "replicas=2", &["additional properties 'replicas' not allowed"]),
        ("--set", "image.registry=example.com", &["/image", "additional properties 'registry' not allowed"]),
        ("--set", "qps=fast", &["/qps", "does not match pattern"]),
        ("--set", "qps=0", &["/qps"]),
        ("--set", "qps=-1", &["/qps", "exclusiveMinimum"]),
        ("--set", "burst=0", &["/burst", "minimum"]),
        ("--set", "maxConcurrentReconciles=0", &["/maxConcurrentReconciles", "minimum"]),
        ("--set", "workerThreads=0", &["/workerThreads", "minimum"]),
        ("--set", "progressUpdateInterval=soon", &["/progressUpdateInterval", "does not match pattern"]),
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
            "metrics.serviceMonitor.port=metrics",
            &["/metrics/serviceMonitor", "additional properties 'port' not allowed"],
        ),
        (
            "--set",
            "metrics.serviceMonitor.interval=soon",
            &["/metrics/serviceMonitor/interval", "does not match pattern"],
        ),
        ("--set", "nodeSelctor.disk=ssd", &["additional properties 'nodeSelctor' not allowed"]),
        ("--set", "hostNetwork=maybe", &["/hostNetwork", "want boolean"]),
        ("--set", "caBundle.cert=x", &["/caBundle", "additional properties 'cert' not allowed"]),
        ("--set-json", "extraArgs=\"--tick=5s\"", &["/extraArgs", "want array"]),
        ("--set-json", "podLabels={\"team\":1}", &["/podLabels/team", "want string"]),
        ("--set", "prometheusRule.runbookBaseUrl=docs", &["/prometheusRule/runbookBaseUrl", "does not match pattern"]),
        ("--set", "leaderElection.leaseName=Not_A_Name", &["/leaderElection/leaseName", "does not match pattern"]),
        ("--set", "tokenAudience=", &["/tokenAudience", "minLength"]),
        ("--set", "metadataEndpoint=169.254.169.254", &["/metadataEndpoint", "does not match pattern"]),
    ];
    assert_schema_refuses(cases);
}

/// `helm template` with each (`--set` or `--set-json`, value) fails values.schema.json, with a message containing
/// every string listed.
fn assert_schema_refuses(cases: &[(&str, &str, &[&str])]) {
    let chart = chart();
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

const PROVIDER_URN: &str = "iam::0a1b2c3d4e5f:identity-provider:cluster-a";
const AGENCY_URN: &str = "iam::0a1b2c3d4e5f:agency:dcs-migration-operator";

#[test]
fn the_values_schema_refuses_a_keyless_identity_naming_both_paths_or_half_an_agency() {
    let both = format!("keyless.idpId=cluster-a,keyless.providerUrn={PROVIDER_URN},keyless.agencyUrn={AGENCY_URN}");
    let no_agency = format!("keyless.providerUrn={PROVIDER_URN}");
    let no_provider = format!("keyless.agencyUrn={AGENCY_URN}");
    // (--set value, what the message must name)
    let refused: &[(&str, &[&str])] = &[
        (&both, &["/keyless/providerUrn", "/keyless/agencyUrn", "value must be ''"]),
        (&no_agency, &["/keyless/agencyUrn", "minLength"]),
        (&no_provider, &["/keyless/providerUrn", "minLength"]),
        ("keyless.providerUrn=arn:aws:iam::1:oidc-provider/x", &["/keyless/providerUrn", "does not match"]),
        ("keyless.expirationSeconds=60", &["/keyless/expirationSeconds", "minimum"]),
        ("keyless.stsEndpoint=sts.example.com", &["/keyless/stsEndpoint", "does not match pattern"]),
        ("keyless.audience=", &["/keyless/audience", "minLength"]),
        ("keyless.roleUrn=x", &["/keyless", "additional properties 'roleUrn' not allowed"]),
    ];
    let cases: Vec<(&str, &str, &[&str])> = refused.iter().map(|(value, wanted)| ("--set", *value, *wanted)).collect();
    assert_schema_refuses(&cases);
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
            "--worker-threads",
            "1",
            "--progress-update-interval",
            "30s",
            "--streaming-progress-interval",
            "2m",
            "--log-format",
            "json",
            "--leader-elect",
            "--lease-name",
            "dcs-migration-operator",
            "--allowed-endpoints",
            "dcs.*.myhuaweicloud.com,dcs.*.otc.t-systems.com,iam.*.myhuaweicloud.com,sts.*.myhuaweicloud.com,\
             iam.*.otc.t-systems.com,sts.*.otc.t-systems.com",
            "--token-audience",
            "dcs-migration-operator",
            "--metadata-endpoint",
            "http://169.254.169.254"
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
            "workerThreads=2",
            "progressUpdateInterval=1m",
            "streamingProgressInterval=5m",
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
            "--worker-threads",
            "2",
            "--progress-update-interval",
            "1m",
            "--streaming-progress-interval",
            "5m",
            "--log-format",
            "text",
            "--watch-namespace",
            "shop",
            "--allowed-endpoints",
            "dcs.*.myhuaweicloud.com,127.0.0.1",
            "--token-audience",
            "dcs-migration-operator",
            "--metadata-endpoint",
            "http://169.254.169.254"
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

/// The Deployment's Pod spec, rendered with `sets`.
fn rendered_pod(sets: &[&str]) -> Value {
    let d = objects(&helm_template("x", "ops", sets, &["templates/deployment.yaml"]));
    d[0]["spec"]["template"]["spec"].clone()
}

/// The operator container's `env` entries with a plain value (name, value), in order.
fn plain_env(pod: &Value) -> Vec<(String, String)> {
    let env = pod["containers"][0]["env"].as_array().unwrap();
    env.iter().filter_map(|e| Some((e["name"].as_str()?.to_owned(), e["value"].as_str()?.to_owned()))).collect()
}

/// The value after `flag` in the operator's arguments.
fn flag_value(pod: &Value, flag: &str) -> String {
    let args: Vec<&str> =
        pod["containers"][0]["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let at = args.iter().position(|a| *a == flag).unwrap_or_else(|| panic!("no {flag} in {args:?}"));
    args[at + 1].to_owned()
}

const KEYLESS_TOKEN_DIR: &str = "/var/run/secrets/dcs-migration-operator";

/// The keyless identity's token: projected with `audience` and `seconds` of lifetime, mounted read-only where the
/// SDK's variables say.
fn assert_projects_the_token(pod: &Value, audience: &str, seconds: u64) {
    let volumes = pod["volumes"].as_array().unwrap();
    let volume = volumes.iter().find(|v| v["name"] == "keyless-token").expect("a keyless-token volume");
    assert_eq!(
        volume["projected"]["sources"],
        json!([{"serviceAccountToken": {"audience": audience, "expirationSeconds": seconds, "path": "token"}}])
    );
    let mounts = pod["containers"][0]["volumeMounts"].as_array().unwrap();
    let mount = mounts.iter().find(|m| m["name"] == "keyless-token").expect("the token is mounted");
    assert_eq!(mount, &json!({"name": "keyless-token", "mountPath": KEYLESS_TOKEN_DIR, "readOnly": true}));
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn keyless_idp_id_projects_an_audience_bound_token_and_sets_the_sdks_iam_federation_variables() {
    let token_file = format!("{KEYLESS_TOKEN_DIR}/token");
    let pod = rendered_pod(&[
        "keyless.idpId=cluster-a",
        "keyless.audience=iam-client-a",
        "keyless.expirationSeconds=7200",
        "keyless.iamEndpoint=https://iam.eu-west-101.myhuaweicloud.com",
        "keyless.stsEndpoint=https://sts.eu-west-101.myhuaweicloud.com",
    ]);
    assert_projects_the_token(&pod, "iam-client-a", 7200);
    let federation = [("HUAWEICLOUD_SDK_IDP_ID", "cluster-a"), ("HUAWEICLOUD_SDK_ID_TOKEN_FILE", token_file.as_str())];
    let endpoint = ("HUAWEICLOUD_SDK_IAM_ENDPOINT", "https://iam.eu-west-101.myhuaweicloud.com");
    assert_eq!(
        plain_env(&pod),
        pairs(&[&federation[..], &[endpoint]].concat()),
        "IAM federation only: the STS endpoint belongs to the other path"
    );

    // Without iamEndpoint the SDK's default applies; the audience and lifetime default too.
    let pod = rendered_pod(&["keyless.idpId=cluster-a"]);
    assert_projects_the_token(&pod, "dcs-migration-operator", 3600);
    assert_eq!(plain_env(&pod), pairs(&federation));
}

#[test]
fn keyless_provider_and_agency_project_an_audience_bound_token_and_set_the_sdks_oidc_sts_variables() {
    let token_file = format!("{KEYLESS_TOKEN_DIR}/token");
    let provider = format!("keyless.providerUrn={PROVIDER_URN}");
    let agency = format!("keyless.agencyUrn={AGENCY_URN}");
    let pod = rendered_pod(&[
        &provider,
        &agency,
        "keyless.stsEndpoint=https://sts.eu-west-101.myhuaweicloud.com",
        "keyless.iamEndpoint=https://iam.eu-west-101.myhuaweicloud.com",
        "keyless.audience=sts-client-a",
    ]);
    assert_projects_the_token(&pod, "sts-client-a", 3600);
    let oidc = [
        ("HUAWEICLOUD_OIDC_PROVIDER_URN", PROVIDER_URN),
        ("HUAWEICLOUD_OIDC_AGENCY_URN", AGENCY_URN),
        ("HUAWEICLOUD_OIDC_TOKEN_FILE", token_file.as_str()),
    ];
    let endpoint = ("HUAWEICLOUD_SDK_STS_ENDPOINT", "https://sts.eu-west-101.myhuaweicloud.com");
    assert_eq!(
        plain_env(&pod),
        pairs(&[&oidc[..], &[endpoint]].concat()),
        "OIDC → STS only: the IAM endpoint belongs to the other path"
    );

    // Without stsEndpoint the SDK's default applies.
    let pod = rendered_pod(&[&provider, &agency]);
    assert_eq!(plain_env(&pod), pairs(&oidc));
}

#[test]
fn without_a_keyless_identity_nothing_is_projected_and_no_sdk_variable_is_set() {
    let pod = rendered_pod(&["keyless.iamEndpoint=https://iam.eu-west-101.myhuaweicloud.com"]);
    let volumes: Vec<&str> = pod["volumes"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(volumes, ["tmp"]);
    let mounts = pod["containers"][0]["volumeMounts"].as_array().unwrap();
    assert!(mounts.iter().all(|m| m["name"] != "keyless-token"), "{mounts:?}");
    assert!(plain_env(&pod).is_empty(), "an endpoint alone configures no identity: {:?}", plain_env(&pod));
}

#[test]
fn token_audience_and_metadata_endpoint_become_the_operators_flags() {
    let defaults = rendered_pod(&[]);
    assert_eq!(flag_value(&defaults, "--token-audience"), "dcs-migration-operator");
    assert_eq!(flag_value(&defaults, "--metadata-endpoint"), "http://169.254.169.254");
    let set = rendered_pod(&["tokenAudience=https://cluster-a.example", "metadataEndpoint=none"]);
    assert_eq!(flag_value(&set, "--token-audience"), "https://cluster-a.example");
    assert_eq!(flag_value(&set, "--metadata-endpoint"), "none", "none: the chain skips ECS metadata");
    let other = rendered_pod(&["metadataEndpoint=http://169.254.170.2"]);
    assert_eq!(flag_value(&other, "--metadata-endpoint"), "http://169.254.170.2");
}

#[tokio::test]
async fn the_rendered_chart_passes_server_side_dry_run_in_every_mode() {
    install_monitoring_crds();
    let release_ns = support::fresh_namespace("chart-dry-run").await;
    let watched = support::fresh_namespace("chart-dry-run-watched").await;
    let watch = format!("watchNamespace={watched}");
    let keyless = format!("keyless.providerUrn={PROVIDER_URN},keyless.agencyUrn={AGENCY_URN}");
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
                "ValidatingAdmissionPolicy",
                "ValidatingAdmissionPolicyBinding",
            ],
        ),
        (
            "watchNamespace, no leader election",
            &[&watch, "leaderElection.enabled=false", "crds.install=false"],
            &[
                "ServiceAccount",
                "Role",
                "RoleBinding",
                "ClusterRole",
                "ClusterRoleBinding",
                "Service",
                "Deployment",
                "PodDisruptionBudget",
                "ValidatingAdmissionPolicy",
                "ValidatingAdmissionPolicyBinding",
            ],
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
                "ValidatingAdmissionPolicy",
                "ValidatingAdmissionPolicyBinding",
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

    // The operator's own keyless identity (OIDC → STS) adds a projected token and variables to the Deployment only:
    // the same objects, and the API server admits the projection.
    let release = format!("dry-{release_ns}");
    let plain = helm_template(&release, &release_ns, &[], &[]);
    let sets = [keyless.as_str(), "keyless.expirationSeconds=600", "metadataEndpoint=none"];
    let with_keyless = helm_template(&release, &release_ns, &sets, &[]);
    assert_eq!(kinds(&with_keyless), kinds(&plain));
    let out = server_dry_run(&with_keyless);
    assert!(out.status.success(), "keyless identity: kubectl apply --dry-run=server: {}", stderr(&out));
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
            "Namespace"
                | "CustomResourceDefinition"
                | "ClusterRole"
                | "ClusterRoleBinding"
                | "ValidatingAdmissionPolicy"
                | "ValidatingAdmissionPolicyBinding"
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
            "ServiceAccount",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding"
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
        ("validatingadmissionpolicy", false),
        ("validatingadmissionpolicybinding", false),
    ] {
        let object = match kind {
            "service" => format!("{name}-metrics"),
            "role" | "rolebinding" => format!("{name}-leader-election"),
            "validatingadmissionpolicy" | "validatingadmissionpolicybinding" => format!("{name}-secret-access"),
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
    may_named(client, group, resource, verb, namespace, None).await
}

/// `may`, for the object called `name` (what RBAC's resourceNames are checked against).
async fn may_named(
    client: &kube::Client,
    group: &str,
    resource: &str,
    verb: &str,
    namespace: Option<&str>,
    name: Option<&str>,
) -> bool {
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
                name: name.map(str::to_owned),
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
    ("", "secrets", &["get", "list", "watch", "patch"]),
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
    for verb in ["get", "update"] {
        assert!(
            // The release's Lease is named like its ServiceAccount (the release's full name).
            may_named(&client, "coordination.k8s.io", "leases", verb, Some(&ns), Some(&sa)).await,
            "may {verb} its Lease"
        );
        assert!(
            !may_named(&client, "coordination.k8s.io", "leases", verb, Some(&ns), Some("another-lease")).await,
            "must not {verb} another Lease"
        );
    }
    assert!(may(&client, "coordination.k8s.io", "leases", "create", Some(&ns)).await, "may create its Lease");
    // Namespace labels (default-credentials opt-in), in every namespace.
    for verb in ["list", "watch"] {
        assert!(may(&client, "", "namespaces", verb, None).await, "may {verb} namespaces");
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
        ("", "secrets", "update", Some(&other)),
        ("", "secrets", "delete", Some(&other)),
        ("", "namespaces", "update", None),
        ("", "namespaces", "patch", None),
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
    // The watched namespace's labels, by name only (a watch with fieldSelector metadata.name, as the operator's).
    for verb in ["list", "watch"] {
        assert!(may_named(&client, "", "namespaces", verb, None, Some(&ns)).await, "may {verb} namespace {ns}");
        assert!(!may_named(&client, "", "namespaces", verb, None, Some(&other)).await, "must not {verb} {other}");
        assert!(!may(&client, "", "namespaces", verb, None).await, "must not {verb} every namespace");
    }
    let by_name = ListParams::default().fields(&format!("metadata.name={ns}"));
    let listed = Api::<Namespace>::all(client.clone()).list_metadata(&by_name).await.expect("lists its namespace");
    assert_eq!(listed.items.len(), 1);
    forbidden(Api::<Namespace>::all(client.clone()).list_metadata(&ListParams::default()).await, "listing namespaces");
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

/// Renders the chart with a values file (YAML text); panics with helm's message on failure.
fn helm_template_values(release: &str, values: &str, show_only: &[&str]) -> String {
    let file = std::env::temp_dir().join(format!("chart-values-{}-{}.yaml", std::process::id(), rand::random::<u32>()));
    std::fs::write(&file, values).unwrap();
    let mut args = vec!["template".to_string(), release.to_string(), chart(), "--namespace".into(), "ops".into()];
    args.extend(["--values".to_string(), file.display().to_string()]);
    for t in show_only {
        args.extend(["--show-only".to_string(), t.to_string()]);
    }
    let out = helm(&args.iter().map(String::as_str).collect::<Vec<_>>());
    std::fs::remove_file(&file).unwrap();
    assert!(out.status.success(), "helm template: {}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

const ADOPTER_VALUES: &str = r#"
imagePullSecrets: [{name: registry-credentials}]
nodeSelector: {kubernetes.io/os: linux}
tolerations: [{key: dedicated, operator: Equal, value: operators, effect: NoSchedule}]
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms: [{matchExpressions: [{key: pool, operator: In, values: [ops]}]}]
topologySpreadConstraints:
  - {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway}
priorityClassName: system-cluster-critical
podAnnotations: {example.com/owner: platform}
podLabels: {team: platform}
extraArgs: ["--tick=5s"]
extraEnv: [{name: RUST_LOG, value: debug}]
extraVolumes: [{name: scratch, emptyDir: {}}]
extraVolumeMounts: [{name: scratch, mountPath: /scratch}]
caBundle:
  pem: |
    -----BEGIN CERTIFICATE-----
    MIIB
    -----END CERTIFICATE-----
labelSelector: dcs.migration.io/shard=a
hostNetwork: true
metrics:
  serviceMonitor: {enabled: true, labels: {release: kube-prometheus-stack}, interval: 15s, scrapeTimeout: 5s}
  podMonitor: {enabled: true, labels: {release: kube-prometheus-stack}, interval: 20s}
prometheusRule: {enabled: true, labels: {release: kube-prometheus-stack}}
grafanaDashboard: {enabled: true}
"#;

#[test]
fn adopters_values_reach_the_pod_and_the_monitoring_objects() {
    let all = objects(&helm_template_values("shard-a", ADOPTER_VALUES, &[]));
    let find = |kind: &str, name: &str| {
        all.iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
            .clone()
    };
    let d = find("Deployment", "shard-a-dcs-migration-operator");
    let template = &d["spec"]["template"];
    let pod = &template["spec"];
    assert_eq!(pod["imagePullSecrets"], json!([{"name": "registry-credentials"}]));
    assert_eq!(pod["nodeSelector"], json!({"kubernetes.io/os": "linux"}));
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");
    assert_eq!(
        pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"]
            [0]["key"],
        "pool"
    );
    assert_eq!(pod["topologySpreadConstraints"][0]["topologyKey"], "topology.kubernetes.io/zone");
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["dnsPolicy"], "ClusterFirstWithHostNet");
    assert_eq!(
        d["spec"]["strategy"]["rollingUpdate"],
        json!({"maxSurge": 0, "maxUnavailable": 1}),
        "host ports: no surge"
    );
    assert_eq!(template["metadata"]["annotations"]["example.com/owner"], "platform");
    assert!(template["metadata"]["annotations"]["checksum/ca-bundle"].is_string(), "a new bundle rolls the Pod");
    assert_eq!(template["metadata"]["labels"]["team"], "platform");
    assert_eq!(template["metadata"]["labels"]["app.kubernetes.io/instance"], "shard-a", "selector labels stay");
    let c = &pod["containers"][0];
    let args: Vec<&str> = c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let after = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap_or_else(|| panic!("no {flag}")) + 1];
    assert_eq!(after("--lease-name"), "shard-a-dcs-migration-operator", "one Lease per release");
    assert_eq!(after("--label-selector"), "dcs.migration.io/shard=a");
    assert_eq!(args.last(), Some(&"--tick=5s"), "extra args come last");
    let env = c["env"].as_array().unwrap();
    let var = |name: &str| env.iter().find(|e| e["name"] == name).unwrap_or_else(|| panic!("no {name}")).clone();
    assert_eq!(var("RUST_LOG")["value"], "debug");
    assert_eq!(var("SSL_CERT_DIR")["value"], "/etc/ssl/certs:/etc/dcs-migration-operator/ca");
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert!(mounts.iter().any(|m| m["name"] == "scratch" && m["mountPath"] == "/scratch"));
    assert!(mounts.iter().any(|m| m["name"] == "ca-bundle"
        && m["mountPath"] == "/etc/dcs-migration-operator/ca"
        && m["readOnly"] == true));
    let volumes = pod["volumes"].as_array().unwrap();
    let ca = volumes.iter().find(|v| v["name"] == "ca-bundle").unwrap();
    assert_eq!(
        ca["configMap"],
        json!({"name": "shard-a-dcs-migration-operator-ca-bundle", "items": [{"key": "ca.crt", "path": "ca.crt"}]})
    );
    assert!(volumes.iter().any(|v| v["name"] == "scratch"));
    let bundle = find("ConfigMap", "shard-a-dcs-migration-operator-ca-bundle");
    assert!(bundle["data"]["ca.crt"].as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));

    let sm = find("ServiceMonitor", "shard-a-dcs-migration-operator");
    assert_eq!(sm["metadata"]["labels"]["release"], "kube-prometheus-stack");
    assert_eq!(sm["spec"]["endpoints"][0]["interval"], "15s");
    assert_eq!(sm["spec"]["endpoints"][0]["scrapeTimeout"], "5s");
    let pm = find("PodMonitor", "shard-a-dcs-migration-operator");
    assert_eq!(pm["metadata"]["labels"]["release"], "kube-prometheus-stack");
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["interval"], "20s");
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["port"], "metrics");
    let rule = find("PrometheusRule", "shard-a-dcs-migration-operator");
    assert_eq!(rule["metadata"]["labels"]["release"], "kube-prometheus-stack");
    let dashboard = find("ConfigMap", "shard-a-dcs-migration-operator-dashboard");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");

    // An existing ConfigMap instead of inline certificates; both at once is refused.
    let existing = objects(&helm_template_values(
        "x",
        "caBundle: {configMapName: hcs-ca, key: root.pem}\n",
        &["templates/deployment.yaml"],
    ));
    let volumes = existing[0]["spec"]["template"]["spec"]["volumes"].as_array().unwrap().clone();
    let ca = volumes.iter().find(|v| v["name"] == "ca-bundle").unwrap();
    assert_eq!(ca["configMap"], json!({"name": "hcs-ca", "items": [{"key": "root.pem", "path": "ca.crt"}]}));
    let out = helm(&["template", "x", &chart(), "--set", "caBundle.pem=x,caBundle.configMapName=y"]);
    assert!(!out.status.success() && stderr(&out).contains("set pem or configMapName, not both"), "{}", stderr(&out));
}

/// Every key path of values.schema.json's properties, following `$ref`s: `a`, `a.b`, ...
fn schema_paths(schema: &Value, root: &Value, prefix: &str, out: &mut Vec<(String, bool)>) {
    let resolve = |s: &Value| -> Value {
        match s["$ref"].as_str().and_then(|r| r.strip_prefix("#/definitions/")) {
            Some(name) => root["definitions"][name].clone(),
            None => s.clone(),
        }
    };
    let schema = resolve(schema);
    if let Some(props) = schema["properties"].as_object() {
        for (key, sub) in props {
            let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            let sub = resolve(sub);
            out.push((path.clone(), sub["properties"].is_object()));
            schema_paths(&sub, root, &path, out);
        }
    }
}

#[test]
fn the_chart_readme_documents_exactly_the_values_schema() {
    let dir = e2e::repo().join(e2e::CHART_DIR);
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("values.schema.json")).unwrap()).unwrap();
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let values_section = readme.split("## Values").nth(1).unwrap().split("\n## ").next().unwrap();
    let documented: Vec<String> = values_section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .map(|l| l.split('`').next().unwrap().to_string())
        .collect();
    let mut paths = Vec::new();
    schema_paths(&schema, &schema, "", &mut paths);
    let known: std::collections::HashMap<&str, bool> = paths.iter().map(|(p, o)| (p.as_str(), *o)).collect();
    for key in &documented {
        assert!(known.contains_key(key.as_str()), "README documents `{key}`, which values.schema.json does not have");
    }
    // A key is documented as a whole, or each of its sub-keys is (recursively).
    let covered = |path: &str| {
        documented.iter().any(|d| d == path || path.starts_with(&format!("{d}.")))
            || documented.iter().any(|d| d.starts_with(&format!("{path}.")))
    };
    for (path, _) in &paths {
        if path == "global" {
            continue; // set by Helm for subcharts
        }
        let parent_documented_in_parts = match path.rsplit_once('.') {
            Some((parent, _)) => documented.iter().any(|d| d.starts_with(&format!("{parent}."))),
            None => true,
        };
        if parent_documented_in_parts && !documented.iter().any(|d| path.starts_with(&format!("{d}."))) {
            assert!(
                covered(path),
                "values.schema.json has `{path}`, which the README's Values table does not document"
            );
        }
    }
    // And the defaults the README names are values.yaml's: every documented key exists there.
    let values: Value = serde_saphyr::from_str(&std::fs::read_to_string(dir.join("values.yaml")).unwrap()).unwrap();
    for key in &documented {
        let mut v = &values;
        for part in key.split('.') {
            v = &v[part];
        }
        assert!(!v.is_null(), "README documents `{key}`, which values.yaml does not set");
    }
}

/// The series names `/metrics` serves (from its `# TYPE` lines, with the suffixes each type's samples carry), once the
/// operator has watched its resources and made a DCS call and a retry (labelled families appear at their first child).
fn served_series() -> std::collections::BTreeSet<String> {
    use dcs_migration_operator::dcs::{CallObserver, operation::Operation};
    let metrics = dcs_migration_operator::metrics::Metrics::new();
    let (store, _writer) = kube::runtime::reflector::store::<RedisMigration>();
    metrics.watch_store(store);
    metrics.exchanged(Operation::ListMigrationTask, "200");
    metrics.retrying(Operation::ListMigrationTask);
    let text = metrics.encode();
    let mut names = std::collections::BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else { continue };
        let (name, kind) = rest.split_once(' ').unwrap();
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_string());
            }
        }
    }
    names
}

/// The metric names an expression uses (identifiers of the operator's namespace).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("dcs_migration_") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

#[test]
fn the_dashboard_and_the_alerts_query_only_series_the_operator_serves() {
    let served = served_series();
    assert!(served.contains("dcs_migration_dcs_calls_total"), "{served:?}");
    let all = objects(&helm_template_values(
        "x",
        "prometheusRule: {enabled: true}\ngrafanaDashboard: {enabled: true}\n",
        &[],
    ));
    let dashboard = all
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == "x-dcs-migration-operator-dashboard")
        .unwrap();
    let dashboard: Value =
        serde_json::from_str(dashboard["data"]["dcs-migration-operator.json"].as_str().unwrap()).unwrap();
    let mut exprs: Vec<String> = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = var["query"].as_str().filter(|q| q.starts_with("label_values(")) {
            exprs.push(q.to_string());
        }
    }
    let rule = all.iter().find(|o| o["kind"] == "PrometheusRule").unwrap();
    for r in rule["spec"]["groups"][0]["rules"].as_array().unwrap() {
        exprs.push(r["expr"].as_str().unwrap().to_string());
    }
    assert!(exprs.len() >= 14, "{exprs:#?}");
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "a query of no operator series: {expr}");
        for name in names {
            assert!(served.contains(&name), "{expr} names {name}, which /metrics does not serve ({served:?})");
        }
    }
}

#[test]
fn every_alert_has_a_runbook_anchor_in_docs_operations() {
    let all =
        objects(&helm_template_values("x", "prometheusRule: {enabled: true}\n", &["templates/prometheusrule.yaml"]));
    let operations = std::fs::read_to_string(e2e::repo().join("docs/operations.md")).unwrap();
    // GitHub's anchors: a heading, lowercased, spaces to dashes, other punctuation dropped.
    let anchors: Vec<String> = operations
        .lines()
        .filter_map(|l| l.trim_start_matches('#').strip_prefix(' ').filter(|_| l.starts_with('#')))
        .map(|h| {
            h.to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect();
    let rules = all[0]["spec"]["groups"][0]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 5);
    for r in rules {
        let url = r["annotations"]["runbook_url"].as_str().unwrap_or_else(|| panic!("no runbook_url: {r}"));
        let (base, anchor) = url.split_once('#').unwrap();
        assert!(base.ends_with("/docs/operations.md"), "{url}");
        assert_eq!(anchor, r["alert"].as_str().unwrap().to_lowercase(), "the alert's own section");
        assert!(anchors.iter().any(|a| a == anchor), "docs/operations.md has no heading for #{anchor}");
    }
}
