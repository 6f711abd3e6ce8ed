//! Which namespaces may use the operator's default credentials (design.md §2, Tenancy): only those labelled
//! `dcs.migration.io/default-credentials: "true"`. Elsewhere a resource without its own credentials gets a
//! credentials error and makes no DCS call, so a namespace user cannot borrow the operator's key. Namespaces are
//! watched by metadata; a label change wakes the resources of that namespace that use the default credentials, so
//! it takes effect at once.

use crate::crd::RedisMigration;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, ResourceExt};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The label by which a namespace opts in to the operator's default credentials (value `"true"`).
pub const LABEL_DEFAULT_CREDENTIALS: &str = "dcs.migration.io/default-credentials";
/// How long a reconcile waits for the namespace watch's first complete list before saying the labels are unknown.
const SYNC_WAIT: Duration = Duration::from_secs(5);

/// The namespaces that opted in, as the namespace watch last saw them. Clones share the state.
#[derive(Clone)]
pub struct Tenancy {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// True once the watch has listed every namespace.
    synced: watch::Sender<bool>,
}

#[derive(Default)]
struct State {
    opted_in: HashSet<String>,
    /// The opted-in namespaces of a list in progress (between `Init` and `InitDone`).
    listing: Option<HashSet<String>>,
}

/// Namespaces whose decision may have changed with a watch event.
#[derive(Debug, PartialEq, Eq)]
pub enum Changed {
    /// Every namespace (the first complete list: reconciles before it were told the labels were unknown).
    All,
    Namespaces(Vec<String>),
}

/// The namespace watch has not listed the namespaces yet.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the labels of namespace {namespace} are not known yet (the operator watches namespaces to read them)")]
pub struct LabelsUnknown {
    pub namespace: String,
}

impl Default for Tenancy {
    fn default() -> Self {
        let inner = Inner { state: Mutex::new(State::default()), synced: watch::Sender::new(false) };
        Self { inner: Arc::new(inner) }
    }
}

impl std::fmt::Debug for Tenancy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.inner.state.lock().expect("tenancy lock");
        f.debug_struct("Tenancy")
            .field("opted_in", &state.opted_in)
            .field("synced", &*self.inner.synced.borrow())
            .finish()
    }
}

/// True when the namespace carries `dcs.migration.io/default-credentials: "true"`.
fn opted_in(namespace: &PartialObjectMeta<Namespace>) -> bool {
    namespace.labels().get(LABEL_DEFAULT_CREDENTIALS).is_some_and(|v| v == "true")
}

impl Tenancy {
    /// Whether resources of `namespace` may use the operator's default credentials. Waits a few seconds for the
    /// namespace watch's first list when it has not completed yet.
    pub async fn allows_default_credentials(&self, namespace: &str) -> Result<bool, LabelsUnknown> {
        self.allows_within(namespace, SYNC_WAIT).await
    }

    async fn allows_within(&self, namespace: &str, wait: Duration) -> Result<bool, LabelsUnknown> {
        let mut synced = self.inner.synced.subscribe();
        match tokio::time::timeout(wait, synced.wait_for(|s| *s)).await {
            Ok(Ok(_)) => Ok(self.inner.state.lock().expect("tenancy lock").opted_in.contains(namespace)),
            _ => Err(LabelsUnknown { namespace: namespace.to_owned() }),
        }
    }

    /// Records one event of the namespace watch; returns the namespaces whose decision may have changed.
    pub fn apply(&self, event: Event<PartialObjectMeta<Namespace>>) -> Changed {
        let mut state = self.inner.state.lock().expect("tenancy lock");
        match event {
            Event::Init => {
                state.listing = Some(HashSet::new());
                Changed::Namespaces(Vec::new())
            }
            Event::InitApply(ns) => {
                if opted_in(&ns) {
                    state.listing.get_or_insert_default().insert(ns.name_any());
                }
                Changed::Namespaces(Vec::new())
            }
            Event::InitDone => {
                let listed = state.listing.take().unwrap_or_default();
                let previous = std::mem::replace(&mut state.opted_in, listed);
                drop(state);
                if !self.inner.synced.send_replace(true) {
                    return Changed::All;
                }
                let state = self.inner.state.lock().expect("tenancy lock");
                Changed::Namespaces(previous.symmetric_difference(&state.opted_in).cloned().collect())
            }
            Event::Apply(ns) => {
                let name = ns.name_any();
                let changed =
                    if opted_in(&ns) { state.opted_in.insert(name.clone()) } else { state.opted_in.remove(&name) };
                Changed::Namespaces(if changed { vec![name] } else { Vec::new() })
            }
            Event::Delete(ns) => {
                let name = ns.name_any();
                Changed::Namespaces(if state.opted_in.remove(&name) { vec![name] } else { Vec::new() })
            }
        }
    }
}

/// True when the resource would use the operator's default credentials.
fn uses_default_credentials(rm: &RedisMigration) -> bool {
    rm.spec.credentials_secret_ref.is_none()
}

