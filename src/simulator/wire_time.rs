//! The time formats of the API's answers.

use jiff::Timestamp;

/// `2021-06-16T06:12:55.508Z` — the list and log APIs' time format.
pub fn list_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S.%3fZ").to_string()
}

/// `202404011057` — the format of `released_at`.
pub fn release_time(t: Timestamp) -> String {
    t.strftime("%Y%m%d%H%M").to_string()
}
