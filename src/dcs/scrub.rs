//! Scrubbing by value: every secret a request carried (Redis passwords in its body, the access
//! key, the secret key, the security token) is replaced by `***` in any text that came back from
//! the endpoint before that text leaves the client, whatever field or position it is in. An
//! endpoint may reflect the request as it was sent (JSON-escaped) or inside an HTML page
//! (HTML-escaped), so those spellings of each secret are replaced too.

use serde_json::Value;

/// What a scrubbed secret becomes.
pub const MASK: &str = "***";

/// The secrets of one request, in every spelling an answer may repeat them in.
#[derive(Clone, Default)]
pub struct Scrubber {
    /// Longest first, so that a secret containing another is replaced whole.
    needles: Vec<String>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber").field("needles", &self.needles.len()).finish()
    }
}

impl Scrubber {
    /// A scrubber for these secrets (empty ones are ignored).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut needles: Vec<String> =
            secrets.into_iter().filter(|s| !s.is_empty()).flat_map(spellings).filter(|s| !s.is_empty()).collect();
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Self { needles }
    }

    /// `text` with every secret replaced by [`MASK`].
    pub fn scrub(&self, text: &str) -> String {
        self.needles.iter().fold(text.to_owned(), |out, needle| out.replace(needle.as_str(), MASK))
    }
}

/// The secret as sent, JSON-escaped, and HTML-escaped (of both).
fn spellings(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).map(|q| q[1..q.len() - 1].to_owned()).unwrap_or_default();
    let html = [html_escape(secret), html_escape(&json)];
    let mut all = vec![secret.to_owned(), json];
    all.extend(html);
    all
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// Every string value of a JSON request body under a key that names a password, at any depth
/// (`source_instance.password`, `target_instance.password`, …).
pub fn passwords_in(body: &Value) -> Vec<String> {
    let mut found = Vec::new();
    collect_passwords(body, &mut found);
    found
}

fn collect_passwords(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match v {
                    Value::String(s) if key.to_ascii_lowercase().contains("password") => found.push(s.clone()),
                    _ => collect_passwords(v, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_passwords(v, found)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_spelling_of_a_secret_is_masked_wherever_it_is() {
        let s = Scrubber::new(["pa\"ss<wörd>", "AKEY"]);
        let text = r#"raw pa"ss<wörd> json pa\"ss<wörd> html pa&quot;ss&lt;wörd&gt; key=AKEY,AKEY"#;
        let out = s.scrub(text);
        assert!(!out.contains("ss<w") && !out.contains("ss&lt;") && !out.contains("AKEY"), "{out}");
        assert_eq!(out.matches(MASK).count(), 5, "{out}");
    }

    #[test]
    fn a_secret_containing_another_is_masked_whole() {
        let out = Scrubber::new(["abc", "xxabcxx"]).scrub("xxabcxx");
        assert_eq!(out, MASK);
    }

    #[test]
    fn passwords_are_found_at_any_depth_and_nothing_else() {
        let body = json!({"task_name": "t", "source_instance": {"password": "s1", "addrs": "a"},
            "target_instance": {"id": "x", "password": "t1"}, "list": [{"redis_password": "p3"}], "password_hint": 3});
        let mut found = passwords_in(&body);
        found.sort();
        assert_eq!(found, ["p3", "s1", "t1"]);
    }

    #[test]
    fn debug_shows_no_secret() {
        assert!(!format!("{:?}", Scrubber::new(["hunter2"])).contains("hunter2"));
    }
}
