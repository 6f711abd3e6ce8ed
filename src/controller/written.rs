//! Statuses this process wrote that the RedisMigration cache may not show yet. A pass that starts before the
//! watch delivered the previous pass's status write would compute from the older status: a phase entered
//! again with a new transition time, one more write for nothing (seen in the API server's audit log). Only this
//! operator writes status, so what it wrote last is the truth until the cache shows it; a record goes as soon
//! as the cache does. More generally, a pass must not start from an object older than this process's last write
//! to it: it would clear the `create-pending` mark again, or add the finalizer with a stale resourceVersion and
//! loop on 409s (both seen in the API server's audit log on a loaded machine). `Written` keeps the version of
//! that write until the cache shows it; the watch event that brings it starts the next pass.
//!
//! It also keeps the `create-pending` marks this process wrote and sent no create after: a pass that finds
//! its own unsent mark knows that no create can have gone out for it, and creates as soon as a walk that began
//! after the mark found no task of that name, without the grace a mark of unknown history needs. The pass that
//! writes a mark can so give its slot back while the account's next walk comes. A restarted process remembers
//! no mark: it gives each the grace.

use crate::crd::{RedisMigration, RedisMigrationStatus};
use std::collections::HashMap;
use std::sync::Mutex;

/// The last status written per resource (by UID), until the cache shows it.
#[derive(Default)]
pub struct Written {
    by_uid: Mutex<HashMap<String, RedisMigrationStatus>>,
    /// The resourceVersion of this process's last write to each resource (by UID), until the cache shows it.
    versions: Mutex<HashMap<String, u64>>,
    /// The `create-pending` mark this process wrote to each resource (by UID) and sent no create after.
    unsent_marks: Mutex<HashMap<String, String>>,
}

/// A resourceVersion as the number it is in practice (etcd's revision); `None` when it is not one, and then the
/// cache is trusted as it is.
fn version(rm: &RedisMigration) -> Option<u64> {
    rm.metadata.resource_version.as_deref()?.parse().ok()
}

impl Written {
    /// Records a status just written to `rm`.
    pub fn record(&self, rm: &RedisMigration, status: &RedisMigrationStatus) {
        if let Some(uid) = rm.metadata.uid.clone() {
            self.by_uid.lock().expect("written lock").insert(uid, status.clone());
        }
    }

    /// The status `rm` has on the server as far as this process knows: the one it wrote last, when the
    /// cache does not show that yet.
    pub fn current(&self, rm: &RedisMigration) -> RedisMigrationStatus {
        let cached = rm.status.clone().unwrap_or_default();
        let Some(uid) = rm.metadata.uid.as_deref() else { return cached };
        let mut by_uid = self.by_uid.lock().expect("written lock");
        match by_uid.get(uid) {
            Some(written) if *written != cached => written.clone(),
            Some(_) => {
                by_uid.remove(uid);
                cached
            }
            None => cached,
        }
    }

    /// Follows the cache: a record it shows is no longer needed.
    pub fn observe(&self, rm: &RedisMigration) {
        let Some(uid) = rm.metadata.uid.as_deref() else { return };
        let mut by_uid = self.by_uid.lock().expect("written lock");
        if by_uid.get(uid).is_some_and(|written| Some(written) == rm.status.as_ref()) {
            by_uid.remove(uid);
        }
        drop(by_uid);
        self.is_behind(rm);
    }

    /// Records a write to `rm` that made `updated` (not the finalizer's removal: the object goes, and its last
    /// version would stay here).
    pub fn wrote(&self, rm: &RedisMigration, updated: &RedisMigration) {
        if let (Some(uid), Some(version)) = (rm.metadata.uid.clone(), version(updated)) {
            let mut versions = self.versions.lock().expect("versions lock");
            let at = versions.entry(uid).or_insert(version);
            *at = (*at).max(version);
        }
    }

    /// True when `rm` is older than this process's last write to it (the record goes once it is not).
    pub fn is_behind(&self, rm: &RedisMigration) -> bool {
        let Some(uid) = rm.metadata.uid.as_deref() else { return false };
        let mut versions = self.versions.lock().expect("versions lock");
        let Some(&at) = versions.get(uid) else { return false };
        if version(rm).is_some_and(|v| v < at) {
            return true;
        }
        versions.remove(uid);
        false
    }

    /// Records the `create-pending` mark `value` just written to `rm`, before any create for it.
    pub fn marked(&self, rm: &RedisMigration, value: &str) {
        if let Some(uid) = rm.metadata.uid.clone() {
            self.unsent_marks.lock().expect("marks lock").insert(uid, value.to_owned());
        }
    }

