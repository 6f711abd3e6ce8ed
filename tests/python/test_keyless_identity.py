"""The official SDK's own keyless credential providers (dcs-api.md §13) obtain temporary credentials from a
`dcs-simulator` and drive a DCS call with them: IAM federation from the environment (`FederalAccessor`),
OIDC → STS (`OidcStsAccessor`), CCE pod identity (`PodIdentityAccessor`) and ECS metadata
(`MetadataAccessor`, its endpoint pointed at the simulator). The id tokens are JWTs the test signs with its
own RSA key (the `openssl` CLI), whose JWKS the simulator is given with `--oidc-jwks`; the simulator
verifies signature, issuer, audience, expiry and subject, and refuses expired or revoked credentials."""

import base64
import json
import subprocess
import time

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.auth.internal import MetadataAccessor, OidcStsAccessor
from huaweicloudsdkcore.auth.provider import (
    EnvCredentialProvider,
    MetadataCredentialProvider,
    OidcStsCredentialProvider,
    PodIdentityCredentialProvider,
)
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException, SdkException
from huaweicloudsdkdcs.v2 import DcsClient, ListMigrationTaskRequest

from conftest import ACCESS_KEY, PROJECT_ID, running_simulator

ISSUER = "https://kubernetes.default.svc.cluster.local"
AUDIENCE = "dcs-migration-operator"
IDP_ID = "k8s-test-idp"
PROVIDER_URN = "iam::0123456789:identity-provider:k8s-test-idp"
AGENCY_URN = "iam::0123456789:agency:dcs-migrator"
POD_TOKEN = "pod-identity-token-for-tests"
TRUSTED = "system:serviceaccount:payments:migrator"
UNTRUSTED = "system:serviceaccount:intruders:migrator"
TRUST = {"idp": {IDP_ID: ["system:serviceaccount:payments:*"]}, "agency": {AGENCY_URN: [TRUSTED]}}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    """An OIDC issuer of the test's own: an RSA key made with openssl, its JWKS file, and signed JWTs."""

    def __init__(self, directory):
        self.key = directory / "issuer.pem"
        subprocess.run(["openssl", "genrsa", "-out", str(self.key), "2048"], check=True, capture_output=True)
        modulus = subprocess.run(["openssl", "rsa", "-in", str(self.key), "-noout", "-modulus"], check=True,
                                 capture_output=True, text=True).stdout.strip().split("=", 1)[1]
        self.jwks = directory / "jwks.json"
        self.jwks.write_text(json.dumps({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "test",
                                                   "n": b64url(bytes.fromhex(modulus)), "e": "AQAB"}]}))

    def token(self, subject, lifetime=600, audience=AUDIENCE, issuer=ISSUER):
        now = int(time.time())
        header = b64url(json.dumps({"alg": "RS256", "kid": "test", "typ": "JWT"}).encode())
        claims = b64url(json.dumps({"iss": issuer, "sub": subject, "aud": [audience], "iat": now,
                                    "nbf": now, "exp": now + lifetime}).encode())
        signed = f"{header}.{claims}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signed.encode(),
                                   check=True, capture_output=True).stdout
        return f"{signed}.{b64url(signature)}"


@pytest.fixture(scope="module")
def issuer(tmp_path_factory):
    return Issuer(tmp_path_factory.mktemp("issuer"))


def identity_args(issuer, lifetime="1h"):
    return ["--oidc-issuer", ISSUER, "--oidc-jwks", str(issuer.jwks), "--oidc-audience", AUDIENCE,
            "--trust-idp", f"{IDP_ID}=system:serviceaccount:payments:*", "--trust-agency", f"{AGENCY_URN}={TRUSTED}",
            "--pod-identity-token", POD_TOKEN, "--metadata-credentials", "--credential-lifetime", lifetime]


