//! Keyless credentials end to end (issue 16): RedisMigrations whose `spec.identity` names a ServiceAccount, on the
//! real control plane (which mints the tokens and publishes its issuer keys) and the simulator acting as IAM, STS
//! and DCS, with the operator as a process. No Secret of this test binary holds an access key.

mod e2e;
mod support;

use dcs_migration_operator::simulator::IdentityConfig;
use e2e::{AK, Env, Operator, PROJECT};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const AUDIENCE: &str = "dcs-migration-operator";
const IDP: &str = "k8s-cluster";
const PROVIDER: &str = "iam::0123456789:identity-provider:k8s-cluster";
const AGENCY: &str = "iam::0123456789:agency:dcs-migrator";
const WAIT: Duration = Duration::from_secs(90);

/// A namespace and a simulator that verifies ServiceAccount tokens of the test API server (for `AUDIENCE`) and
/// issues credentials living `lifetime`; it trusts nobody until `trust` is called. The namespace has no access key.
async fn keyless_env(hint: &str, lifetime: Duration) -> Env {
    let oidc = support::service_account_issuer(AUDIENCE).await;
    let identity = IdentityConfig { oidc: Some(oidc), credential_lifetime: lifetime, ..IdentityConfig::default() };
    Env::without_keys(hint, Duration::from_secs(2), |config| config.with_identity(identity)).await
}

/// Replaces the simulator's trust lists (`PUT /_sim/trust`).
async fn trust(env: &Env, idp: &[(&str, String)], agency: &[(&str, String)]) {
    let list = |entries: &[(&str, String)]| entries.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Value>();
    env.sim_admin(reqwest::Method::PUT, "/_sim/trust", Some(json!({"idp": list(idp), "agency": list(agency)}))).await;
}

fn subject(ns: &str, sa: &str) -> String {
    format!("system:serviceaccount:{ns}:{sa}")
}

/// Through IAM federation (identity provider `IDP`).
fn federation(sa: &str) -> String {
    format!("    serviceAccountName: {sa}\n    idpId: {IDP}\n")
}

/// Through the STS agency `AGENCY`.
fn agency(sa: &str) -> String {
    format!("    serviceAccountName: {sa}\n    providerUrn: {PROVIDER}\n    agencyUrn: {AGENCY}\n")
}

/// An example with `spec.identity` (and the project it needs) instead of its credentials Secret, labelled `run`.
fn keyless_example(env: &Env, file: &str, identity: &str, run: &str) -> String {
    let manifest = env.example(file);
    let keyed = "  credentialsSecretRef:\n    name: dcs-credentials\n";
    assert!(manifest.contains(keyed), "{file} names its credentials Secret");
    manifest.replace(keyed, &format!("  projectId: {PROJECT}\n  identity:\n{identity}")).replacen(
        "metadata:\n",
        &format!("metadata:\n  labels:\n    identity-run: {run}\n"),
        1,
    )
}

fn create_service_account(ns: &str, name: &str) {
    let out = support::control_plane().kubectl().args(["-n", ns, "create", "serviceaccount", name]).output().unwrap();
    support::ok(out, "kubectl create serviceaccount");
}

/// The operator, watching every namespace but only the resources labelled `identity-run=<run>`, and the port of
/// its `/metrics`.
fn operator(env: &Env, run: &str) -> (Operator, u16) {
    let port = e2e::free_port();
    let selector = format!("identity-run={run}");
    let metrics = format!("127.0.0.1:{port}");
    let args = ["--watch-namespace", "", "--label-selector", &selector, "--metrics-addr", &metrics];
    (Operator::start_with(env, &args, &[]), port)
}

/// The simulator's log: `(subject, accessKey, atMs)` of every DCS call that verified.
async fn calls(env: &Env) -> Vec<(String, String, i64)> {
    let log = env.sim_admin(reqwest::Method::GET, "/_sim/log", None).await;
    log.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let key = e["accessKey"].as_str()?.to_owned();
            Some((e["subject"].as_str().unwrap_or("").to_owned(), key, e["atMs"].as_i64()?))
        })
        .collect()
}