    /// True when `value` is the mark this process wrote to `rm` and no create went out after it.
    pub fn mark_is_unsent(&self, rm: &RedisMigration, value: &str) -> bool {
        let Some(uid) = rm.metadata.uid.as_deref() else { return false };
        self.unsent_marks.lock().expect("marks lock").get(uid).is_some_and(|mark| mark == value)
    }

    /// Forgets `rm`'s unsent mark: a create is about to go out, or the mark is cleared, or the resource goes.
    pub fn mark_spent(&self, rm: &RedisMigration) {
        if let Some(uid) = rm.metadata.uid.as_deref() {
            self.unsent_marks.lock().expect("marks lock").remove(uid);
        }
    }

    /// Records held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_uid.lock().expect("written lock").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{MigrationType, Phase};

    fn resource(phase: Option<Phase>) -> RedisMigration {
        let mut rm = RedisMigration::new("m", crate::controller::decision::tests::spec(MigrationType::BackupImport));
        rm.metadata.uid = Some("u1".into());
        rm.metadata.resource_version = Some("10".into());
        rm.status = phase.map(|phase| RedisMigrationStatus { phase: Some(phase), ..Default::default() });
        rm
    }

    #[test]
    fn a_pass_on_a_cache_behind_its_own_write_starts_from_what_was_written() {
        let written = Written::default();
        let provisioning = RedisMigrationStatus { phase: Some(Phase::Provisioning), ..Default::default() };
        written.record(&resource(Some(Phase::Creating)), &provisioning);
        assert_eq!(written.current(&resource(Some(Phase::Creating))), provisioning);
        written.observe(&resource(Some(Phase::Provisioning)));
        assert_eq!(written.len(), 0, "the cache shows the write: the record goes");
        assert_eq!(written.current(&resource(Some(Phase::Creating))).phase, Some(Phase::Creating));
    }

    #[test]
    fn a_mark_is_known_unsent_until_a_create_goes_out_and_only_with_the_value_written() {
        let written = Written::default();
        let rm = resource(None);
        assert!(!written.mark_is_unsent(&rm, "2026-12-01T18:00:00Z"), "a mark this process did not write");
        written.marked(&rm, "2026-12-01T18:00:00Z");
        assert!(written.mark_is_unsent(&rm, "2026-12-01T18:00:00Z"));
        assert!(!written.mark_is_unsent(&rm, "2026-12-01T18:00:01Z"), "another value is someone else's mark");
        let mut other = resource(None);
        other.metadata.uid = Some("u2".into());
        assert!(!written.mark_is_unsent(&other, "2026-12-01T18:00:00Z"), "another resource's mark");
        written.mark_spent(&rm);
        assert!(!written.mark_is_unsent(&rm, "2026-12-01T18:00:00Z"), "a create went out");
    }

    #[test]
    fn a_computed_status_equals_itself_after_a_trip_through_the_api_server() {
        let spec = crate::controller::decision::tests::spec(MigrationType::BackupImport);
        let prior = RedisMigrationStatus::default();
        let remote = crate::controller::observed::Remote::NotLookedUp;
        let mut facts = crate::controller::status::tests::facts(&spec, &prior, &remote);
        facts.now = "2026-11-23T12:00:00.123456789Z".parse().unwrap();
        let status = crate::controller::status::compute(&facts);
        let wire: RedisMigrationStatus = serde_json::from_value(serde_json::to_value(&status).unwrap()).unwrap();
        assert_eq!(wire, status, "or the record of a write would never be dropped");
    }

    #[test]
    fn a_record_the_cache_already_shows_is_dropped_by_the_next_pass() {
        let written = Written::default();
        let creating = RedisMigrationStatus { phase: Some(Phase::Creating), ..Default::default() };
        written.record(&resource(None), &creating);
        assert_eq!(written.current(&resource(Some(Phase::Creating))), creating);
        assert_eq!(written.len(), 0);
    }

    #[test]
    fn a_cached_object_older_than_this_process_s_last_write_is_behind_until_the_cache_shows_the_write() {
        let written = Written::default();
        let at = |version: &str| {
            let mut rm = resource(None);
            rm.metadata.resource_version = Some(version.into());
            rm
        };
        written.wrote(&at("10"), &at("13"));
        written.wrote(&at("10"), &at("12"));
        assert!(written.is_behind(&at("12")), "the latest write counts");
        written.observe(&at("12"));
        assert!(written.is_behind(&at("12")), "an older event keeps the record");
        written.observe(&at("13"));
        assert!(!written.is_behind(&at("12")), "the cache showed the write: the record is gone");
        written.wrote(&at("10"), &at("12"));
        assert!(!written.is_behind(&at("opaque")), "a version that is not a number: the cache is trusted");
        assert!(!written.is_behind(&at("11")), "and the record goes");
    }
}
