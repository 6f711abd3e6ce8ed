//! The Event publisher (`controller::events`) against the real API server: repeats fold into a
//! series, as `kubectl describe` shows them, instead of piling up objects.

mod support;

use dcs_migration_operator::controller::events::Events;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource};

fn warning(note: &str) -> Event {
    Event {
        type_: EventType::Warning,
        reason: "Stalled".into(),
        note: Some(note.into()),
        action: "Reconcile".into(),
        secondary: None,
    }
}

async fn events_in(client: &kube::Client, ns: &str) -> Vec<K8sEvent> {
    let mut items = Api::<K8sEvent>::namespaced(client.clone(), ns).list(&ListParams::default()).await.unwrap().items;
    items.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
    items
}

#[tokio::test]
async fn a_repeated_event_extends_its_series_and_a_new_note_adds_an_event() {
    let client = support::admin_client().await;
    let ns = support::fresh_namespace("events-series").await;
    let subject =
        ConfigMap { metadata: ObjectMeta { name: Some("subject".into()), ..Default::default() }, ..Default::default() };
    let subject =
        Api::<ConfigMap>::namespaced(client.clone(), &ns).create(&PostParams::default(), &subject).await.unwrap();
    let regarding = subject.object_ref(&());
    let events = Events::new(client.clone(), "dcs-migration-operator", Some("replica-0".into()));

    for _ in 0..3 {
        events.publish(&warning("secret creds not found"), &regarding).await.unwrap();
    }
    events.publish(&warning("key accessKeyId missing in secret creds"), &regarding).await.unwrap();

    let listed = events_in(&client, &ns).await;
    assert_eq!(listed.len(), 2, "one object per distinct note: {listed:#?}");
    let first = &listed[0];
    assert_eq!(first.note.as_deref(), Some("secret creds not found"));
    assert_eq!(first.series.as_ref().map(|s| s.count), Some(3), "three publications, one series: {first:#?}");
    assert_eq!(first.reporting_controller.as_deref(), Some("dcs-migration-operator"));
    assert_eq!(first.reporting_instance.as_deref(), Some("replica-0"));
    assert_eq!(first.type_.as_deref(), Some("Warning"));
    assert_eq!(first.regarding.as_ref().and_then(|r| r.uid.clone()), subject.metadata.uid);
    assert!(listed[1].series.is_none(), "a first publication has no series: {:#?}", listed[1]);

    // An Event removed meanwhile (TTL, or by hand) is created again rather than lost.
    let name = first.metadata.name.clone().unwrap();
    Api::<K8sEvent>::namespaced(client.clone(), &ns).delete(&name, &DeleteParams::default()).await.unwrap();
    events.publish(&warning("secret creds not found"), &regarding).await.unwrap();
    let listed = events_in(&client, &ns).await;
    assert_eq!(listed.len(), 2, "{listed:#?}");
    assert!(listed.iter().any(|e| e.note.as_deref() == Some("secret creds not found") && e.series.is_none()));
}
