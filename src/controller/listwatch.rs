//! The RedisMigration watch: a list, then a watch from the list's resourceVersion, as kube-runtime's `watcher`
//! does, but listed whole. kube-runtime lists in pages; kube-apiserver 1.33 serves a `continue`d page from etcd,
//! decoding every object again, while it serves a whole list from its watch cache (a consistent read since 1.31,
//! `ConsistentListFromCache`), as client-go's informers get theirs. Measured on the test control plane with 10,000
//! resources and nothing else running (raw GETs): 3.5 s in pages of 100, 3.2 s in pages of 500, 0.9 s whole; the
//! release operator's watch synced 10,000 in 1.3 s.
//!
//! A whole list is one large body (~20 MB at 10,000), so it is read as it arrives, one object at a time, each
//! decoded and trimmed before the next one is read: the operator never holds the body, nor more than one untrimmed
//! object. A blocking thread splits the body into the objects' texts (serde_json reads only from a blocking
//! reader); the objects are decoded on the runtime's thread. Decoded on the blocking thread, they filled a malloc
//! arena of their own (glibc gives each thread one), which kept its pages after the objects were freed: the
//! 10,000 run's restarts peaked at 70.3 and 71.5 MiB instead of 55 and 57. Each object goes on to the reflector
//! as soon as it is decoded; holding them all until the list was read (for the reason `changed_objects` gives)
//! still left 64.1 and 66.9 MiB, the held objects and the reflector's copies of them in the heap together.
//!
//! The stream yields kube-runtime's `watcher::Event`s and `watcher::Error`s, so that its backoff and its
//! reflector take it as they take a `watcher`; `changed_objects` makes the controller's triggers of it.

