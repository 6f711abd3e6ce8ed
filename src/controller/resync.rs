//! The resync of resources whose task ended. Such a resource needs one look per resync interval and nothing
//! else, so it holds no entry in kube-runtime's scheduler (two copies of its reference, identity and version
//! included, about 0.65 KB each, kept for as long as the resource lives): its pass ends with
//! `Action::await_change`, and the resync timer (`wake_due`) wakes it when its look is due. At 10,000 mostly
//! finished resources that was a tenth of the operator's memory.

use crate::crd::RedisMigration;
use kube::runtime::reflector::{ObjectRef, Store};
use rand::Rng;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often the resync timer looks for due resources (resyncs are at least 10 minutes apart).
const TIMER: Duration = Duration::from_secs(1);

/// Where a resource whose task ended stands with its resync (`Resyncs::check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resync {
    /// Leave it alone: the timer wakes it when its look is due.
    Wait,
    /// Its resync look is due.
    Due,
}

/// One resource whose task ended.
#[derive(Debug, Clone, Copy)]
struct Ended {
    /// When its next look is due.
    due: Instant,
    /// The timer woke it for that look (it is not woken again until the look is in).
    woken: bool,
}

/// When each resource whose task ended is next due for a look.
pub struct Resyncs {
    interval: Duration,
    ended: Mutex<HashMap<ObjectRef<RedisMigration>, Ended>>,
}

impl Resyncs {
    /// Resyncs every `interval`, spread over +20 % so that resources that ended together do not resync together.
    pub fn new(interval: Duration) -> Self {
        Self { interval, ended: Mutex::new(HashMap::new()) }
    }

    /// Whether the resource's resync look is due (at most one per resync, whatever wakes it), or how long to
    /// leave it alone. The first pass of this process over it counts as a look, so that a restart with
    /// thousands of ended resources makes no DCS call and no write for them until their resync. It stays due
    /// until `looked`.
    pub fn check(&self, key: &ObjectRef<RedisMigration>, now: Instant) -> Resync {
        let mut ended = self.ended.lock().expect("resyncs lock");
        let due = match ended.get(key) {
            Some(known) => known.due,
            None => {
                let due = now + self.next();
                ended.insert(compact(key), Ended { due, woken: false });
                due
            }
        };
        if due > now { Resync::Wait } else { Resync::Due }
    }

    /// The resource's resync look is in: the next one is a resync from now.
    pub fn looked(&self, key: &ObjectRef<RedisMigration>, now: Instant) {
        let next = Ended { due: now + self.next(), woken: false };
        self.ended.lock().expect("resyncs lock").insert(compact(key), next);
    }

    /// The resource is going: forget it.
    pub fn forget(&self, key: &ObjectRef<RedisMigration>) {
        self.ended.lock().expect("resyncs lock").remove(key);
    }

    /// The resources whose look is due and that were not woken for it yet, now marked woken. Resources
    /// `present` no longer knows (deleted without a pass of their own) are forgotten.
    fn take_due(
        &self,
        now: Instant,
        present: impl Fn(&ObjectRef<RedisMigration>) -> bool,
    ) -> Vec<ObjectRef<RedisMigration>> {
        let mut ended = self.ended.lock().expect("resyncs lock");
        let mut due = Vec::new();
        ended.retain(|key, entry| {
            if entry.woken || entry.due > now {
                return true;
            }
            if !present(key) {
                return false;
            }
            entry.woken = true;
            due.push(key.clone());
            true
        });
        due
    }

    /// Wakes each resource when its resync look is due, until the controller stops listening.
    pub async fn wake_due(
        &self,
        store: Store<RedisMigration>,
        wakes: mpsc::UnboundedSender<ObjectRef<RedisMigration>>,
    ) {
        let mut timer = tokio::time::interval(TIMER);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            timer.tick().await;
            for key in self.take_due(Instant::now(), |key| store.get(key).is_some()) {
                if wakes.send(key).is_err() {
                    return;
                }
            }
        }
    }

    fn next(&self) -> Duration {
        self.interval.mul_f64(rand::rng().random_range(1.0..1.2))
    }

    /// Resources held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.ended.lock().expect("resyncs lock").len()
    }
}

/// The reference without the resource's identity and version: keys compare on kind, namespace and name only,
/// and the rest is two more allocations per resource.
fn compact(key: &ObjectRef<RedisMigration>) -> ObjectRef<RedisMigration> {
    let name = ObjectRef::new(&key.name);
    match key.namespace.as_deref() {
        Some(namespace) => name.within(namespace),
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ObjectRef<RedisMigration> {
        let mut key = ObjectRef::new(name).within("ns");
        key.extra.uid = Some("u".into());
        key
    }

    #[test]
    fn the_first_pass_counts_as_a_look_and_the_timer_wakes_the_resource_once_when_due() {
        let resyncs = Resyncs::new(Duration::from_secs(600));
        let start = Instant::now();
        assert_eq!(resyncs.check(&key("a"), start), Resync::Wait, "the first pass is a look");
        assert_eq!(resyncs.take_due(start + Duration::from_secs(599), |_| true), vec![]);
        let later = start + Duration::from_secs(721);
        assert_eq!(resyncs.take_due(later, |_| true), vec![key("a")]);
        assert_eq!(resyncs.take_due(later, |_| true), vec![], "woken once, until the look is in");
        assert_eq!(resyncs.check(&key("a"), later), Resync::Due, "due until the look is in");
        resyncs.looked(&key("a"), later);
        assert_eq!(resyncs.check(&key("a"), later), Resync::Wait);
        assert_eq!(resyncs.take_due(later + Duration::from_secs(721), |_| true), vec![key("a")], "and the next");
    }

    #[test]
    fn a_resource_gone_without_a_pass_is_forgotten_when_due() {
        let resyncs = Resyncs::new(Duration::from_secs(600));
        let start = Instant::now();
        resyncs.check(&key("a"), start);
        resyncs.check(&key("b"), start);
        let due = resyncs.take_due(start + Duration::from_secs(721), |key| key.name == "b");
        assert_eq!(due, vec![key("b")]);
        assert_eq!(resyncs.len(), 1);
        resyncs.forget(&key("b"));
        assert_eq!(resyncs.len(), 0);
    }

    #[test]
    fn keys_are_held_without_identity_or_version() {
        let resyncs = Resyncs::new(Duration::from_secs(600));
        resyncs.check(&key("a"), Instant::now());
        let held = resyncs.take_due(Instant::now() + Duration::from_secs(721), |_| true);
        assert_eq!(held[0].extra.uid, None);
    }
}
