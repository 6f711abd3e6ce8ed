//! Keyless identity with real ServiceAccount tokens: the test kube-apiserver mints them (TokenRequest, with an
//! audience), publishes its issuer and keys (`/.well-known/openid-configuration`, `/openid/v1/jwks`), and the
//! simulator, given only those keys, verifies them and trusts ServiceAccounts by namespace. The DCS client's
//! exchanges (IAM federation, STS) turn them into temporary credentials that list tasks.

mod support;

use std::time::Duration;

use dcs_migration_operator::dcs::keyless::{self, AgencyRequest, ExchangeError, Link};
use dcs_migration_operator::dcs::model::ListQuery;
use dcs_migration_operator::dcs::{ClientConfig, DcsClient, Endpoint, TemporaryCredentials};
use dcs_migration_operator::simulator::{self, IdentityConfig, RunningSimulator, Trust};

const AUDIENCE: &str = "dcs-migration-operator";
const PROJECT: &str = "0123456789abcdef0123456789abcdef";
const IDP: &str = "k8s-test";
const AGENCY: &str = "iam::0123456789:agency:dcs-migrator";

/// A simulator that trusts the API server's issuer: every ServiceAccount of `ns` through the IdP, and
/// `ns/migrator` through the agency.
async fn simulator_trusting(ns: &str) -> RunningSimulator {
    let mut trust = Trust::default();
    trust.add_idp(IDP.into(), format!("system:serviceaccount:{ns}:*"));
    trust.add_agency(AGENCY.into(), format!("system:serviceaccount:{ns}:migrator"));
    let identity = IdentityConfig {
        oidc: Some(support::service_account_issuer(AUDIENCE).await),
        trust,
        ..IdentityConfig::default()
    };
    simulator::spawn(simulator::Config::new("AK", "SK", PROJECT).with_identity(identity)).unwrap()
}

fn agency() -> AgencyRequest {
    AgencyRequest {
        provider_urn: "iam::0123456789:identity-provider:k8s-test".into(),
        agency_urn: AGENCY.into(),
        session_name: "operator".into(),
        duration: Duration::from_secs(3600),
    }
}

async fn list_tasks(url: &str, temporary: &TemporaryCredentials) {
    let config = ClientConfig::new(Endpoint::parse(url).unwrap(), PROJECT, temporary.credentials.clone());
    DcsClient::new(config).unwrap().list_migration_tasks(&ListQuery::default()).await.unwrap();
}

#[tokio::test]
async fn service_account_tokens_of_the_real_api_server_become_credentials_that_list_tasks() {
    let ns = support::fresh_namespace("keyless-trusted").await;
    let sim = simulator_trusting(&ns).await;
    let token = support::service_account_token_for(&ns, "migrator", Some(AUDIENCE)).await;
    let http = reqwest::Client::new();
    let federated = keyless::iam_federation(&http, &sim.url(), IDP, &token, Duration::from_secs(3600)).await.unwrap();
    list_tasks(&sim.url(), &federated).await;
    let assumed = keyless::assume_agency_with_oidc(&http, &sim.url(), &agency(), &token).await.unwrap();
    list_tasks(&sim.url(), &assumed).await;
}

#[tokio::test]
async fn a_service_account_of_an_untrusted_namespace_or_for_another_audience_is_refused() {
    let ns = support::fresh_namespace("keyless-trusted").await;
    let other = support::fresh_namespace("keyless-untrusted").await;
    let sim = simulator_trusting(&ns).await;
    let http = reqwest::Client::new();
    let outsider = support::service_account_token_for(&other, "migrator", Some(AUDIENCE)).await;
    let refused = keyless::iam_federation(&http, &sim.url(), IDP, &outsider, Duration::from_secs(3600)).await;
    assert!(matches!(refused, Err(ExchangeError::Refused { link: Link::IamIdToken, status: 403, .. })), "{refused:?}");
    let wrong_audience = support::service_account_token_for(&ns, "migrator", None).await;
    let refused = keyless::assume_agency_with_oidc(&http, &sim.url(), &agency(), &wrong_audience).await;
    assert!(
        matches!(refused, Err(ExchangeError::Refused { link: Link::StsAssumeAgency, status: 401, .. })),
        "{refused:?}"
    );
    let untrusted_name = support::service_account_token_for(&ns, "someone-else", Some(AUDIENCE)).await;
    let refused = keyless::assume_agency_with_oidc(&http, &sim.url(), &agency(), &untrusted_name).await;
    assert!(matches!(refused, Err(ExchangeError::Refused { status: 403, .. })), "{refused:?}");
}
