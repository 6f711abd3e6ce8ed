//! A `ListMigrationTask` page decoded row by row, keeping only the rows its reader wants. A page holds up to 1,000
//! rows of ~20 strings each: decoded whole it was ~1.3 MB, held while the walk picked its rows, once per account
//! walking at that moment (2.9 MB of the 18.5 MB heap peak of the 3,000-resource benchmark on 3 accounts). Here a
//! row the reader does not want is dropped as soon as it is read, so a page costs the rows kept.

use super::lenient;
use super::model::{MigrationTaskPage, MigrationTaskSummary};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// The rows of one page that were kept, and how many the page had.
#[derive(Debug, Default, PartialEq)]
pub struct KeptPage {
    /// Total number of tasks that match, over all pages (as `MigrationTaskPage::count`).
    pub count: Option<u64>,
    /// Rows the page had, kept or not (a short page is the last one).
    pub rows: usize,
    /// The rows kept, in the page's order.
    pub migration_tasks: Vec<MigrationTaskSummary>,
}

impl From<KeptPage> for MigrationTaskPage {
    fn from(page: KeptPage) -> Self {
        Self { count: page.count, migration_tasks: page.migration_tasks }
    }
}

/// Decodes a page as `MigrationTaskPage` does (lenient `count`, `null` rows, unknown fields ignored), keeping the
/// rows `keep` accepts.
pub struct PageSeed<F>(pub F);

impl<'de, F: Fn(&MigrationTaskSummary) -> bool> DeserializeSeed<'de> for PageSeed<F> {
    type Value = KeptPage;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<KeptPage, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, F: Fn(&MigrationTaskSummary) -> bool> Visitor<'de> for PageSeed<F> {
    type Value = KeptPage;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a page of migration tasks")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeptPage, A::Error> {
        let mut page = KeptPage::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "count" => page.count = map.next_value::<Count>()?.0,
                "migration_tasks" => map.next_value_seed(Rows { keep: &self.0, page: &mut page })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(page)
    }
}

#[derive(Deserialize)]
struct Count(#[serde(deserialize_with = "lenient::count")] Option<u64>);

/// The `migration_tasks` array (or `null`), read into `page` one row at a time.
struct Rows<'a, F> {
    keep: &'a F,
    page: &'a mut KeptPage,
}

impl<'de, F: Fn(&MigrationTaskSummary) -> bool> DeserializeSeed<'de> for Rows<'_, F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, F: Fn(&MigrationTaskSummary) -> bool> Visitor<'de> for Rows<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of migration tasks or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(row) = seq.next_element::<MigrationTaskSummary>()? {
            self.page.rows += 1;
            if (self.keep)(&row) {
                self.page.migration_tasks.push(row);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(body: &str, keep: impl Fn(&MigrationTaskSummary) -> bool) -> KeptPage {
        PageSeed(keep).deserialize(&mut serde_json::Deserializer::from_str(body)).unwrap()
    }

    #[test]
    fn a_page_keeps_the_wanted_rows_and_counts_them_all() {
        let body = r#"{"count": "3", "migration_tasks": [
            {"task_id": "a", "task_name": "one", "status": "RUNNING"},
            {"task_id": "b", "task_name": "two", "status": "SUCCESS", "unknown": {"x": [1]}},
            {"task_id": "c", "status": "FAILED"}
        ], "extra": [1, 2]}"#;
        let page = decode(body, |row| row.task_id.as_deref() != Some("b"));
        assert_eq!(page.count, Some(3));
        assert_eq!(page.rows, 3);
        let ids: Vec<_> = page.migration_tasks.iter().map(|r| r.task_id.as_deref().unwrap()).collect();
        assert_eq!(ids, ["a", "c"]);
    }

    #[test]
    fn a_page_kept_whole_decodes_as_the_plain_page_does() {
        let body = r#"{"migration_tasks": [{"task_id": 7, "task_name": "n", "status": "MIGRATING",
            "supported_features": null, "released_at": 12}], "count": 1}"#;
        let plain: MigrationTaskPage = serde_json::from_str(body).unwrap();
        assert_eq!(MigrationTaskPage::from(decode(body, |_| true)), plain);
    }

    #[test]
    fn a_page_without_rows_is_empty() {
        for body in [r#"{"count": 0, "migration_tasks": null}"#, r#"{"count": 0}"#, "{}"] {
            let page = decode(body, |_| true);
            assert_eq!((page.rows, page.migration_tasks.len()), (0, 0), "{body}");
        }
    }
}