/// Temporary keys, security tokens and ServiceAccount tokens are never in the test's hands: scan for their shapes
/// (a JWT; a run of 40 or more letters and digits of both cases, as secret keys and security tokens are).
fn assert_no_credential_material(places: &[(&str, String)]) {
    for (place, text) in places {
        assert!(!text.contains("eyJ"), "a token leaked into the {place}");
        let mut run = String::new();
        for c in text.chars().chain(std::iter::once(' ')) {
            if c.is_ascii_alphanumeric() {
                run.push(c);
                continue;
            }
            let mixed = run.chars().any(|c| c.is_ascii_uppercase()) && run.chars().any(|c| c.is_ascii_lowercase());
            assert!(!(run.len() >= 40 && mixed), "credential-like material leaked into the {place}");
            run.clear();
        }
    }
}

/// Everything the operator shows anyone, scanned for secrets: its log and metrics, Events and statuses.
async fn assert_nothing_leaked(env: &Env, (op, port): &(Operator, u16), namespaces: &[&str]) {
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("dcs_"), "/metrics answered");
    let mut places = vec![("operator log", op.logs()), ("metrics", metrics)];
    for ns in namespaces {
        let get = |what: &str| {
            let out = support::control_plane().kubectl().args(["-n", ns, "get", what, "-o", "json"]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        places.push(("Events", get("events")));
        places.push(("RedisMigration objects", get("rmig")));
    }
    assert_no_credential_material(&places);
    env.assert_no_secret_leaked_in(&[op.logs()], &places[1..]);
}

/// No Secret anywhere in the cluster holds the simulator's access key or its secret key.
fn assert_no_key_in_the_cluster(env: &Env) {
    let out = support::control_plane().kubectl().args(["get", "secrets", "-A", "-o", "json"]).output().unwrap();
    let secrets: Value = serde_json::from_slice(&out.stdout).unwrap();
    for secret in secrets["items"].as_array().unwrap() {
        let values: Vec<String> = secret["data"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(_, v)| v.as_str())
            .filter_map(|b64| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.decode(b64).ok()
            })
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .collect();
        for value in values {
            assert!(
                !value.contains(AK) && !value.contains(&env.secret_key),
                "an access key is in {}",
                secret["metadata"]
            );
        }
    }
}

#[tokio::test]
async fn two_namespaces_reach_ready_as_their_own_service_accounts_through_iam_and_sts_with_no_key_in_the_cluster() {
    let env = keyless_env("identity-iam", Duration::from_secs(3600)).await;
    let other = support::fresh_namespace("identity-sts").await;
    let run = e2e::secret_value("run").to_lowercase();
    create_service_account(&env.ns, "migrator-a");
    create_service_account(&other, "migrator-b");
    // Each identity is trusted for its own ServiceAccount only.
    trust(&env, &[(IDP, subject(&env.ns, "migrator-a"))], &[(AGENCY, subject(&other, "migrator-b"))]).await;
    let op = operator(&env, &run);

    let passwords = env.kubectl(&["get", "secret", "redis-passwords", "-o", "json"]);
    let mut secret: Value = serde_json::from_slice(&passwords.stdout).unwrap();
    secret["metadata"] = json!({"name": "redis-passwords"});
    support::ok(support::kubectl_stdin(&["-n", &other, "apply", "-f", "-"], &secret.to_string()), "copy passwords");
    env.apply(&keyless_example(&env, "backup-import-obs.yaml", &federation("migrator-a"), &run));
    let in_other = keyless_example(&env, "backup-import-obs.yaml", &agency("migrator-b"), &run);
    support::ok(support::kubectl_stdin(&["-n", &other, "apply", "-f", "-"], &in_other), "apply in the other namespace");

    env.wait_condition("import-from-obs", "Ready", "True", None, WAIT).await;
    support::eventually("the other namespace's import is Ready", WAIT, || async {
        let out = support::control_plane()
            .kubectl()
            .args([
                "-n",
                &other,
                "get",
                "rmig",
                "import-from-obs",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ])
            .output()
            .unwrap();
        (String::from_utf8_lossy(&out.stdout) == "True").then_some(())
    })
    .await;

    // Every DCS call was signed with temporary credentials of one of the two ServiceAccounts, each its own.
    let calls = calls(&env).await;
    let mut keys_by_subject: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (subject, key, _) in &calls {
        keys_by_subject.entry(subject.clone()).or_default().insert(key.clone());
    }
    let subjects: BTreeSet<&String> = keys_by_subject.keys().collect();
    assert_eq!(
        subjects,
        BTreeSet::from([&subject(&env.ns, "migrator-a"), &subject(&other, "migrator-b")]),
        "{calls:?}"
    );
    let [a, b]: [&BTreeSet<String>; 2] = keys_by_subject.values().collect::<Vec<_>>().try_into().unwrap();
    assert!(a.is_disjoint(b), "the two identities share no key");
    assert!(calls.iter().all(|(_, key, _)| key != AK), "no call with the simulator's permanent key");
    let tasks: Vec<Value> = env.sim_state().await["tasks"].as_array().unwrap().clone();
    assert_eq!(tasks.len(), 2, "one task per namespace");

    assert_no_key_in_the_cluster(&env);
    assert_nothing_leaked(&env, &op, &[&env.ns, &other]).await;
}

