//! Kubernetes Events (`events.k8s.io/v1`) about RedisMigrations, with repeats folded into a
//! series as `kubectl describe` expects.
//!
//! kube-runtime's `Recorder` does the same but keeps a full copy of every Event it published for
//! six minutes (its table was the largest single allocation, 2.95 MiB, in a heaptrack of the
//! 200-resource benchmark, and grows with every phase change). Here a published Event is
//! remembered by a hash of what makes it a repeat and the little a series patch needs: when it was
//! created (its name is the resource's name and that time), its count and its last time. No entry
//! owns a string.
//!
//! The table holds the `SERIES_KEPT` most recently published series, as client-go's event correlator does
//! (an LRU of 4,096). Keeping every Event of the last six minutes instead grew with the fleet: applying 10,000
//! resources publishes ~50,000 Events within six minutes, 65,536 buckets of 33 bytes (~2 MB, ~3 MB while the
//! table grew; 1.1 MB at 3,000 in a heaptrack). A series evicted by thousands of newer Events starts a new Event
//! when it repeats.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Client};
use lru::LruCache;
use serde_json::json;
use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroUsize;
use std::sync::Mutex;

/// How long an Event can be continued as a series (kube-runtime and client-go use 6 minutes).
const SERIES_TTL: SignedDuration = SignedDuration::from_mins(6);
/// How many series the table keeps (client-go: `maxLruCacheEntries`).
const SERIES_KEPT: NonZeroUsize = NonZeroUsize::new(4096).expect("non-zero");

/// Publishes Events as one reporting controller.
pub struct Events {
    client: Client,
    controller: String,
    instance: String,
    hasher: RandomState,
    /// The series that may still be continued, by the hash of what makes an Event a repeat.
    recent: Mutex<LruCache<u64, Published>>,
}

/// What is kept of a published Event to continue its series (24 bytes: the table holds tens of thousands).
#[derive(Debug, Clone, Copy)]
struct Published {
    /// When the Event was created: with the resource's name, its name (`event_name`).
    created: Timestamp,
    count: i32,
    /// Whole seconds from `created` to its last occurrence.
    last: u32,
}

impl Published {
    fn new(now: Timestamp) -> Self {
        Self { created: now, count: 1, last: 0 }
    }

    /// Whether a repeat at `now` continues the series (within `SERIES_TTL` of the last occurrence).
    fn continues(&self, now: Timestamp) -> bool {
        self.created + SignedDuration::from_secs(i64::from(self.last)) + SERIES_TTL > now
    }

    /// The series after one more occurrence at `now`.
    fn repeated(self, now: Timestamp) -> Self {
        let since = now.duration_since(self.created).as_secs();
        Self { count: self.count + 1, last: u32::try_from(since.max(0)).unwrap_or(u32::MAX), ..self }
    }
}

/// The name of an Event about `regarding` created at `created`.
fn event_name(regarding: &ObjectReference, fallback: &str, created: Timestamp) -> String {
    format!("{}.{:x}", regarding.name.as_deref().unwrap_or(fallback), created.as_nanosecond())
}

impl Events {
    /// `instance` defaults to the controller name (the pod name in a cluster).
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        Self {
            client,
            controller: controller.to_owned(),
            instance: instance.unwrap_or_else(|| controller.to_owned()),
            hasher: RandomState::new(),
            recent: Mutex::new(LruCache::new(SERIES_KEPT)),
        }
    }

    /// Publishes an Event about `regarding`; the same Event (type, reason, action, note) within six
    /// minutes of the last one raises its series count instead of adding an object.
    pub async fn publish(&self, event: &Event, regarding: &ObjectReference) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = self.hasher.hash_one((
            &regarding.uid,
            &regarding.namespace,
            &regarding.name,
            event.type_,
            &event.reason,
            &event.action,
            &event.note,
        ));
        let repeat = self.recent.lock().expect("events lock").get(&key).copied().filter(|p| p.continues(now));
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        let published = match repeat {
            Some(p) => {
                let next = p.repeated(now);
                let series = json!({ "series": { "count": next.count, "lastObservedTime": MicroTime(now) } });
                let name = event_name(regarding, &self.controller, p.created);
                match api.patch(&name, &PatchParams::default(), &Patch::Merge(&series)).await {
                    Ok(_) => next,
                    // Expired or removed meanwhile: start again.
                    Err(kube::Error::Api(s)) if s.code == 404 => self.create(&api, event, regarding, now).await?,
                    Err(e) => return Err(e),
                }
            }
            None => self.create(&api, event, regarding, now).await?,
        };
        self.recent.lock().expect("events lock").put(key, published);
        Ok(())
    }

    async fn create(
        &self,
        api: &Api<K8sEvent>,
        event: &Event,
        regarding: &ObjectReference,
        now: Timestamp,
    ) -> Result<Published, kube::Error> {
        let object = K8sEvent {
            metadata: ObjectMeta {
                name: Some(event_name(regarding, &self.controller, now)),
                namespace: regarding.namespace.clone(),
                ..Default::default()
            },
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            note: event.note.clone(),
            type_: Some(match event.type_ {
                EventType::Normal => "Normal".to_owned(),
                EventType::Warning => "Warning".to_owned(),
            }),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        api.create(&PostParams::default(), &object).await?;
        Ok(Published::new(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_continues_within_six_minutes_of_its_last_occurrence_however_old_it_is() {
        let start: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let at = |secs: i64| start + SignedDuration::from_secs(secs);
        let first = Published::new(start);
        assert!(first.continues(at(359)));
        assert!(!first.continues(at(360)));
        let later = first.repeated(at(300)).repeated(at(650));
        assert_eq!((later.count, later.created), (3, start), "the name stays the first Event's");
        assert!(later.continues(at(1009)));
        assert!(!later.continues(at(1010)));
    }

    #[test]
    fn a_remembered_series_takes_24_bytes() {
        assert_eq!(std::mem::size_of::<Published>(), 24);
    }
}
