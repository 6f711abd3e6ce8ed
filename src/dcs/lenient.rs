//! Tolerant decoding for the DCS wire format: the API documents counters, ports and sizes as
//! strings but returns numbers in its own examples, sends `null` for empty arrays, and echoes
//! passwords in clear. These deserializers accept every shape seen and never fail on a scalar.

use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// A scalar that may arrive as string, number or bool, kept as its text (`null` → `None`).
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(ScalarText)
}

/// A number that may arrive as a JSON number or as a numeric string (`"45"`, `"45.5"`, `"45%"`,
/// `"754.0MB"` keeps `754.0`). Anything unparseable decodes as `None` rather than failing.
pub fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(string(d)?.and_then(|text| leading_number(&text)))
}

/// A count (non-negative integer) that may arrive as a number or a numeric string.
pub fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(number(d)?.filter(|n| *n >= 0.0).map(|n| n.round() as u64))
}

/// A bool that may arrive as `true`/`false` or `"true"`/`"false"`.
pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(string(d)?.and_then(|text| match text.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }))
}

/// A list that may arrive as `null`; elements keep their own decoding.
pub fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// The leading decimal number of a text such as `"45.5%"` or `"754.0MB"`.
fn leading_number(text: &str) -> Option<f64> {
    let t = text.trim();
    let end = t
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '-' || c == '+'))))
        .map_or(t.len(), |(i, _)| i);
    t[..end].parse::<f64>().ok().filter(|n| n.is_finite())
}

struct ScalarText;

impl<'de> Visitor<'de> for ScalarText {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number, bool or null")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    // Objects and arrays where a scalar belongs are dropped, not fatal.
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// A password the API echoed back. Its value is discarded while decoding, so no copy of it
/// exists in memory to leak; it serializes as `"***"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedactedPassword;

impl<'de> Deserialize<'de> for RedactedPassword {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d).map(|_| RedactedPassword)
    }
}

impl Serialize for RedactedPassword {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// Decodes an echoed password field: present and non-null → `Some(RedactedPassword)`.
pub fn password<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RedactedPassword>, D::Error> {
    let present = Option::<IgnoredAny>::deserialize(d)?.is_some();
    Ok(present.then_some(RedactedPassword))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "string")]
        s: Option<String>,
        #[serde(default, deserialize_with = "number")]
        n: Option<f64>,
        #[serde(default, deserialize_with = "boolean")]
        b: Option<bool>,
        #[serde(default, deserialize_with = "list")]
        l: Vec<String>,
        #[serde(default, deserialize_with = "password")]
        p: Option<RedactedPassword>,
    }

    fn probe(json: &str) -> Probe {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn numbers_decode_from_strings_and_numbers_alike() {
        assert_eq!(probe(r#"{"n": "45"}"#).n, Some(45.0));
        assert_eq!(probe(r#"{"n": 45}"#).n, Some(45.0));
        assert_eq!(probe(r#"{"n": "45.5%"}"#).n, Some(45.5));
        assert_eq!(probe(r#"{"n": "754.0MB"}"#).n, Some(754.0));
        assert_eq!(probe(r#"{"n": "n/a"}"#).n, None);
        assert_eq!(probe(r#"{"n": null}"#).n, None);
        assert_eq!(probe(r#"{"n": {"x": 1}}"#).n, None);
    }

    #[test]
    fn scalars_decode_as_text_whatever_their_json_type() {
        assert_eq!(probe(r#"{"s": 6379}"#).s.as_deref(), Some("6379"));
        assert_eq!(probe(r#"{"s": "6379"}"#).s.as_deref(), Some("6379"));
        assert_eq!(probe(r#"{"s": false}"#).s.as_deref(), Some("false"));
        assert_eq!(probe(r#"{"b": "true"}"#).b, Some(true));
        assert_eq!(probe(r#"{"b": true}"#).b, Some(true));
    }

    #[test]
    fn null_lists_decode_as_empty() {
        assert!(probe(r#"{"l": null}"#).l.is_empty());
        assert_eq!(probe(r#"{"l": ["a"]}"#).l, vec!["a"]);
    }

    #[test]
    fn passwords_are_discarded_on_decode_and_serialize_as_stars() {
        let p = probe(r#"{"p": "DCStest123"}"#);
        assert_eq!(p.p, Some(RedactedPassword));
        assert_eq!(serde_json::to_string(&p.p).unwrap(), r#""***""#);
        assert_eq!(probe(r#"{"p": null}"#).p, None);
    }
}
