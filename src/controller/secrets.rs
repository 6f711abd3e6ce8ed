//! The `dcs.migration.io/in-use` finalizer on referenced Secrets (design.md §5): while a
//! resource may still need its credentials (to stop its task on deletion) or passwords, their
//! Secrets cannot go, so deleting a whole namespace still lets every task be stopped. The
//! finalizer comes off as soon as no live resource references the Secret.

use super::names::FINALIZER;
use super::secret_cache::{SecretCache, SecretKey};
use crate::crd::RedisMigration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};
use serde_json::json;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Finalizer the operator puts on the Secrets its resources reference.
pub const SECRET_FINALIZER: &str = "dcs.migration.io/in-use";

/// Which Secrets carry the finalizer, as the Secret metadata watch last saw them; and a queue of
/// Secrets to check for release.
pub struct Guard {
    protected: Mutex<HashSet<SecretKey>>,
    sweeps: mpsc::UnboundedSender<SecretKey>,
    /// Secrets queued for a check or waiting for a recheck: each at most once. A check reads the whole
    /// resource cache; every released resource queues its Secrets, and every check that finds them still
    /// referenced by resources being deleted rechecks them a second later, so without this a mass delete of
    /// 10,000 resources ran thousands of checks a second and kept the one runtime thread busy for 45 minutes.
    queued: Mutex<HashSet<SecretKey>>,
    /// The referenced Secrets as last read, while the watch says they are unchanged.
    pub cache: Arc<SecretCache>,
}

impl Guard {
    pub fn new(sweeps: mpsc::UnboundedSender<SecretKey>, cache: Arc<SecretCache>) -> Self {
        Self { protected: Mutex::new(HashSet::new()), sweeps, queued: Mutex::new(HashSet::new()), cache }
    }

    /// Records a Secret event of the metadata watch; Secrets that carry the finalizer are
    /// queued for a check (a reference may have gone away).
    pub fn observe(&self, secret: &PartialObjectMeta<Secret>) {
        let key = (secret.namespace().unwrap_or_default(), secret.name_any());
        let mut protected = self.protected.lock().expect("protected lock");
        if secret.finalizers().iter().any(|f| f == SECRET_FINALIZER) {
            protected.insert(key.clone());
            drop(protected);
            self.queue(key);
        } else {
            protected.remove(&key);
        }
    }

