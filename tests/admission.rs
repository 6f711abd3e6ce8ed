//! Invalid RedisMigrations are refused by the real kube-apiserver (OpenAPI schema + CEL rules
//! of the CRD), with a message naming the field; immutable fields cannot change once the
//! remote task exists.

mod e2e;
mod support;

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

fn resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("dcs.migration.io", "v1alpha1", "RedisMigration"),
        "redismigrations",
    )
}

fn online() -> Value {
    json!({
        "apiVersion": "dcs.migration.io/v1alpha1",
        "kind": "RedisMigration",
        "metadata": {"name": "m"},
        "spec": {
            "region": "cn-north-4",
            "type": "Online",
            "method": "Incremental",
            "online": {"network": {
                "vpcId": "5e3a9b5a-0c3e-4bcf-9a6b-2a1d9c3b7e11",
                "subnetId": "b7d7a0c4-3a4f-4b8e-9f3e-1c2d3e4f5a6b",
                "securityGroupId": "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"}},
            "source": {"address": "10.0.0.1:6379"},
            "target": {"instanceId": "6f3b2a1c-9d8e-4f7a-b6c5-d4e3f2a1b0c9"}
        }
    })
}

fn import() -> Value {
    json!({
        "apiVersion": "dcs.migration.io/v1alpha1",
        "kind": "RedisMigration",
        "metadata": {"name": "m"},
        "spec": {
            "region": "cn-north-4",
            "type": "BackupImport",
            "backupImport": {"source": "ObsBucket", "bucket": "redis-backups", "files": [{"name": "dump.rdb"}]},
            "target": {"instanceId": "6f3b2a1c-9d8e-4f7a-b6c5-d4e3f2a1b0c9"}
        }
    })
}

/// A backup import as a ServiceAccount's keyless identity (IAM federation).
fn keyless() -> Value {
    mutate(
        import(),
        json!({"spec": {"projectId": "0123456789abcdef0123456789abcdef",
            "identity": {"serviceAccountName": "migrator", "idpId": "k8s-cluster"}}}),
    )
}

/// Applies a JSON merge patch (`null` removes a field) to a base manifest.
fn mutate(mut base: Value, patch: Value) -> Value {
    json_patch_merge(&mut base, &patch);
    base
}

