//! Referenced Secrets, fetched once per version. The metadata watch of Secrets (no data) tells which
//! resourceVersion each Secret is at; a Secret read at that version is served again without a GET, and
//! fetched anew as soon as the watch shows it changed, went away, or the watch itself is relisting or
//! broken. Only what a reconcile reads is kept (name, version, data), and only for Secrets a resource
//! referenced: the in-use sweep forgets a Secret no live resource needs.

use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::Event;
use kube::{Api, ResourceExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A Secret by namespace and name.
pub type SecretKey = (String, String);

/// Secrets read, and the version the watch says each Secret is at.
#[derive(Default)]
pub struct SecretCache {
    state: Mutex<State>,
    /// One fetch per Secret at a time: passes that ask while it runs take its answer (a mass delete or a
    /// restart starts dozens of passes on the same Secrets at once).
    fetches: Mutex<HashMap<SecretKey, Arc<tokio::sync::Mutex<Option<Fetched>>>>>,
}

/// The answer of the last fetch of a Secret, and when that fetch ended.
struct Fetched {
    ended: Instant,
    secret: Option<Arc<Secret>>,
}

#[derive(Default)]
struct State {
    /// Each Secret's resourceVersion as the watch last saw it; `None` until the watch has listed them all,
    /// while it lists them again, and after it broke.
    versions: Option<HashMap<SecretKey, String>>,
    /// The list in progress.
    relisting: HashMap<SecretKey, String>,
    /// Secrets fetched, with the version they were fetched at.
    read: HashMap<SecretKey, (String, Arc<Secret>)>,
}

fn key_of(secret: &PartialObjectMeta<Secret>) -> SecretKey {
    (secret.namespace().unwrap_or_default(), secret.name_any())
}

impl SecretCache {
    /// Follows the Secret metadata watch.
    pub fn observe(&self, event: &Event<PartialObjectMeta<Secret>>) {
        let mut state = self.state.lock().expect("secret cache lock");
        match event {
            Event::Apply(secret) => {
                let (key, version) = (key_of(secret), secret.resource_version().unwrap_or_default());
                if state.read.get(&key).is_some_and(|(read, _)| *read != version) {
                    state.read.remove(&key);
                }
                if let Some(versions) = state.versions.as_mut() {
                    versions.insert(key, version);
                }
            }
            Event::Delete(secret) => {
                let key = key_of(secret);
                state.read.remove(&key);
                if let Some(versions) = state.versions.as_mut() {
                    versions.remove(&key);
                }
            }
            Event::Init => {
                state.versions = None;
                state.relisting.clear();
            }
            Event::InitApply(secret) => {
                state.relisting.insert(key_of(secret), secret.resource_version().unwrap_or_default());
            }
            Event::InitDone => {
                let versions = std::mem::take(&mut state.relisting);
                state.read.retain(|key, (read, _)| versions.get(key) == Some(read));
                state.versions = Some(versions);
            }
        }
    }

    /// The watch failed: until it has listed again, every read goes to the API server.
    pub fn lost(&self) {
        self.state.lock().expect("secret cache lock").versions = None;
    }

    /// The Secret `name` of `api`'s namespace as it is now; `None` when it does not exist. A fetch still
    /// under way when this call began answers it too: it is at most one fetch older than a fetch of its own
    /// would be, and a change it missed comes through the Secret watch, which wakes the resource again.
    async fn get(&self, api: &Api<Secret>, namespace: &str, name: &str) -> Result<Option<Arc<Secret>>, kube::Error> {
        let asked = Instant::now();
        let key = (namespace.to_owned(), name.to_owned());
        if let Some(secret) = self.current(&key) {
            return Ok(Some(secret));
        }
        let slot = self.fetches.lock().expect("fetches lock").entry(key.clone()).or_default().clone();
        let mut last = slot.lock().await;
        if let Some(fetched) = last.as_ref().filter(|f| f.ended >= asked) {
            return Ok(fetched.secret.clone());
        }
        if let Some(secret) = self.current(&key) {
            return Ok(Some(secret));
        }
        let result = self.fetch(api, key.clone(), name).await;
        if let Ok(secret) = &result {
            *last = Some(Fetched { ended: Instant::now(), secret: secret.clone() });
        }
        drop(last);
        let mut fetches = self.fetches.lock().expect("fetches lock");
        // Nobody else holds the slot (the map and this call do): it goes, whatever the fetch answered.
        if Arc::strong_count(&slot) == 2 {
            fetches.remove(&key);
        }
        result
    }

    async fn fetch(&self, api: &Api<Secret>, key: SecretKey, name: &str) -> Result<Option<Arc<Secret>>, kube::Error> {
        let Some(secret) = api.get_opt(name).await? else { return Ok(None) };
        let version = secret.resource_version().unwrap_or_default();
        let kept = Arc::new(Secret {
            metadata: ObjectMeta {
                name: secret.metadata.name,
                namespace: secret.metadata.namespace,
                resource_version: Some(version.clone()),
                ..ObjectMeta::default()
            },
            data: secret.data,
            string_data: secret.string_data,
            ..Secret::default()
        });
        self.state.lock().expect("secret cache lock").read.insert(key, (version, kept.clone()));
        Ok(Some(kept))
    }

    fn current(&self, key: &SecretKey) -> Option<Arc<Secret>> {
        let state = self.state.lock().expect("secret cache lock");
        let version = state.versions.as_ref()?.get(key)?;
        let (read, secret) = state.read.get(key)?;
        (read == version).then(|| secret.clone())
    }

    /// The operator changed the Secret's metadata only (its in-use finalizer): what was read at `before`
    /// still holds at `after`.
    pub fn metadata_patched(&self, key: &SecretKey, before: &str, after: &str) {
        if let Some((read, _)) = self.state.lock().expect("secret cache lock").read.get_mut(key)
            && read == before
        {
            *read = after.to_owned();
        }
    }

    /// No live resource references the Secret any more.
    pub fn forget(&self, key: &SecretKey) {
        self.state.lock().expect("secret cache lock").read.remove(key);
    }
}

/// One namespace's Secrets, read through the cache.
pub struct NamespaceSecrets<'a> {
    api: Api<Secret>,
    namespace: String,
    cache: &'a SecretCache,
}

