//! Deterministic remote task names: the operator finds its own task again by name after a
//! crash, so the name must come from the resource alone (design.md §3, `taskName`). A name the
//! user chose may collide with another team's task, so the description the operator writes on
//! create ends with a marker of the resource's UID, and only a task carrying it is adopted by name.

use sha2::{Digest, Sha256};

/// Longest task name the API accepts.
pub const MAX_TASK_NAME: usize = 64;

/// `rmig-<namespace>-<name>` with every character outside `[A-Za-z0-9_-]` turned into `-`, cut
/// so that the whole with the suffix `-<first 8 hex of sha256(uid)>` is at most 64 characters.
pub fn default_task_name(namespace: &str, name: &str, uid: &str) -> String {
    let digest = hex::encode(Sha256::digest(uid.as_bytes()));
    let suffix = format!("-{}", &digest[..8]);
    let stem: String = format!("rmig-{namespace}-{name}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '-' })
        .take(MAX_TASK_NAME - suffix.len())
        .collect();
    format!("{stem}{suffix}")
}

/// Longest task description the operator sends, in characters (the CRD's bound on `spec.description`).
pub const MAX_DESCRIPTION: usize = 1024;
/// Longest UID a marker carries (Kubernetes UIDs are 36-character UUIDs).
const MAX_MARKER_UID: usize = 64;

/// The marker of the resource with this UID: `[rmig:<uid>]`, at most 71 characters.
fn marker(uid: &str) -> String {
    let uid: String = uid.chars().take(MAX_MARKER_UID).collect();
    format!("[rmig:{uid}]")
}

/// The description sent on create: the user's description, cut if need be, then ` [rmig:<uid>]`; at most
/// `MAX_DESCRIPTION` characters, the marker always whole and always last.
pub fn description_with_marker(description: Option<&str>, uid: &str) -> String {
    let marker = marker(uid);
    let user = description.map(str::trim_end).unwrap_or_default();
    if user.is_empty() {
        return marker;
    }
    let room = MAX_DESCRIPTION - marker.chars().count() - 1;
    let user: String = user.chars().take(room).collect();
    format!("{} {marker}", user.trim_end())
}

/// True when a remote task's description ends with the marker of the resource with this UID: the task was
/// created for it. Only the end counts, so a description that quotes another resource's marker earlier (text a
/// user wrote) proves nothing.
pub fn carries_marker(remote_description: Option<&str>, uid: &str) -> bool {
    remote_description.is_some_and(|d| d.trim_end().ends_with(&marker(uid)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0b0c7a4e-1111-2222-3333-444455556666";

    #[test]
    fn default_name_is_stable_valid_and_unique_per_uid() {
        let a = default_task_name("team-a", "orders.cache", "0b0c7a4e-1111-2222-3333-444455556666");
        assert_eq!(a, default_task_name("team-a", "orders.cache", "0b0c7a4e-1111-2222-3333-444455556666"));
        assert!(a.starts_with("rmig-team-a-orders-cache-"), "{a}");
        assert_ne!(a, default_task_name("team-a", "orders.cache", "another-uid"));
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
    }

    #[test]
    fn long_names_are_cut_to_64_characters_keeping_the_uid_suffix() {
        let long = "n".repeat(253);
        let name = default_task_name(&"x".repeat(63), &long, "uid");
        assert_eq!(name.len(), MAX_TASK_NAME);
        let digest = hex::encode(Sha256::digest(b"uid"));
        assert!(name.ends_with(&digest[..8]));
    }

    #[test]
    fn the_description_sent_on_create_is_the_users_followed_by_the_uid_marker() {
        let d = description_with_marker(Some("orders cache to DCS"), UID);
        assert_eq!(d, format!("orders cache to DCS [rmig:{UID}]"));
        assert!(carries_marker(Some(&d), UID));
        assert_eq!(description_with_marker(None, UID), format!("[rmig:{UID}]"));
        assert_eq!(description_with_marker(Some("  "), UID), format!("[rmig:{UID}]"));
    }

    #[test]
    fn a_long_description_is_cut_so_that_the_whole_fits_with_the_marker_last() {
        let long = "é".repeat(2000);
        let d = description_with_marker(Some(&long), UID);
        assert_eq!(d.chars().count(), MAX_DESCRIPTION);
        assert!(d.ends_with(&format!(" [rmig:{UID}]")));
        assert!(carries_marker(Some(&d), UID));
        let exact = "x".repeat(MAX_DESCRIPTION);
        assert_eq!(description_with_marker(Some(&exact), UID).chars().count(), MAX_DESCRIPTION);
    }

    #[test]
    fn an_overlong_uid_gives_a_bounded_marker() {
        let uid = "u".repeat(500);
        let d = description_with_marker(Some("x"), &uid);
        assert!(d.chars().count() <= 2 + MAX_MARKER_UID + 7, "{d}");
        assert!(carries_marker(Some(&d), &uid));
    }

    #[test]
    fn a_task_without_this_resources_marker_at_the_end_is_not_its_own() {
        assert!(!carries_marker(None, UID));
        assert!(!carries_marker(Some("made elsewhere"), UID));
        assert!(!carries_marker(Some("[rmig:another-uid]"), UID));
        let quoted = description_with_marker(Some(&format!("see [rmig:{UID}]")), "attacker-uid");
        assert!(!carries_marker(Some(&quoted), UID), "a marker quoted in the user's text proves nothing");
        assert!(carries_marker(Some(&quoted), "attacker-uid"));
        assert!(carries_marker(Some(&format!("x [rmig:{UID}]  ")), UID), "trailing blanks the API may add");
    }
}
