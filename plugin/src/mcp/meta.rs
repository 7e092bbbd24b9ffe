//! Channel meta validation, shared by every bridge.
//!
//! Claude Code drops meta keys that do not match `^[a-zA-Z_][a-zA-Z0-9_]*$`
//! (with only a warning in its own log) and drops the *whole event* when a
//! value is not a string — silently. So we check before sending and tell the
//! caller exactly what is wrong instead of losing the event.

use serde_json::Value;

use crate::bridge::Meta;

/// One offending meta entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProblem {
    pub key: String,
    pub reason: String,
}

/// Why caller-supplied meta was refused. Lists *all* offending keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    #[error("meta must be a JSON object of string values, got {found}")]
    NotAnObject { found: &'static str },
    #[error("invalid meta: {}", describe(.0))]
    InvalidEntries(Vec<MetaProblem>),
}

impl MetaError {
    /// The offending keys (empty for [`MetaError::NotAnObject`]).
    pub fn keys(&self) -> Vec<&str> {
        match self {
            MetaError::NotAnObject { .. } => Vec::new(),
            MetaError::InvalidEntries(problems) => {
                problems.iter().map(|p| p.key.as_str()).collect()
            }
        }
    }
}

fn describe(problems: &[MetaProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("key {:?}: {}", p.key, p.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether `key` is a meta key Claude Code keeps: `^[a-zA-Z_][a-zA-Z0-9_]*$`.
pub fn key_is_valid(key: &str) -> bool {
    let mut chars = key.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether two meta pairs share a key. Normalized meta never does (it is
/// read from a JSON object); the core and the `/inject` fast path check
/// before relying on it. A handful of keys is the rule: compare them
/// directly, and use a set only for many.
pub fn has_repeated_key<K: AsRef<str>, V>(pairs: &[(K, V)]) -> bool {
    if pairs.len() <= 16 {
        return pairs.iter().enumerate().any(|(i, (key, _))| {
            pairs[..i]
                .iter()
                .any(|(earlier, _)| earlier.as_ref() == key.as_ref())
        });
    }
    let mut seen = std::collections::HashSet::with_capacity(pairs.len());
    !pairs.iter().all(|(key, _)| seen.insert(key.as_ref()))
}

/// How a JSON value's type reads in an error message ("a number", "an array", …),
/// shared by every place that tells a caller what it sent instead.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Validate and normalize caller meta: keys must be valid, values strings;
/// numbers and booleans become strings. `None` and `null` mean no meta.
/// Insertion order is kept (Claude Code renders attributes in that order).
pub fn normalize(meta: Option<&Value>) -> Result<Meta, MetaError> {
    let map = match meta {
        None | Some(Value::Null) => return Ok(Meta::new()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(MetaError::NotAnObject {
                found: json_kind(other),
            })
        }
    };
    let mut out = Meta::with_capacity(map.len());
    let mut problems = Vec::new();
    for (key, value) in map {
        let mut reasons = Vec::new();
        if !key_is_valid(key) {
            reasons.push(
                "key must match ^[a-zA-Z_][a-zA-Z0-9_]*$ (letters, digits, underscore; no leading digit)"
                    .to_string(),
            );
        }
        let value = match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                reasons.push(format!(
                    "value is {}; only strings, numbers and booleans are allowed",
                    json_kind(other)
                ));
                None
            }
        };
        match (reasons.is_empty(), value) {
            (true, Some(value)) => out.push((key.clone(), value)),
            _ => problems.push(MetaProblem {
                key: key.clone(),
                reason: reasons.join(", and "),
            }),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(MetaError::InvalidEntries(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys() {
        for ok in ["a", "_", "chat_id", "A1", "_x9"] {
            assert!(key_is_valid(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a.b", "é", "a b", "ключ"] {
            assert!(!key_is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn repeated_keys_are_found_with_few_and_many_keys() {
        let pairs = |keys: &[&str]| -> Vec<(String, String)> {
            keys.iter()
                .map(|k| (k.to_string(), "v".to_string()))
                .collect()
        };
        assert!(!has_repeated_key(&pairs(&["a", "b", "c"])));
        assert!(has_repeated_key(&pairs(&["a", "b", "a"])));
        let many: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        let mut keys: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(!has_repeated_key(&pairs(&keys)));
        keys.push("k3");
        assert!(has_repeated_key(&pairs(&keys)));
    }

    #[test]
    fn converts_scalars_and_keeps_order() {
        let meta = json!({"z": "s", "n": 12, "f": 1.5, "b": true, "a": ""});
        let got = normalize(Some(&meta)).unwrap();
        let want: Meta = [
            ("z", "s"),
            ("n", "12"),
            ("f", "1.5"),
            ("b", "true"),
            ("a", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn absent_or_null_is_empty() {
        assert_eq!(normalize(None).unwrap(), Meta::new());
        assert_eq!(normalize(Some(&Value::Null)).unwrap(), Meta::new());
    }

    #[test]
    fn lists_every_offending_key_with_its_reason() {
        let meta = json!({"ok": "1", "bad-key": "x", "obj": {}, "arr": [1], "nul": null, "9x": []});
        let err = normalize(Some(&meta)).unwrap_err();
        assert_eq!(err.keys(), vec!["bad-key", "obj", "arr", "nul", "9x"]);
        let text = err.to_string();
        assert!(text.contains("\"bad-key\": key must match"), "{text}");
        assert!(text.contains("\"obj\": value is an object"), "{text}");
        assert!(text.contains("\"arr\": value is an array"), "{text}");
        assert!(text.contains("\"nul\": value is null"), "{text}");
        assert!(
            text.contains("\"9x\": key must match") && text.contains("and value is an array"),
            "{text}"
        );
    }

    #[test]
    fn non_object_meta_is_refused() {
        let err = normalize(Some(&json!(["a"]))).unwrap_err();
        assert_eq!(err, MetaError::NotAnObject { found: "an array" });
        assert!(err.to_string().contains("got an array"));
    }
}