#[tokio::test]
async fn an_untrusted_service_account_stalls_with_the_refusal_and_makes_no_dcs_call() {
    let env = keyless_env("identity-untrusted", Duration::from_secs(3600)).await;
    let run = e2e::secret_value("run").to_lowercase();
    create_service_account(&env.ns, "migrator");
    create_service_account(&env.ns, "someone-else");
    trust(&env, &[], &[(AGENCY, subject(&env.ns, "someone-else"))]).await;
    let op = operator(&env, &run);
    env.apply(&keyless_example(&env, "backup-import-obs.yaml", &agency("migrator"), &run));

    let rm = env.wait_condition("import-from-obs", "Ready", "False", Some("CredentialsMissing"), WAIT).await;
    let ready = rm["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap().clone();
    let message = ready["message"].as_str().unwrap();
    assert!(message.contains(&format!("ServiceAccount {}/migrator", env.ns)), "{message}");
    assert!(message.contains("STS assume-with-oidc: refused with HTTP 403"), "{message}");
    assert_eq!(
        rm["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Stalled").unwrap()["status"],
        "True"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(calls(&env).await.is_empty(), "no DCS call without credentials");
    assert!(env.sim_state().await["refusals"]["untrusted"].as_u64().unwrap_or(0) >= 1, "the STS refused it");
    assert_nothing_leaked(&env, &op, &[&env.ns]).await;
}

#[tokio::test]
async fn twenty_second_credentials_are_refreshed_once_per_lifetime_and_never_used_expired_for_ninety_seconds() {
    let lifetime = Duration::from_secs(20);
    let env = keyless_env("identity-expiry", lifetime).await;
    let run = e2e::secret_value("run").to_lowercase();
    create_service_account(&env.ns, "migrator");
    trust(&env, &[(IDP, subject(&env.ns, "migrator"))], &[]).await;
    let op = operator(&env, &run);
    env.apply(&keyless_example(&env, "online-incremental.yaml", &federation("migrator"), &run));
    env.wait_phase("online-incremental", "IncrementalMigrating", WAIT).await;

    let started = Instant::now();
    let from_ms = jiff::Timestamp::now().as_millisecond();
    tokio::time::sleep(Duration::from_secs(90)).await;
    let calls: Vec<_> = calls(&env).await.into_iter().filter(|(_, _, at)| *at >= from_ms).collect();
    let keys: BTreeSet<&String> = calls.iter().map(|(_, key, _)| key).collect();
    let state = env.sim_state().await;
    assert_eq!(state["refusals"]["expired"], 0, "a request carried an expired credential: {state}");
    assert!(calls.len() >= 45, "the streaming task was observed all along ({} calls)", calls.len());
    // 90 s is 4.5 lifetimes: the keys in use over it are the one current at its start and at most one per lifetime.
    let lifetimes = started.elapsed().as_secs_f64() / lifetime.as_secs_f64();
    eprintln!(
        "{} calls with {} keys over {lifetimes:.1} lifetimes; refusals {}",
        calls.len(),
        keys.len(),
        state["refusals"]
    );
    assert!((keys.len() as f64) <= lifetimes.ceil() + 1.0, "{} keys in {lifetimes:.1} lifetimes", keys.len());
    assert!(keys.len() >= 4, "credentials were refreshed ({} keys)", keys.len());
    let rm = env.get("online-incremental");
    assert_eq!(rm["status"]["phase"], "IncrementalMigrating");
    assert_nothing_leaked(&env, &op, &[&env.ns]).await;
}

#[tokio::test]
async fn revoked_trust_stalls_a_streaming_migration_with_the_reason_and_restored_trust_lets_it_go_on() {
    let env = keyless_env("identity-revoked", Duration::from_secs(3600)).await;
    let run = e2e::secret_value("run").to_lowercase();
    create_service_account(&env.ns, "migrator");
    let trusted = [(AGENCY, subject(&env.ns, "migrator"))];
    trust(&env, &[], &trusted).await;
    let op = operator(&env, &run);
    env.apply(&keyless_example(&env, "online-incremental.yaml", &agency("migrator"), &run));
    env.wait_condition("online-incremental", "Ready", "True", None, WAIT).await;

    trust(&env, &[], &[]).await;
    let rm = env.wait_condition("online-incremental", "Synced", "False", Some("CredentialsMissing"), WAIT).await;
    let synced = rm["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Synced").unwrap().clone();
    assert!(synced["message"].as_str().unwrap().contains("refused with HTTP 403"), "{synced}");
    let refused_at = env.sim_state().await["refusals"]["untrusted"].as_u64().unwrap();
    assert!(refused_at >= 1);

    trust(&env, &[], &trusted).await;
    let restored = Instant::now();
    env.wait_condition("online-incremental", "Synced", "True", None, Duration::from_secs(45)).await;
    env.wait_condition("online-incremental", "Ready", "True", None, Duration::from_secs(10)).await;
    eprintln!("recovered {:.1} s after trust was restored", restored.elapsed().as_secs_f64());
    assert_eq!(env.get("online-incremental")["status"]["phase"], "IncrementalMigrating");
    assert_nothing_leaked(&env, &op, &[&env.ns]).await;
}

// ---- the operator's own chain (namespaces allowed the default credentials) ----------------------------------------

/// Which link of the SDK's chain the operator is given.
#[derive(Clone, Copy, Debug)]
enum Link {
    OidcSts,
    IamFederation,
    Metadata,
    PodIdentity,
}

/// The operator, configured through its environment only (as the chart's `keyless` values do) with `link`, serves a
/// namespace labelled for the default credentials: its import reaches Ready, every DCS call signed by that link's
/// temporary credentials.
async fn own_chain_serves_a_labelled_namespace(link: Link) {
    let pod_token = e2e::secret_value("PodIdentityToken");
    let tune_token = pod_token.clone();
    let oidc = support::service_account_issuer(AUDIENCE).await;
    let identity = IdentityConfig {
        oidc: Some(oidc),
        metadata_credentials: true,
        pod_identity_token: Some(tune_token),
        ..IdentityConfig::default()
    };
    let mut env = Env::without_keys(&format!("own-{link:?}").to_lowercase(), Duration::from_secs(2), |config| {
        config.with_identity(identity)
    })
    .await;
    env.secrets.push(pod_token.clone());
    let label = ["label", "namespace", &env.ns, "dcs.migration.io/default-credentials=true"];
    support::ok(support::control_plane().kubectl().args(label).output().unwrap(), "label the namespace");
    trust(&env, &[(IDP, subject(&env.ns, "operator"))], &[(AGENCY, subject(&env.ns, "operator"))]).await;
    let token_file = std::env::temp_dir().join(format!("{}-token", env.ns));
    let token = match link {
        Link::PodIdentity => pod_token,
        _ => support::service_account_token_for(&env.ns, "operator", Some(AUDIENCE)).await,
    };
    std::fs::write(&token_file, &token).unwrap();
    let (url, file) = (env.url(), token_file.to_string_lossy().into_owned());
    let pod_uri = format!("{url}/_sim/pod-identity");
    let vars: Vec<(&str, &str)> = match link {
        Link::OidcSts => vec![
            ("HUAWEICLOUD_OIDC_PROVIDER_URN", PROVIDER),
            ("HUAWEICLOUD_OIDC_AGENCY_URN", AGENCY),
            ("HUAWEICLOUD_OIDC_TOKEN_FILE", &file),
            ("HUAWEICLOUD_SDK_STS_ENDPOINT", &url),
        ],
        Link::IamFederation => vec![
            ("HUAWEICLOUD_SDK_IDP_ID", IDP),
            ("HUAWEICLOUD_SDK_ID_TOKEN_FILE", &file),
            ("HUAWEICLOUD_SDK_IAM_ENDPOINT", &url),
        ],
        Link::Metadata => vec![("METADATA_ENDPOINT", &url)],
        Link::PodIdentity => {
            vec![("HC_CONTAINER_CREDENTIALS_FULL_URI", &pod_uri), ("HC_CONTAINER_AUTHORIZATION_TOKEN_FILE", &file)]
        }
    };
    let port = e2e::free_port();
    let metrics = format!("127.0.0.1:{port}");
    let op = (Operator::start_with(&env, &["--metrics-addr", &metrics], &vars), port);
    let manifest = env.example("backup-import-obs.yaml");
    env.apply(
        &manifest.replace("  credentialsSecretRef:\n    name: dcs-credentials\n", &format!("  projectId: {PROJECT}\n")),
    );
    env.wait_condition("import-from-obs", "Ready", "True", None, WAIT).await;

    let expected = match link {
        Link::OidcSts | Link::IamFederation => subject(&env.ns, "operator"),
        Link::Metadata => "ecs-metadata".to_owned(),
        Link::PodIdentity => "cce-pod-identity".to_owned(),
    };
    let calls = calls(&env).await;
    assert!(!calls.is_empty() && calls.iter().all(|(s, key, _)| *s == expected && key != AK), "{link:?}: {calls:?}");
    std::fs::remove_file(&token_file).unwrap();
    assert_no_key_in_the_cluster(&env);
    assert_nothing_leaked(&env, &op, &[&env.ns]).await;
}

#[tokio::test]
async fn the_operators_own_oidc_sts_link_serves_a_labelled_namespace() {
    own_chain_serves_a_labelled_namespace(Link::OidcSts).await;
}

#[tokio::test]
async fn the_operators_own_iam_federation_link_serves_a_labelled_namespace() {
    own_chain_serves_a_labelled_namespace(Link::IamFederation).await;
}

#[tokio::test]
async fn the_operators_own_ecs_metadata_link_serves_a_labelled_namespace() {
    own_chain_serves_a_labelled_namespace(Link::Metadata).await;
}

#[tokio::test]
async fn the_operators_own_cce_pod_identity_link_serves_a_labelled_namespace() {
    own_chain_serves_a_labelled_namespace(Link::PodIdentity).await;
}

#[tokio::test]
async fn an_identity_exchange_endpoint_outside_the_allow_list_is_refused_before_any_token_is_requested() {
    let env = keyless_env("identity-allow-list", Duration::from_secs(3600)).await;
    let run = e2e::secret_value("run").to_lowercase();
    create_service_account(&env.ns, "migrator");
    trust(&env, &[(IDP, subject(&env.ns, "migrator"))], &[]).await;
    let port = e2e::free_port();
    let (selector, metrics) = (format!("identity-run={run}"), format!("127.0.0.1:{port}"));
    let args = ["--label-selector", &selector, "--metrics-addr", &metrics, "--allowed-endpoints", "127.0.0.1"];
    let op = (Operator::start_with(&env, &args, &[]), port);
    let elsewhere = format!("{}    iamEndpoint: https://iam.example.com\n", federation("migrator"));
    env.apply(&keyless_example(&env, "backup-import-obs.yaml", &elsewhere, &run));

    let rm = env.wait_condition("import-from-obs", "Stalled", "True", Some("InvalidSpec"), WAIT).await;
    let ready = rm["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap().clone();
    assert!(
        ready["message"].as_str().unwrap().contains("\"iam.example.com\" is not in the operator's allowed"),
        "{ready}"
    );
    assert!(calls(&env).await.is_empty());
    assert!(!op.0.logs().contains("temporary credentials obtained"), "no exchange was attempted");
    assert_nothing_leaked(&env, &op, &[&env.ns]).await;
}

#[tokio::test]
async fn the_keyless_examples_are_accepted_by_the_api_server_as_written() {
    let env = keyless_env("identity-examples", Duration::from_secs(3600)).await;
    for file in ["identity-federation.yaml", "identity-agency.yaml"] {
        let out = env.kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], &env.example(file));
        support::ok(out, file);
    }
}

#[tokio::test]
async fn the_charts_own_rbac_lets_the_operator_request_a_service_accounts_token() {
    let env = keyless_env("identity-chart-rbac", Duration::from_secs(3600)).await;
    create_service_account(&env.ns, "migrator");
    trust(&env, &[], &[(AGENCY, subject(&env.ns, "migrator"))]).await;
    let op = Operator::start_as_chart_identity(&env, e2e::ChartIdentity::WatchNamespace, &[], &[]);
    env.apply(&keyless_example(&env, "backup-import-obs.yaml", &agency("migrator"), "chart"));
    env.wait_condition("import-from-obs", "Ready", "True", None, WAIT).await;
    assert!(calls(&env).await.iter().all(|(s, _, _)| *s == subject(&env.ns, "migrator")));
    env.assert_no_secret_leaked(&[op.logs()]);
}
