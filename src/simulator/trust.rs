//! Trust lists: which subjects (`system:serviceaccount:NS:NAME`) an identity provider (by IdP id) or
//! an agency (by URN) accepts. A pattern ending in `*` matches every subject with that prefix.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A `--trust-idp` / `--trust-agency` value that is not `ID=SUB`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("a trust entry must be ID=SUBJECT with neither part empty")]
pub struct TrustEntryError;

/// Subject patterns by IdP id or agency URN. In JSON (`PUT /_sim/trust`) a value is one pattern or
/// a list of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trust {
    #[serde(default, deserialize_with = "patterns")]
    pub idp: BTreeMap<String, Vec<String>>,
    #[serde(default, deserialize_with = "patterns")]
    pub agency: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

fn patterns<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
    let raw = BTreeMap::<String, OneOrMany>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| match v {
            OneOrMany::One(p) => (k, vec![p]),
            OneOrMany::Many(ps) => (k, ps),
        })
        .collect())
}

/// Splits `ID=SUBJECT` (the subject may itself contain `=`).
pub fn parse_entry(entry: &str) -> Result<(String, String), TrustEntryError> {
    match entry.split_once('=') {
        Some((id, subject)) if !id.is_empty() && !subject.is_empty() => Ok((id.to_owned(), subject.to_owned())),
        _ => Err(TrustEntryError),
    }
}

fn matches(pattern: &str, subject: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => subject.starts_with(prefix),
        None => pattern == subject,
    }
}

fn trusted(list: &BTreeMap<String, Vec<String>>, id: &str, subject: &str) -> bool {
    list.get(id).is_some_and(|patterns| patterns.iter().any(|p| matches(p, subject)))
}

impl Trust {
    /// Adds one `subject` pattern for IdP `id`.
    pub fn add_idp(&mut self, id: String, subject: String) {
        self.idp.entry(id).or_default().push(subject);
    }

    /// Adds one `subject` pattern for agency `urn`.
    pub fn add_agency(&mut self, urn: String, subject: String) {
        self.agency.entry(urn).or_default().push(subject);
    }

    /// True when IdP `id` accepts `subject`.
    pub fn idp_trusts(&self, id: &str, subject: &str) -> bool {
        trusted(&self.idp, id, subject)
    }

    /// True when agency `urn` accepts `subject`.
    pub fn agency_trusts(&self, urn: &str, subject: &str) -> bool {
        trusted(&self.agency, urn, subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_suffix_matches_every_subject_with_that_prefix_and_nothing_else_does() {
        let mut trust = Trust::default();
        trust.add_idp("idp".into(), "system:serviceaccount:payments:*".into());
        trust.add_agency("urn:a".into(), "system:serviceaccount:ops:migrator".into());
        assert!(trust.idp_trusts("idp", "system:serviceaccount:payments:anything"));
        assert!(!trust.idp_trusts("idp", "system:serviceaccount:other:anything"));
        assert!(!trust.idp_trusts("other-idp", "system:serviceaccount:payments:x"));
        assert!(trust.agency_trusts("urn:a", "system:serviceaccount:ops:migrator"));
        assert!(!trust.agency_trusts("urn:a", "system:serviceaccount:ops:migrator2"));
    }

    #[test]
    fn trust_json_takes_one_pattern_or_a_list() {
        let trust: Trust = serde_json::from_str(r#"{"idp": {"i": "s1"}, "agency": {"u": ["s2", "s3*"]}}"#).unwrap();
        assert_eq!(trust.idp["i"], vec!["s1"]);
        assert!(trust.agency_trusts("u", "s3x"));
        assert!(serde_json::from_str::<Trust>(r#"{"idps": {}}"#).is_err());
    }

    #[test]
    fn entries_split_at_the_first_equals_sign() {
        assert_eq!(parse_entry("idp=system:a=b"), Ok(("idp".into(), "system:a=b".into())));
        assert_eq!(parse_entry("=sub"), Err(TrustEntryError));
        assert_eq!(parse_entry("idp"), Err(TrustEntryError));
    }
}
