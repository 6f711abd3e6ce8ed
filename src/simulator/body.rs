//! Request-body decoding with the API's validation errors: `DCS.4004` (no body), `DCS.4005` (not a
//! JSON object), `DCS.4062` (required parameter missing) and `DCS.4063` (wrong type or value),
//! naming the parameter.

use serde_json::{Map, Value};

use super::error::ApiError;

/// A JSON object body, or one of its nested objects, with the path used in error messages.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    prefix: String,
}

/// Parses a required JSON object body.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::empty_body());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::malformed_body()),
    }
}

/// Parses an optional JSON object body (empty = `{}`).
pub fn parse_optional_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    parse_object(body)
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Self { map, prefix: String::new() }
    }

    fn name(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn present(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// A required non-empty string.
    pub fn required_str(&self, key: &str) -> Result<&'a str, ApiError> {
        match self.optional_str(key)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(ApiError::missing_parameter(&self.name(key))),
        }
    }

    /// An optional string of at most 1,024 characters.
    pub fn optional_str(&self, key: &str) -> Result<Option<&'a str>, ApiError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.chars().count() <= 1024 => Ok(Some(s)),
            Some(_) => Err(ApiError::invalid_parameter(&self.name(key))),
        }
    }

    /// An optional string that must be one of `allowed`.
    pub fn optional_enum(&self, key: &str, allowed: &[&str]) -> Result<Option<&'a str>, ApiError> {
        match self.optional_str(key)? {
            Some(s) if !allowed.contains(&s) => Err(ApiError::invalid_parameter(&self.name(key))),
            other => Ok(other),
        }
    }

    /// A required string that must be one of `allowed`.
    pub fn required_enum(&self, key: &str, allowed: &[&str]) -> Result<&'a str, ApiError> {
        let s = self.required_str(key)?;
        if allowed.contains(&s) { Ok(s) } else { Err(ApiError::invalid_parameter(&self.name(key))) }
    }

    /// An optional boolean.
    pub fn optional_bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::invalid_parameter(&self.name(key))),
        }
    }

    /// An optional integer given as a JSON number or a decimal string (the API's mixed types).
    pub fn optional_int_or_string(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| ApiError::invalid_parameter(&self.name(key))),
            Some(Value::String(s)) => {
                s.trim().parse().map(Some).map_err(|_| ApiError::invalid_parameter(&self.name(key)))
            }
            Some(_) => Err(ApiError::invalid_parameter(&self.name(key))),
        }
    }

    /// A required nested object.
    pub fn required_object(&self, key: &str) -> Result<Fields<'a>, ApiError> {
        self.optional_object(key)?.ok_or_else(|| ApiError::missing_parameter(&self.name(key)))
    }

    /// An optional nested object.
    pub fn optional_object(&self, key: &str) -> Result<Option<Fields<'a>>, ApiError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Fields { map, prefix: format!("{}.", self.name(key)) })),
            Some(_) => Err(ApiError::invalid_parameter(&self.name(key))),
        }
    }

    /// A required array of objects.
    pub fn required_objects(&self, key: &str) -> Result<Vec<Fields<'a>>, ApiError> {
        match self.present(key) {
            None => Err(ApiError::missing_parameter(&self.name(key))),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::Object(map) => Ok(Fields { map, prefix: format!("{}[{i}].", self.name(key)) }),
                    _ => Err(ApiError::invalid_parameter(&self.name(key))),
                })
                .collect(),
            Some(_) => Err(ApiError::invalid_parameter(&self.name(key))),
        }
    }

    /// A required array of strings.
    pub fn required_strings(&self, key: &str) -> Result<Vec<&'a str>, ApiError> {
        match self.present(key) {
            None => Err(ApiError::missing_parameter(&self.name(key))),
            Some(Value::Array(items)) => {
                items.iter().map(|v| v.as_str().ok_or_else(|| ApiError::invalid_parameter(&self.name(key)))).collect()
            }
            Some(_) => Err(ApiError::invalid_parameter(&self.name(key))),
        }
    }
}

/// The console's task-name rule: a letter first, 4–64 characters of `[A-Za-z0-9_-]`.
pub fn is_valid_task_name(name: &str) -> bool {
    (4..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_that_are_empty_or_not_objects_get_4004_and_4005() {
        assert_eq!(parse_object(b"  ").unwrap_err().code, "DCS.4004");
        assert_eq!(parse_object(b"{").unwrap_err().code, "DCS.4005");
        assert_eq!(parse_object(b"[1]").unwrap_err().code, "DCS.4005");
        assert!(parse_object(b"{}").is_ok());
    }

    #[test]
    fn missing_and_invalid_parameters_are_named_with_their_path() {
        let map = parse_object(br#"{"a": {"b": 1}, "n": null}"#).unwrap();
        let f = Fields::new(&map);
        let err = f.required_object("a").unwrap().required_str("b").unwrap_err();
        assert_eq!((err.code, err.message.as_str()), ("DCS.4063", "Invalid a.b in the request."));
        let err = f.required_str("n").unwrap_err();
        assert_eq!(err.code, "DCS.4062");
        assert!(err.message.contains(" n "));
    }

    #[test]
    fn task_names_follow_the_console_rule() {
        assert!(is_valid_task_name("rmig-default-a_1"));
        assert!(!is_valid_task_name("1abc"));
        assert!(!is_valid_task_name("abc"));
        assert!(!is_valid_task_name(&"a".repeat(65)));
        assert!(!is_valid_task_name("ab c"));
    }
}