/// The resources to wake after a change: those using the default credentials in the namespaces concerned.
fn affected(store: &Store<RedisMigration>, changed: &Changed) -> Vec<ObjectRef<RedisMigration>> {
    let concerned = |ns: Option<String>| match changed {
        Changed::All => true,
        Changed::Namespaces(names) => ns.is_some_and(|ns| names.contains(&ns)),
    };
    store
        .state()
        .iter()
        .filter(|rm| uses_default_credentials(rm) && concerned(rm.namespace()))
        .map(|rm| ObjectRef::from_obj(&**rm))
        .collect()
}

/// Watches the namespaces' metadata (only `watch_namespace` when set, so that a ClusterRole limited to that name
/// suffices), keeps `tenancy` current, and wakes the resources a label change concerns.
pub async fn watch(
    client: kube::Client,
    watch_namespace: Option<String>,
    tenancy: Tenancy,
    store: Store<RedisMigration>,
    wake: mpsc::UnboundedSender<ObjectRef<RedisMigration>>,
) {
    let mut config = watcher::Config::default();
    if let Some(ns) = &watch_namespace {
        config = config.fields(&format!("metadata.name={ns}"));
    }
    let namespaces: Api<PartialObjectMeta<Namespace>> = Api::all(client);
    let mut events = std::pin::pin!(watcher::watcher(namespaces, config).default_backoff());
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => {
                let changed = tenancy.apply(event);
                if changed == Changed::Namespaces(Vec::new()) {
                    continue;
                }
                tracing::debug!(?changed, "namespace opt-in to the default credentials changed");
                for object in affected(&store, &changed) {
                    if wake.send(object).is_err() {
                        return;
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "watching namespaces failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn namespace(name: &str, label: Option<&str>) -> PartialObjectMeta<Namespace> {
        let labels = label.map(|v| [(LABEL_DEFAULT_CREDENTIALS.to_owned(), v.to_owned())].into());
        PartialObjectMeta {
            metadata: ObjectMeta { name: Some(name.into()), labels, ..Default::default() },
            ..Default::default()
        }
    }

    fn listed(tenancy: &Tenancy, namespaces: Vec<PartialObjectMeta<Namespace>>) -> Changed {
        tenancy.apply(Event::Init);
        for ns in namespaces {
            tenancy.apply(Event::InitApply(ns));
        }
        tenancy.apply(Event::InitDone)
    }

    #[tokio::test]
    async fn only_namespaces_labelled_true_may_use_the_default_credentials() {
        let tenancy = Tenancy::default();
        let changed = listed(
            &tenancy,
            vec![namespace("team-a", Some("true")), namespace("team-b", Some("yes")), namespace("team-c", None)],
        );
        assert_eq!(changed, Changed::All, "the first list concerns every namespace");
        assert_eq!(tenancy.allows_default_credentials("team-a").await, Ok(true));
        assert_eq!(tenancy.allows_default_credentials("team-b").await, Ok(false));
        assert_eq!(tenancy.allows_default_credentials("team-c").await, Ok(false));
        assert_eq!(tenancy.allows_default_credentials("unknown").await, Ok(false));
    }

    #[tokio::test]
    async fn a_label_change_names_its_namespace_and_takes_effect() {
        let tenancy = Tenancy::default();
        listed(&tenancy, vec![namespace("team-a", None)]);
        assert_eq!(
            tenancy.apply(Event::Apply(namespace("team-a", Some("true")))),
            Changed::Namespaces(vec!["team-a".into()])
        );
        assert_eq!(tenancy.allows_default_credentials("team-a").await, Ok(true));
        assert_eq!(tenancy.apply(Event::Apply(namespace("team-a", Some("true")))), Changed::Namespaces(vec![]));
        assert_eq!(
            tenancy.apply(Event::Apply(namespace("team-a", Some("false")))),
            Changed::Namespaces(vec!["team-a".into()])
        );
        assert_eq!(tenancy.allows_default_credentials("team-a").await, Ok(false));
        tenancy.apply(Event::Apply(namespace("team-a", Some("true"))));
        assert_eq!(tenancy.apply(Event::Delete(namespace("team-a", None))), Changed::Namespaces(vec!["team-a".into()]));
        assert_eq!(tenancy.allows_default_credentials("team-a").await, Ok(false));
    }

    #[tokio::test]
    async fn a_relist_reports_the_namespaces_that_changed_while_the_watch_was_away() {
        let tenancy = Tenancy::default();
        listed(&tenancy, vec![namespace("stays", Some("true")), namespace("leaves", Some("true"))]);
        let mut changed =
            match listed(&tenancy, vec![namespace("stays", Some("true")), namespace("joins", Some("true"))]) {
                Changed::Namespaces(names) => names,
                Changed::All => panic!("only the first list concerns every namespace"),
            };
        changed.sort();
        assert_eq!(changed, ["joins", "leaves"]);
    }

    #[tokio::test]
    async fn before_the_first_list_the_labels_are_unknown() {
        let tenancy = Tenancy::default();
        tenancy.apply(Event::Init);
        tenancy.apply(Event::InitApply(namespace("team-a", Some("true"))));
        assert_eq!(
            tenancy.allows_within("team-a", Duration::from_millis(20)).await,
            Err(LabelsUnknown { namespace: "team-a".into() })
        );
    }
}