@pytest.fixture(scope="module")
def sim(issuer):
    with running_simulator(*identity_args(issuer)) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ["HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_SECURITY_TOKEN",
                 "HUAWEICLOUD_SDK_IDP_ID", "HUAWEICLOUD_SDK_ID_TOKEN_FILE", "HUAWEICLOUD_OIDC_ID_TOKEN"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", PROJECT_ID)


def list_tasks(url, credentials):
    client = DcsClient.new_builder().with_credentials(credentials).with_endpoints([url]).build()
    return client.list_migration_task(ListMigrationTaskRequest())


def temporary_identities(sim):
    """DCS calls per access key, the simulator's permanent key left out."""
    return {k: v for k, v in sim.state()["identities"].items() if k != ACCESS_KEY}


def write(path, text):
    path.write_text(text)
    return str(path)


def test_federal_accessor_from_the_environment_gets_credentials_that_list_tasks(sim, issuer, tmp_path, monkeypatch):
    before = temporary_identities(sim)
    monkeypatch.setenv("HUAWEICLOUD_SDK_IDP_ID", IDP_ID)
    monkeypatch.setenv("HUAWEICLOUD_SDK_ID_TOKEN_FILE", write(tmp_path / "token", issuer.token(TRUSTED)))
    monkeypatch.setenv("HUAWEICLOUD_SDK_IAM_ENDPOINT", sim.url)
    credentials = EnvCredentialProvider.get_basic().get_credentials()
    list_tasks(sim.url, credentials)
    assert credentials.security_token and credentials.ak != ACCESS_KEY
    after = temporary_identities(sim)
    assert after.get(credentials.ak) == 1 and credentials.ak not in before
    made = [e for e in sim.admin("GET", "/_sim/log") if e.get("accessKey") == credentials.ak]
    assert [(e["operation"], e["subject"]) for e in made] == [("ListMigrationTask", TRUSTED)]


def test_oidc_sts_accessor_assumes_the_agency_and_lists_tasks(sim, issuer, tmp_path, monkeypatch):
    monkeypatch.setenv("HUAWEICLOUD_OIDC_PROVIDER_URN", PROVIDER_URN)
    monkeypatch.setenv("HUAWEICLOUD_OIDC_AGENCY_URN", AGENCY_URN)
    monkeypatch.setenv("HUAWEICLOUD_OIDC_TOKEN_FILE", write(tmp_path / "token", issuer.token(TRUSTED)))
    monkeypatch.setenv("HUAWEICLOUD_SDK_STS_ENDPOINT", sim.url)
    credentials = OidcStsCredentialProvider.get_basic().get_credentials()
    list_tasks(sim.url, credentials)
    assert temporary_identities(sim).get(credentials.ak) == 1


def test_pod_identity_accessor_gets_credentials_that_list_tasks(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("HC_CONTAINER_CREDENTIALS_FULL_URI", sim.url + "/_sim/pod-identity")
    monkeypatch.setenv("HC_CONTAINER_AUTHORIZATION_TOKEN_FILE", write(tmp_path / "pod-token", POD_TOKEN))
    credentials = PodIdentityCredentialProvider.get_basic().get_credentials().with_project_id(PROJECT_ID)
    list_tasks(sim.url, credentials)
    assert temporary_identities(sim).get(credentials.ak) == 1


def test_metadata_accessor_pointed_at_the_simulator_gets_credentials_that_list_tasks(sim, monkeypatch):
    monkeypatch.setattr(MetadataAccessor, "_METADATA_ENDPOINT", sim.url)
    credentials = MetadataCredentialProvider.get_basic().get_credentials().with_project_id(PROJECT_ID)
    list_tasks(sim.url, credentials)
    assert temporary_identities(sim).get(credentials.ak) == 1


def test_an_untrusted_service_account_gets_nothing_and_makes_no_dcs_call(sim, issuer, tmp_path, monkeypatch):
    refused = sim.state()["refusals"]["untrusted"]
    calls = sum(sim.state()["identities"].values())
    monkeypatch.setenv("HUAWEICLOUD_SDK_IDP_ID", IDP_ID)
    monkeypatch.setenv("HUAWEICLOUD_SDK_ID_TOKEN_FILE", write(tmp_path / "token", issuer.token(UNTRUSTED)))
    monkeypatch.setenv("HUAWEICLOUD_SDK_IAM_ENDPOINT", sim.url)
    with pytest.raises(SdkException):
        list_tasks(sim.url, EnvCredentialProvider.get_basic().get_credentials())
    assert sim.state()["refusals"]["untrusted"] == refused + 1
    assert sum(sim.state()["identities"].values()) == calls


def test_id_tokens_with_a_forged_signature_wrong_audience_or_past_expiry_are_refused(sim, issuer):
    forged = issuer.token(TRUSTED)[:-8] + "AAAAAAAA"
    expired = issuer.token(TRUSTED, lifetime=-60)
    other_audience = issuer.token(TRUSTED, audience="someone-else")
    before = sim.state()["refusals"]
    for token in [forged, expired, other_audience]:
        with pytest.raises(SdkException):
            OidcStsAccessor(PROVIDER_URN, AGENCY_URN, token).get_credential(sts_endpoint=sim.url,
                                                                            http_client=sts_http_client(sim.url))
    after = sim.state()["refusals"]
    assert after["signature"] == before["signature"] + 1
    assert after["expired"] == before["expired"] + 1
    assert after["untrusted"] == before["untrusted"] + 1


def sts_http_client(url):
    """An SDK HTTP client (what the SDK's accessors post with), taken from a client that is never called."""
    client = DcsClient.new_builder().with_credentials(BasicCredentials(ACCESS_KEY, "unused", PROJECT_ID)) \
        .with_endpoints([url]).build()
    return client.get_http_client()


def assume(sim, issuer, subject=TRUSTED):
    """Temporary credentials straight from the SDK's STS accessor, used as they are (no refresh)."""
    credential = OidcStsAccessor(PROVIDER_URN, AGENCY_URN, issuer.token(subject)).get_credential(
        sts_endpoint=sim.url, http_client=sts_http_client(sim.url))
    return BasicCredentials(credential.access, credential.secret, PROJECT_ID) \
        .with_security_token(credential.security_token)


def test_temporary_credentials_are_refused_once_expired_and_counted(issuer):
    with running_simulator(*identity_args(issuer, lifetime="2s")) as short:
        credentials = assume(short, issuer)
        list_tasks(short.url, credentials)
        time.sleep(2.5)
        with pytest.raises(ClientRequestException) as refused:
            list_tasks(short.url, credentials)
        assert refused.value.status_code == 401
        assert short.state()["refusals"]["expired"] == 1


def test_revoking_trust_refuses_issued_credentials_until_trust_is_restored(sim, issuer):
    credentials = assume(sim, issuer)
    list_tasks(sim.url, credentials)
    untrusted = sim.state()["refusals"]["untrusted"]
    sim.admin("PUT", "/_sim/trust", {"idp": {}, "agency": {}})
    try:
        with pytest.raises(ClientRequestException) as refused:
            list_tasks(sim.url, credentials)
        assert refused.value.status_code == 401
        with pytest.raises(SdkException):
            assume(sim, issuer)
        assert sim.state()["refusals"]["untrusted"] == untrusted + 2
    finally:
        sim.admin("PUT", "/_sim/trust", TRUST)
    list_tasks(sim.url, credentials)
    list_tasks(sim.url, assume(sim, issuer))
