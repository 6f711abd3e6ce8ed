//! The RedisMigration watch (`controller::listwatch`) against the real API server: one whole list, decoded and
//! trimmed object by object, then the watch from the list's resourceVersion.

mod e2e;
mod support;

use dcs_migration_operator::controller::listwatch;
use dcs_migration_operator::crd::RedisMigration;
use futures::StreamExt;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::watcher::Event;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

const LISTED: usize = 150;
const LABEL: &str = "listwatch-test";

fn migration(name: &str, labelled: bool, step: &str) -> serde_json::Value {
    let labels = if labelled { json!({LABEL: "yes", "step": step}) } else { json!({"step": step}) };
    json!({
        "apiVersion": "dcs.migration.io/v1alpha1",
        "kind": "RedisMigration",
        "metadata": {"name": name, "labels": labels, "annotations": {"example.com/kept-out": "x".repeat(500)}},
        "spec": {
            "region": "cn-north-4",
            "credentialsSecretRef": {"name": "dcs-credentials"},
            "type": "BackupImport",
            "backupImport": {"source": "ObsBucket", "bucket": "redis-backups", "files": [{"name": "dump.rdb"}]},
            "target": {"instanceId": "6f3b2a1c-9d8e-4f7a-b6c5-d4e3f2a1b0c9"}
        }
    })
}

fn trim(rm: &mut RedisMigration) {
    rm.managed_fields_mut().clear();
    rm.annotations_mut().clear();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_lists_the_selected_resources_trimmed_then_follows_creates_changes_deletes_and_an_apiserver_restart()
{
    e2e::install_crd();
    let ns = support::fresh_namespace("listwatch").await;
    let api: Api<RedisMigration> = Api::namespaced(support::admin_client().await, &ns);
    let apply = PatchParams::apply("listwatch-test");
    for i in 0..LISTED {
        let name = format!("rm-{i:03}");
        api.patch(&name, &apply, &Patch::Apply(migration(&name, true, "listed"))).await.unwrap();
    }
    api.patch("unlabelled", &apply, &Patch::Apply(migration("unlabelled", false, "listed"))).await.unwrap();

    let mut events = Box::pin(listwatch::watch(api.clone(), Some(&format!("{LABEL}=yes")), trim));
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(30), events.next())
            .await
            .expect("an event within 30 s")
            .expect("the stream goes on")
            .expect("no error")
    };
    assert!(matches!(next().await, Event::Init));
    let mut listed = BTreeSet::new();
    loop {
        match next().await {
            Event::InitApply(rm) => {
                assert!(rm.managed_fields().is_empty() && rm.annotations().is_empty(), "{rm:?} was not trimmed");
                assert!(rm.resource_version().is_some());
                listed.insert(rm.name_any());
            }
            Event::InitDone => break,
            other => panic!("while listing: {other:?}"),
        }
    }
    let expected: BTreeSet<String> = (0..LISTED).map(|i| format!("rm-{i:03}")).collect();
    assert_eq!(listed, expected, "every labelled resource, once, and no other");

    api.patch("added", &apply, &Patch::Apply(migration("added", true, "new"))).await.unwrap();
    api.patch("rm-007", &apply, &Patch::Apply(migration("rm-007", true, "changed"))).await.unwrap();
    api.patch("unlabelled", &apply, &Patch::Apply(migration("unlabelled", false, "changed"))).await.unwrap();
    api.delete("rm-011", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match next().await {
            Event::Apply(rm) => seen.push(format!("apply {} {}", rm.name_any(), rm.labels()["step"])),
            Event::Delete(rm) => seen.push(format!("delete {}", rm.name_any())),
            other => panic!("while watching: {other:?}"),
        }
    }
    assert_eq!(seen, ["apply added new", "apply rm-007 changed", "delete rm-011"]);

    // kube-apiserver and etcd restarted: the watch goes on (resumed, or listed again), errors in between.
    tokio::task::block_in_place(|| support::control_plane().restart());
    let api: Api<RedisMigration> = Api::namespaced(support::admin_client().await, &ns);
    api.patch("after-restart", &apply, &Patch::Apply(migration("after-restart", true, "new"))).await.unwrap();
    let mut after = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Apply(rm) | Event::InitApply(rm)) if rm.name_any() == "after-restart" => return,
                Ok(other) => after.push(format!("{other:?}").chars().take(60).collect::<String>()),
                Err(e) => after.push(e.to_string()),
            }
        }
    })
    .await;
    assert!(found.is_ok(), "the resource created after the restart was never seen; the stream said: {after:?}");
}