use crate::crd::RedisMigration;
use futures::stream::BoxStream;
use futures::{AsyncBufRead, AsyncReadExt, Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
use kube::ResourceExt;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::runtime::reflector::Store;
use kube::runtime::watcher::{Error, Event};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The server ends a watch after this many seconds (kube-runtime's default).
const WATCH_TIMEOUT_S: u32 = 290;
/// A watch silent for this long is taken for dead and started again (kube-runtime: the timeout and a margin).
const WATCH_IDLE: Duration = Duration::from_secs(WATCH_TIMEOUT_S as u64 + 10);
/// Objects' texts on their way from the reading thread to the stream.
const LIST_QUEUE: usize = 64;
/// The reading thread's buffer.
const READ_BUFFER: usize = 64 * 1024;

/// Lists and watches `api` (with `labels`, if any), trimming each listed object with `trim` as it is decoded.
pub fn watch(
    api: Api<RedisMigration>,
    labels: Option<&str>,
    trim: fn(&mut RedisMigration),
) -> impl Stream<Item = Result<Event<RedisMigration>, Error>> + use<> {
    let list = ListParams { label_selector: labels.map(str::to_owned), ..ListParams::default() };
    let watch = WatchParams {
        label_selector: labels.map(str::to_owned),
        timeout: Some(WATCH_TIMEOUT_S),
        bookmarks: true,
        ..WatchParams::default()
    };
    // Shared, not cloned per event: an `Api` clone allocates (its client's buffer handle).
    let requests = Arc::new((api, list, watch));
    futures::stream::unfold(State::Empty, move |state| {
        let requests = requests.clone();
        async move {
            let (api, list, watch) = &*requests;
            Some(step(api, list, watch, trim, state).await)
        }
    })
}

/// Where the list-then-watch is.
enum State<K> {
    /// Nothing listed yet, or the watch fell behind what the server keeps (410 Gone): list.
    Empty,
    /// A list is being read: its objects' texts arrive here.
    Listing(mpsc::Receiver<Result<Listed, kube::Error>>),
    /// Listed, or a watch ended, at this resourceVersion: watch from it.
    Listed(String),
    /// Watching from this resourceVersion (the last one seen).
    Watching(String, BoxStream<'static, kube::Result<WatchEvent<K>>>),
}

/// What the reading thread sends: each object's text, then the list's resourceVersion.
enum Listed {
    Object(Box<RawValue>),
    End(Option<String>),
}

/// One step: the next event or error, and the state after it.
async fn step(
    api: &Api<RedisMigration>,
    list_params: &ListParams,
    watch: &WatchParams,
    trim: fn(&mut RedisMigration),
    mut state: State<RedisMigration>,
) -> (Result<Event<RedisMigration>, Error>, State<RedisMigration>) {
    loop {
        state = match state {
            State::Empty => {
                return match list(api, list_params).await {
                    Ok(listing) => (Ok(Event::Init), State::Listing(listing)),
                    Err(e) => (Err(Error::InitialListFailed(e)), State::Empty),
                };
            }
            State::Listing(mut listing) => {
                return match listing.recv().await {
                    Some(Ok(Listed::Object(text))) => match serde_json::from_str::<RedisMigration>(text.get()) {
                        Ok(mut object) => {
                            trim(&mut object);
                            (Ok(Event::InitApply(object)), State::Listing(listing))
                        }
                        Err(e) => (Err(Error::InitialListFailed(kube::Error::SerdeError(e))), State::Empty),
                    },
                    Some(Ok(Listed::End(Some(version)))) => {
                        tracing::debug!(%version, "listed");
                        (Ok(Event::InitDone), State::Listed(version))
                    }
                    Some(Ok(Listed::End(None))) => (Err(Error::NoResourceVersion), State::Empty),
                    Some(Err(e)) => (Err(Error::InitialListFailed(e)), State::Empty),
                    // The reading thread ended without saying how: it panicked.
                    None => {
                        let stopped = io::Error::other("the list's reader stopped");
                        (Err(Error::InitialListFailed(kube::Error::ReadEvents(stopped))), State::Empty)
                    }
                };
            }
            State::Listed(version) => match api.watch(watch, &version).await.inspect(|_| {
                tracing::debug!(%version, "watching");
            }) {
                Ok(events) => State::Watching(version, events.boxed()),
                Err(e) => return (Err(Error::WatchStartFailed(e)), State::Listed(version)),
            },
            State::Watching(version, mut events) => match tokio::time::timeout(WATCH_IDLE, events.next()).await {
                Ok(Some(Ok(WatchEvent::Added(object) | WatchEvent::Modified(object)))) => {
                    return seen(object, Event::Apply, events);
                }
                Ok(Some(Ok(WatchEvent::Deleted(object)))) => return seen(object, Event::Delete, events),
                Ok(Some(Ok(WatchEvent::Bookmark(mark)))) => State::Watching(mark.metadata.resource_version, events),
                Ok(Some(Ok(WatchEvent::Error(e)))) => {
                    let next = if e.code == 410 { State::Empty } else { State::Watching(version, events) };
                    return (Err(Error::WatchError(e)), next);
                }
                Ok(Some(Err(e))) => return (Err(Error::WatchFailed(e)), State::Watching(version, events)),
                Ok(None) | Err(_) => State::Listed(version),
            },
        };
    }
}

/// A watched object's event, the watch going on from its resourceVersion.
fn seen<K: kube::Resource>(
    object: K,
    event: fn(K) -> Event<K>,
    events: BoxStream<'static, kube::Result<WatchEvent<K>>>,
) -> (Result<Event<K>, Error>, State<K>) {
    match object.resource_version().filter(|v| !v.is_empty()) {
        Some(version) => (Ok(event(object)), State::Watching(version, events)),
        None => (Err(Error::NoResourceVersion), State::Empty),
    }
}

/// Sends the list request and starts reading its body on a blocking thread, which hands over each object's text
/// as it arrives, then the list's resourceVersion.
async fn list(
    api: &Api<RedisMigration>,
    list_params: &ListParams,
) -> kube::Result<mpsc::Receiver<Result<Listed, kube::Error>>> {
    let request = kube::core::Request::new(api.resource_url()).list(list_params).map_err(kube::Error::BuildRequest)?;
    let body = Box::pin(api.clone().into_client().request_stream(request).await?);
    let (tx, rx) = mpsc::channel(LIST_QUEUE);
    tokio::task::spawn_blocking(move || {
        let end = split_list(io::BufReader::with_capacity(READ_BUFFER, Blocking(body)), |object| {
            tx.blocking_send(Ok(Listed::Object(object))).is_ok()
        });
        // The stream may be gone (the operator stops): nobody is left to tell.
        let _ = tx.blocking_send(end.map(Listed::End).map_err(kube::Error::SerdeError));
    });
    Ok(rx)
}

/// The objects to reconcile, from the reflected events: each object a watch event applies, and every object of
/// `store` once a list is done. kube-runtime's `applied_objects` passes listed objects on as they arrive, and the
/// controller starts their reconciles before `InitDone` swaps them into the store: a reconcile of an object new
/// since the last list then finds nothing and is not retried (kube-rs#1167; it lost the two resources created
/// during the chaos test's API-server outage). Passed on at `InitDone`, from the store, they are all there.
pub fn changed_objects(
    store: Store<RedisMigration>,
    events: impl Stream<Item = Result<Event<RedisMigration>, Error>> + Send + 'static,
) -> impl Stream<Item = Result<RedisMigration, Error>> + Send + 'static {
    events.flat_map(move |event| match event {
        Ok(Event::Apply(object)) => futures::stream::iter([Ok(object)]).boxed(),
        Ok(Event::InitDone) => {
            futures::stream::iter(store.state()).map(|object| Ok(RedisMigration::clone(&object))).boxed()
        }
        Ok(Event::Init | Event::InitApply(_) | Event::Delete(_)) => futures::stream::empty().boxed(),
        Err(e) => futures::stream::iter([Err(e)]).boxed(),
    })
}

/// Reads a list from `reader`, handing each item's text to `each` (which says whether to go on), and returns the
/// list's resourceVersion.
fn split_list<R: io::Read>(reader: R, each: impl FnMut(Box<RawValue>) -> bool) -> serde_json::Result<Option<String>> {
    let mut decoder = serde_json::Deserializer::from_reader(reader);
    let version = de::Deserializer::deserialize_map(&mut decoder, ListVisitor { each })?;
    decoder.end()?;
    Ok(version)
}

/// A list object: its `items` go to `each`, its `metadata.resourceVersion` is the result, the rest is skipped.
struct ListVisitor<F> {
    each: F,
}

impl<'de, F: FnMut(Box<RawValue>) -> bool> Visitor<'de> for ListVisitor<F> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes list")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut version = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "items" => map.next_value_seed(Items { each: &mut self.each })?,
                "metadata" => {
                    version = map.next_value::<ListMeta>()?.resource_version.filter(|v| !v.is_empty());
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(version)
    }
}

/// A list's `items` (an array, or `null`), read one at a time.
struct Items<'a, F> {
    each: &'a mut F,
}