impl<'a> NamespaceSecrets<'a> {
    pub fn new(client: kube::Client, namespace: &str, cache: &'a SecretCache) -> Self {
        Self { api: Api::namespaced(client, namespace), namespace: namespace.to_owned(), cache }
    }

    /// The Secret `name` as it is now; `None` when it does not exist.
    pub async fn get(&self, name: &str) -> Result<Option<Arc<Secret>>, kube::Error> {
        self.cache.get(&self.api, &self.namespace, name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, version: &str) -> PartialObjectMeta<Secret> {
        let mut secret = PartialObjectMeta::<Secret>::default();
        secret.metadata.name = Some(name.into());
        secret.metadata.namespace = Some("team".into());
        secret.metadata.resource_version = Some(version.into());
        secret
    }

    fn cached(version: &str) -> SecretCache {
        let cache = SecretCache::default();
        cache.observe(&Event::Init);
        cache.observe(&Event::InitApply(meta("creds", version)));
        cache.observe(&Event::InitDone);
        let secret = Secret {
            metadata: ObjectMeta { name: Some("creds".into()), ..ObjectMeta::default() },
            ..Secret::default()
        };
        cache.state.lock().unwrap().read.insert(key(), (version.into(), Arc::new(secret)));
        cache
    }

    fn key() -> SecretKey {
        ("team".into(), "creds".into())
    }

    #[test]
    fn a_secret_read_at_the_watched_version_is_served_again() {
        assert!(cached("7").current(&key()).is_some());
    }

    #[test]
    fn a_changed_or_deleted_secret_is_fetched_again() {
        let cache = cached("7");
        cache.observe(&Event::Apply(meta("creds", "8")));
        assert!(cache.current(&key()).is_none());
        let cache = cached("7");
        cache.observe(&Event::Delete(meta("creds", "7")));
        assert!(cache.current(&key()).is_none());
    }

    #[test]
    fn nothing_is_served_while_the_watch_relists_or_after_it_broke() {
        let cache = cached("7");
        cache.observe(&Event::Init);
        assert!(cache.current(&key()).is_none());
        cache.observe(&Event::InitApply(meta("creds", "7")));
        cache.observe(&Event::InitDone);
        assert!(cache.current(&key()).is_some());
        cache.lost();
        assert!(cache.current(&key()).is_none());
    }

    #[test]
    fn the_operators_own_finalizer_patch_keeps_what_was_read() {
        let cache = cached("7");
        cache.metadata_patched(&key(), "7", "9");
        cache.observe(&Event::Apply(meta("creds", "9")));
        assert!(cache.current(&key()).is_some());
    }

    #[test]
    fn a_secret_changed_during_a_relist_is_not_served_at_its_old_version() {
        let cache = cached("7");
        cache.observe(&Event::Init);
        cache.observe(&Event::InitApply(meta("creds", "8")));
        cache.observe(&Event::InitDone);
        assert!(cache.current(&key()).is_none());
    }
}
