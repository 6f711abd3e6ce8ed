//! Deterministic remote task names: the operator finds its own task again by name after a
//! crash, so the name must come from the resource alone (design.md §3, `taskName`).

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