    /// Adds the finalizer to each referenced Secret that lacks it. Missing Secrets and Secrets
    /// already being deleted (no finalizer can be added then) are skipped.
    pub async fn protect(&self, client: &kube::Client, rm: &RedisMigration) -> Result<(), kube::Error> {
        let ns = rm.namespace().unwrap_or_default();
        let api: Api<PartialObjectMeta<Secret>> = Api::namespaced(client.clone(), &ns);
        for name in secret_names(rm).collect::<HashSet<_>>() {
            if self.protected.lock().expect("protected lock").contains(&(ns.clone(), name.to_owned())) {
                continue;
            }
            let Some(meta) = api.get_metadata_opt(name).await? else { continue };
            if meta.metadata.deletion_timestamp.is_some() || meta.finalizers().iter().any(|f| f == SECRET_FINALIZER) {
                continue;
            }
            let mut finalizers = meta.finalizers().to_vec();
            finalizers.push(SECRET_FINALIZER.to_owned());
            let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": meta.resource_version()}});
            match api.patch_metadata(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(patched) => {
                    let key = (ns.clone(), name.to_owned());
                    if let (Some(before), Some(after)) = (meta.resource_version(), patched.resource_version()) {
                        self.cache.metadata_patched(&key, &before, &after);
                    }
                    self.protected.lock().expect("protected lock").insert(key);
                }
                // Another reconcile protected it (or it changed) meanwhile: the next pass looks again.
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Queues the Secrets of a released resource for a check.
    pub fn released(&self, rm: &RedisMigration) {
        let ns = rm.namespace().unwrap_or_default();
        for name in secret_names(rm) {
            self.queue((ns.clone(), name.to_owned()));
        }
    }

    /// Queues a Secret for a check, unless it is queued or waiting for a recheck already (that check comes
    /// no later and reads the cache as it is then).
    fn queue(&self, key: SecretKey) {
        if self.queued.lock().expect("queued lock").insert(key.clone()) {
            let _ = self.sweeps.send(key);
        }
    }
}

/// Who still needs a Secret.
#[derive(Debug)]
enum Need {
    /// A resource that is not being deleted references it.
    InUse,
    /// Only resources being deleted reference it: check again soon.
    Releasing,
    /// Nobody.
    Free,
}

fn need(store: &Store<RedisMigration>, (ns, name): &SecretKey) -> Need {
    let mut need = Need::Free;
    for rm in store.state() {
        let live = rm.finalizers().iter().any(|f| f == FINALIZER) || rm.metadata.deletion_timestamp.is_none();
        if !live || rm.namespace().as_deref() != Some(ns.as_str()) || !secret_names(&rm).any(|n| n == name) {
            continue;
        }
        if rm.metadata.deletion_timestamp.is_none() {
            return Need::InUse;
        }
        need = Need::Releasing;
    }
    need
}

impl Guard {
    /// Removes the finalizer from queued Secrets that no live resource references. Runs until the
    /// queue closes; waits for the resource cache to be complete before deciding anything. A Secret
    /// queued again once its finalizer is gone (every released resource queues its Secrets) costs nothing.
    pub async fn sweep(
        &self,
        client: kube::Client,
        store: Store<RedisMigration>,
        mut queue: mpsc::UnboundedReceiver<SecretKey>,
    ) {
        // Store readiness wakes only one of its waiters (the controller waits on it too), so it is
        // polled again now and then rather than awaited once.
        loop {
            match tokio::time::timeout(Duration::from_millis(500), store.wait_until_ready()).await {
                Ok(Ok(())) => break,
                Ok(Err(_)) => return,
                Err(_) => {}
            }
        }
        while let Some(key) = queue.recv().await {
            self.queued.lock().expect("queued lock").remove(&key);
            let decision = need(&store, &key);
            tracing::debug!(namespace = key.0, secret = key.1, ?decision, "in-use check");
            match decision {
                Need::InUse => {}
                Need::Releasing => self.check_later(key, Duration::from_secs(1)),
                Need::Free => {
                    self.cache.forget(&key);
                    // Not carrying the finalizer, as far as the watch and this process's patches tell (the watch
                    // queues the Secret again when it shows one).
                    if !self.protected.lock().expect("protected lock").contains(&key) {
                        continue;
                    }
                    match unprotect(&client, &key).await {
                        Ok(()) => {
                            self.protected.lock().expect("protected lock").remove(&key);
                        }
                        Err(e) => {
                            tracing::debug!(namespace = key.0, secret = key.1, error = %e, "could not remove the in-use finalizer; retrying");
                            self.check_later(key, Duration::from_secs(2));
                        }
                    }
                }
            }
        }
    }

    fn check_later(&self, key: SecretKey, after: Duration) {
        if !self.queued.lock().expect("queued lock").insert(key.clone()) {
            return;
        }
        let retry = self.sweeps.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = retry.send(key);
        });
    }
}

async fn unprotect(client: &kube::Client, (ns, name): &SecretKey) -> Result<(), kube::Error> {
    let api: Api<PartialObjectMeta<Secret>> = Api::namespaced(client.clone(), ns);
    let Some(meta) = api.get_metadata_opt(name).await? else { return Ok(()) };
    if !meta.finalizers().iter().any(|f| f == SECRET_FINALIZER) {
        return Ok(());
    }
    let finalizers: Vec<&String> = meta.finalizers().iter().filter(|f| *f != SECRET_FINALIZER).collect();
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": meta.resource_version()}});
    api.patch_metadata(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    tracing::info!(
        namespace = ns,
        secret = name,
        "no resource needs the Secret any more: removed the in-use finalizer"
    );
    Ok(())
}

/// Names of the Secrets a resource references (credentials and Redis passwords).
pub fn secret_names(rm: &RedisMigration) -> impl Iterator<Item = &str> {
    let spec = &rm.spec;
    let passwords = [spec.source.as_deref(), Some(&spec.target)]
        .into_iter()
        .flatten()
        .filter_map(|e| e.password_secret_ref.as_ref().map(|r| r.name.as_str()));
    spec.credentials_secret_ref.as_ref().map(|r| r.name.as_str()).into_iter().chain(passwords)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{RedisMigrationSpec, SecretRef};

    fn resource(name: &str) -> RedisMigration {
        let spec = RedisMigrationSpec {
            credentials_secret_ref: Some(SecretRef { name: "dcs-credentials".into() }),
            ..serde_json::from_value(serde_json::json!({
                "region": "cn-north-4", "type": "BackupImport", "target": {"instanceId": "i"}
            }))
            .expect("a minimal spec")
        };
        let mut rm = RedisMigration::new(name, spec);
        rm.metadata.namespace = Some("team-a".into());
        rm
    }

    #[test]
    fn a_secret_released_by_many_resources_is_queued_for_one_check() {
        let (sweeps, mut queue) = mpsc::unbounded_channel();
        let guard = Guard::new(sweeps, Arc::new(SecretCache::default()));
        for i in 0..1000 {
            guard.released(&resource(&format!("rm-{i}")));
        }
        let key = ("team-a".to_owned(), "dcs-credentials".to_owned());
        assert_eq!(queue.try_recv().ok(), Some(key.clone()));
        assert!(queue.try_recv().is_err(), "one check covers every release made before it runs");
        guard.queued.lock().unwrap().remove(&key);
        guard.released(&resource("rm-late"));
        assert_eq!(queue.try_recv().ok(), Some(key), "a release after the check queues it again");
    }
}