impl<'de, F: FnMut(Box<RawValue>) -> bool> DeserializeSeed<'de> for Items<'_, F> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, F: FnMut(Box<RawValue>) -> bool> Visitor<'de> for Items<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list's items")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(object) = seq.next_element::<Box<RawValue>>()? {
            if !(self.each)(object) {
                return Err(de::Error::custom("the watch stopped while its list was read"));
            }
        }
        Ok(())
    }
}

/// A response body read from a blocking thread: each read waits for the runtime to bring the bytes.
struct Blocking<R>(Pin<Box<R>>);

impl<R: AsyncBufRead> io::Read for Blocking<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        futures::executor::block_on(self.0.read(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::ResourceExt;
    use serde_json::json;

    fn object(name: &str) -> serde_json::Value {
        json!({
            "apiVersion": "dcs.migration.io/v1alpha1",
            "kind": "RedisMigration",
            "metadata": {
                "name": name,
                "namespace": "a",
                "resourceVersion": "7",
                "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {}}}],
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
            },
            "spec": {
                "region": "r",
                "credentialsSecretRef": {"name": "c"},
                "type": "BackupImport",
                "backupImport": {"source": "ObsBucket", "bucket": "b", "files": [{"name": "f"}]},
                "target": {"instanceId": "i"}
            }
        })
    }

    fn split(body: &[u8]) -> (serde_json::Result<Option<String>>, Vec<serde_json::Value>) {
        let mut seen = Vec::new();
        let end = split_list(body, |text| {
            seen.push(serde_json::from_str(text.get()).unwrap());
            true
        });
        (end, seen)
    }

    #[test]
    fn a_list_is_split_into_its_items_texts_with_its_resource_version_wherever_its_metadata_is() {
        for body in [
            json!({"apiVersion": "v1", "items": [object("x"), object("y")], "kind": "List",
                   "metadata": {"resourceVersion": "42", "continue": ""}}),
            json!({"metadata": {"resourceVersion": "42"}, "kind": "List", "items": [object("x"), object("y")]}),
        ] {
            let (end, seen) = split(&serde_json::to_vec(&body).unwrap());
            assert_eq!(end.unwrap().as_deref(), Some("42"));
            assert_eq!(seen, [object("x"), object("y")]);
            let decoded: RedisMigration = serde_json::from_value(seen[1].clone()).unwrap();
            assert_eq!(decoded.name_any(), "y");
        }
    }

    #[test]
    fn an_empty_or_null_list_has_no_items_and_a_list_without_a_version_says_so() {
        let (end, seen) = split(br#"{"items": null, "metadata": {"resourceVersion": "3"}}"#);
        assert_eq!((end.unwrap().as_deref(), seen.len()), (Some("3"), 0));
        let (end, seen) = split(br#"{"items": [], "metadata": {"resourceVersion": ""}}"#);
        assert_eq!((end.unwrap(), seen.len()), (None, 0));
    }

    #[test]
    fn a_broken_or_truncated_list_is_an_error_after_the_items_before_the_break() {
        let whole = serde_json::to_vec(&json!({"items": [object("x"), object("y")]})).unwrap();
        let (end, seen) = split(&whole[..whole.len() - 30]);
        assert!(end.is_err());
        assert_eq!(seen, [object("x")]);
        let (end, seen) = split(br#"{"items": [{"kind": 3}, {"kind": ]}"#);
        assert!(end.is_err());
        assert_eq!(seen, [json!({"kind": 3})]);
    }

    #[tokio::test]
    async fn listed_objects_go_to_the_controller_at_init_done_from_the_store_and_watched_ones_as_they_come() {
        let named = |name: &str| -> RedisMigration { serde_json::from_value(object(name)).unwrap() };
        let (store, writer) = kube::runtime::reflector::store();
        let events = futures::stream::iter([
            Ok(Event::Init),
            Ok(Event::InitApply(named("a"))),
            Ok(Event::InitApply(named("b"))),
            Ok(Event::InitDone),
            Ok(Event::Apply(named("c"))),
            Ok(Event::Delete(named("a"))),
        ]);
        let reflected = kube::runtime::reflector(writer, events);
        let mut names: Vec<String> = changed_objects(store, reflected).map(|o| o.unwrap().name_any()).collect().await;
        names[..2].sort();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn reading_stops_when_nobody_takes_the_items_any_more() {
        let body = serde_json::to_vec(&json!({"items": [object("x"), object("y"), object("z")]})).unwrap();
        let mut seen = 0;
        let end = split_list(body.as_slice(), |_| {
            seen += 1;
            false
        });
        assert!(end.unwrap_err().to_string().contains("the watch stopped"));
        assert_eq!(seen, 1);
    }
}