fn json_patch_merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(map) => {
            if !target.is_object() {
                *target = json!({});
            }
            let obj = target.as_object_mut().unwrap();
            for (k, v) in map {
                if v.is_null() {
                    obj.remove(k);
                } else {
                    json_patch_merge(obj.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// Every case: (what is wrong, manifest, a field path the API server's message must name).
fn invalid_manifests() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        ("unknown type", mutate(online(), json!({"spec": {"type": "Sideways"}})), "spec.type"),
        ("unknown method", mutate(online(), json!({"spec": {"method": "Partial"}})), "spec.method"),
        (
            "backup import with incremental method",
            mutate(import(), json!({"spec": {"method": "Incremental"}})),
            "spec.method",
        ),
        (
            "backup import without backupImport",
            mutate(import(), json!({"spec": {"backupImport": null}})),
            "spec.backupImport",
        ),
        (
            "backup import with an online section",
            mutate(import(), json!({"spec": {"online": {"taskId": "90754308a156406fa8378f852f38a646"}}})),
            "spec.online",
        ),
        (
            "backup import with a source",
            mutate(import(), json!({"spec": {"source": {"address": "10.0.0.1:6379"}}})),
            "spec.source",
        ),
        (
            "backup import into an address",
            mutate(import(), json!({"spec": {"target": {"instanceId": null, "address": "10.0.0.2:6379"}}})),
            "spec.target",
        ),
        (
            "OBS import without files",
            mutate(import(), json!({"spec": {"backupImport": {"files": null}}})),
            "spec.backupImport",
        ),
        (
            "backup record without backupId",
            mutate(
                import(),
                json!({"spec": {"backupImport": {"source": "BackupRecord", "bucket": null, "files": null}}}),
            ),
            "spec.backupImport.backupId",
        ),
        ("online without online section", mutate(online(), json!({"spec": {"online": null}})), "spec.online"),
        ("online without source", mutate(online(), json!({"spec": {"source": null}})), "spec.source"),
        (
            "online with both taskId and network",
            mutate(online(), json!({"spec": {"online": {"taskId": "90754308a156406fa8378f852f38a646"}}})),
            "spec.online",
        ),
        (
            "online with neither taskId nor network",
            mutate(online(), json!({"spec": {"online": {"network": null}}})),
            "spec.online",
        ),
        (
            "target with instanceId and address",
            mutate(online(), json!({"spec": {"target": {"address": "10.0.0.2:6379"}}})),
            "spec.target",
        ),
        (
            "source with neither instanceId nor address",
            mutate(online(), json!({"spec": {"source": {"address": null}}})),
            "spec.source",
        ),
        (
            "bandwidth 0",
            mutate(online(), json!({"spec": {"online": {"bandwidthLimitMB": 0}}})),
            "spec.online.bandwidthLimitMB",
        ),
        (
            "bandwidth 10241",
            mutate(online(), json!({"spec": {"online": {"bandwidthLimitMB": 10241}}})),
            "spec.online.bandwidthLimitMB",
        ),
        ("task name starting with a digit", mutate(online(), json!({"spec": {"taskName": "1task"}})), "spec.taskName"),
        ("task name too short", mutate(online(), json!({"spec": {"taskName": "abc"}})), "spec.taskName"),
        ("task name with a dot", mutate(online(), json!({"spec": {"taskName": "my.task"}})), "spec.taskName"),
        (
            "malformed task id",
            mutate(online(), json!({"spec": {"online": {"network": null, "taskId": "not-a-task"}}})),
            "spec.online.taskId",
        ),
        (
            "malformed instance id",
            mutate(online(), json!({"spec": {"target": {"instanceId": "instance-1"}}})),
            "spec.target.instanceId",
        ),
        (
            "malformed address",
            mutate(online(), json!({"spec": {"source": {"address": "10.0.0.1"}}})),
            "spec.source.address",
        ),
        (
            "malformed vpc id",
            mutate(online(), json!({"spec": {"online": {"network": {"vpcId": "vpc-1"}}}})),
            "spec.online.network.vpcId",
        ),
        (
            "plain http endpoint off loopback",
            mutate(online(), json!({"spec": {"endpoint": "http://dcs.example.com"}})),
            "spec.endpoint",
        ),
        ("endpoint that is not a URL", mutate(online(), json!({"spec": {"endpoint": "dcs example"}})), "spec.endpoint"),
        ("region with capitals", mutate(online(), json!({"spec": {"region": "CN-NORTH-4"}})), "spec.region"),
        (
            "unknown deletion policy",
            mutate(online(), json!({"spec": {"deletionPolicy": "Keep"}})),
            "spec.deletionPolicy",
        ),
        (
            "switchover on a backup import",
            mutate(import(), json!({"spec": {"switchover": {"exchangeIps": ["10.0.0.1"]}}})),
            "spec.switchover",
        ),
        (
            "switchover with a non-IP",
            mutate(online(), json!({"spec": {"switchover": {"exchangeIps": ["host-a"]}}})),
            "spec.switchover.exchangeIps",
        ),
        (
            "progress deadline under a minute",
            mutate(online(), json!({"spec": {"progressDeadlineSeconds": 5}})),
            "spec.progressDeadlineSeconds",
        ),
        (
            "password reference without key",
            mutate(online(), json!({"spec": {"target": {"passwordSecretRef": {"name": "pw"}}}})),
            "spec.target.passwordSecretRef.key",
        ),
        (
            "credentials Secret with an invalid name",
            mutate(online(), json!({"spec": {"credentialsSecretRef": {"name": "Bad_Name"}}})),
            "spec.credentialsSecretRef.name",
        ),
        (
            "identity with a credentials Secret",
            mutate(keyless(), json!({"spec": {"credentialsSecretRef": {"name": "dcs-credentials"}}})),
            "spec.identity",
        ),
        ("identity without a project", mutate(keyless(), json!({"spec": {"projectId": null}})), "spec.projectId"),
        (
            "identity through both IAM and STS",
            mutate(
                keyless(),
                json!({"spec": {"identity": {"providerUrn": "iam::1:identity-provider:k", "agencyUrn": "iam::1:agency:a"}}}),
            ),
            "spec.identity",
        ),
        (
            "identity with a provider but no agency",
            mutate(
                keyless(),
                json!({"spec": {"identity": {"idpId": null, "providerUrn": "iam::1:identity-provider:k"}}}),
            ),
            "spec.identity.agencyUrn",
        ),
        (
            "identity with a plain-http IAM endpoint off loopback",
            mutate(keyless(), json!({"spec": {"identity": {"iamEndpoint": "http://iam.example.com"}}})),
            "spec.identity.iamEndpoint",
        ),
        (
            "identity with an invalid ServiceAccount name",
            mutate(keyless(), json!({"spec": {"identity": {"serviceAccountName": "Bad_Name"}}})),
            "spec.identity.serviceAccountName",
        ),
        ("missing region", mutate(online(), json!({"spec": {"region": null}})), "spec.region"),
        ("missing target", mutate(online(), json!({"spec": {"target": null}})), "spec.target"),
    ]
}

#[tokio::test]
async fn invalid_manifests_are_refused_with_the_field_named() {
    e2e::install_crd();
    let ns = support::fresh_namespace("admission").await;
    let api: Api<DynamicObject> = Api::namespaced_with(support::admin_client().await, &ns, &resource());
    let cases = invalid_manifests();
    assert!(cases.len() >= 30, "at least 30 distinct invalid manifests");
    let mut failures = Vec::new();
    for (what, manifest, field) in cases {
        let object: DynamicObject = serde_json::from_value(manifest).unwrap();
        match api.create(&PostParams { dry_run: true, ..Default::default() }, &object).await {
            Ok(_) => failures.push(format!("{what}: accepted")),
            Err(kube::Error::Api(e)) if e.code == 422 => {
                if !e.message.contains(field) {
                    failures.push(format!("{what}: message does not name {field}: {}", e.message));
                }
            }
            Err(e) => failures.push(format!("{what}: unexpected error {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    for valid in [online(), import(), keyless()] {
        let object: DynamicObject = serde_json::from_value(valid).unwrap();
        api.create(&PostParams { dry_run: true, ..Default::default() }, &object)
            .await
            .expect("the valid bases are accepted");
    }
}

#[tokio::test]
async fn fields_that_cannot_change_are_immutable_once_the_task_exists_and_mutable_before() {
    e2e::install_crd();
    let ns = support::fresh_namespace("immutable").await;
    let api: Api<DynamicObject> = Api::namespaced_with(support::admin_client().await, &ns, &resource());
    let object: DynamicObject = serde_json::from_value(online()).unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();

    let merge = |patch: Value| async { api.patch("m", &PatchParams::default(), &Patch::Merge(patch)).await };
    merge(json!({"spec": {"target": {"instanceId": "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"}}}))
        .await
        .expect("before the task exists, the spec can be fixed");

    api.patch_status(
        "m",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"taskId": "90754308a156406fa8378f852f38a646"}})),
    )
    .await
    .unwrap();
    for (patch, field) in [
        (json!({"spec": {"target": {"instanceId": "6f3b2a1c-9d8e-4f7a-b6c5-d4e3f2a1b0c9"}}}), "spec.target.instanceId"),
        (json!({"spec": {"region": "cn-east-3"}}), "spec.region"),
        (json!({"spec": {"method": "Full"}}), "spec.method"),
        (json!({"spec": {"online": {"bandwidthLimitMB": 10}}}), "spec.online.bandwidthLimitMB"),
        (json!({"spec": {"source": {"address": "10.9.9.9:6379"}}}), "spec.source.address"),
        (json!({"spec": {"taskName": "renamed-task"}}), "spec.taskName"),
        (json!({"spec": {"type": "BackupImport"}}), "spec.type"),
    ] {
        match merge(patch.clone()).await {
            Err(kube::Error::Api(e)) if e.code == 422 => assert!(e.message.contains(field), "{field}: {}", e.message),
            other => panic!("changing {field} after creation: {other:?}"),
        }
    }
    for patch in [
        json!({"spec": {"online": {"resumeMode": "Manual"}}}),
        json!({"spec": {"deletionPolicy": "Orphan"}}),
        json!({"spec": {"stopped": true}}),
        json!({"spec": {"progressDeadlineSeconds": 3600}}),
        json!({"spec": {"switchover": {"exchangeIps": ["10.0.0.1"]}}}),
    ] {
        merge(patch.clone()).await.unwrap_or_else(|e| panic!("{patch} must stay mutable: {e}"));
    }
}
