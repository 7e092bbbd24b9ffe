//! Request bodies: a JSON object, and the `POST /inject` body read from one.
//!
//! `/inject` is the hot route, and parsing its body into a `serde_json::Value`
//! builds an order-preserving map (with a SipHash table) per object. So the
//! common shape, `{"content": "...", "chat_id"?: "...", "meta"?: {string:
//! string}}`, is first read into borrowed structs; anything else (a wrong
//! type, a number in meta, a duplicate key, an invalid meta key, an empty
//! content...) takes the general path, which alone writes the error
//! messages. The shortcut accepts only bodies the general path reads the same
//! way (unit and differential tests below).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::bridge::Meta;
use crate::mcp::meta::{self, has_repeated_key, json_kind, key_is_valid, MetaError};

/// A JSON object body, or the message that says why it is not one.
pub fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "body must be a JSON object, got {}",
            json_kind(&other)
        )),
        Err(err) => Err(format!("body is not valid JSON: {err}")),
    }
}

/// A valid `/inject` body. `meta` is normalized (`mcp::meta::normalize`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectBody {
    pub content: String,
    pub chat_id: Option<String>,
    pub meta: Meta,
}

/// Why an `/inject` body was refused (both are a 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InjectBodyError {
    /// The body, `content` or `chat_id` is wrong; the message says how.
    Body(String),
    /// `meta` is wrong; the error lists every offending key.
    Meta(MetaError),
}

impl InjectBody {
    pub fn parse(bytes: &[u8]) -> Result<InjectBody, InjectBodyError> {
        match fast(bytes) {
            Some(body) => Ok(body),
            None => general(bytes),
        }
    }
}

/// The general path: every shape, every error message.
fn general(bytes: &[u8]) -> Result<InjectBody, InjectBodyError> {
    let body = json_object(bytes).map_err(InjectBodyError::Body)?;
    let content = match body.get("content") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) => return Err(InjectBodyError::Body("\"content\" is empty".into())),
        Some(other) => {
            return Err(InjectBodyError::Body(format!(
                "\"content\" must be a string, got {}",
                json_kind(other)
            )))
        }
        None => return Err(InjectBodyError::Body("missing \"content\" (string)".into())),
    };
    let chat_id = match body.get("chat_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(InjectBodyError::Body(format!(
                "\"chat_id\" must be a string, got {}",
                json_kind(other)
            )))
        }
    };
    let meta = meta::normalize(body.get("meta")).map_err(InjectBodyError::Meta)?;
    Ok(InjectBody {
        content,
        chat_id,
        meta,
    })
}

#[derive(Deserialize)]
struct FastBody<'a> {
    #[serde(borrow)]
    content: Cow<'a, str>,
    #[serde(default, borrow)]
    chat_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    meta: Option<StringPairs<'a>>,
}

/// A JSON object whose values are all strings, in order. Keys and values
/// must be unescaped (borrowed); anything else fails and falls back.
struct StringPairs<'a>(Vec<(&'a str, &'a str)>);

impl<'de: 'a, 'a> Deserialize<'de> for StringPairs<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for PairsVisitor<'a> {
            type Value = StringPairs<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::new();
                while let Some((key, value)) = map.next_entry::<&'de str, &'de str>()? {
                    pairs.push((key, value));
                }
                Ok(StringPairs(pairs))
            }
        }
        deserializer.deserialize_map(PairsVisitor(PhantomData))
    }
}

/// The common shape, read without a `Value` tree; `None` for anything the
/// general path must look at.
fn fast(bytes: &[u8]) -> Option<InjectBody> {
    // serde would also fill a struct from an array.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    // UTF-8 checked once for the whole body (fast on ASCII), so the parser
    // does not check each string again; invalid UTF-8 is the general path's
    // to explain.
    let text = std::str::from_utf8(bytes).ok()?;
    let body: FastBody = serde_json::from_str(text).ok()?;
    if body.content.is_empty() {
        return None;
    }
    let pairs = body.meta.map(|m| m.0).unwrap_or_default();
    // Invalid keys are the general path's to explain; a repeated key is its
    // to resolve (the last value wins there).
    if !pairs.iter().all(|(key, _)| key_is_valid(key)) || has_repeated_key(&pairs) {
        return None;
    }
    Some(InjectBody {
        content: body.content.into_owned(),
        chat_id: body.chat_id.map(Cow::into_owned),
        meta: pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_bodies_take_the_fast_path_and_read_the_same() {
        for body in [
            r#"{"content":"hello"}"#,
            r#"  {"content":"hello <b>","chat_id":"c42","meta":{"user":"ana","chat_id":"m","z":""}}"#,
            r#"{"meta":null,"chat_id":null,"content":"a \"quoted\" \u00e9\nline","extra":[1,{"x":2}]}"#,
        ] {
            let fast = fast(body.as_bytes()).unwrap_or_else(|| panic!("not fast: {body}"));
            assert_eq!(Ok(fast), general(body.as_bytes()), "{body}");
        }
    }

    #[test]
    fn everything_else_takes_the_general_path() {
        for body in [
            r#"["hello"]"#,
            r#"{"content":""}"#,
            r#"{"content":5}"#,
            r#"{"chat_id":"c"}"#,
            r#"{"content":"x","chat_id":7}"#,
            r#"{"content":"x","meta":{"n":7}}"#,
            r#"{"content":"x","meta":{"bad-key":"v"}}"#,
            r#"{"content":"x","meta":{"a":"1","a":"2"}}"#,
            r#"{"content":"x","meta":["a"]}"#,
            r#"{"content":"x","meta":{"k":"with \"escape\""}}"#,
            r#"{"content":"a","content":"b"}"#,
            r#"{"content":"x""#,
            "\u{feff}{\"content\":\"x\"}",
        ] {
            assert_eq!(fast(body.as_bytes()), None, "took the fast path: {body}");
        }
        // What the general path makes of two of them.
        assert_eq!(
            general(br#"{"content":"x","meta":{"a":"1","a":"2"}}"#)
                .unwrap()
                .meta,
            vec![("a".to_string(), "2".to_string())]
        );
        assert_eq!(
            general(br#"{"content":""}"#),
            Err(InjectBodyError::Body("\"content\" is empty".into()))
        );
    }

    /// Byte-level mutations of real bodies never make the fast path accept
    /// a body the general path reads differently (or refuses).
    #[test]
    fn mutated_bodies_never_disagree_with_the_general_path() {
        let seeds = [
            r#"{"content":"hello from the bench","chat_id":"bench","meta":{"user":"bench","chat_id":"x"}}"#,
            r#"{"content":"a\"b","meta":{"a":"1","b":"2"}}"#,
        ];
        let (mut fast_taken, mut checked) = (0, 0);
        for bytes in crate::mutants::mutants(&seeds, 11, 40_000) {
            checked += 1;
            if let Some(body) = fast(&bytes) {
                fast_taken += 1;
                assert_eq!(
                    Ok(body),
                    general(&bytes),
                    "disagree on {:?}",
                    String::from_utf8_lossy(&bytes)
                );
            }
        }
        assert!(
            fast_taken > 1_000 && fast_taken < checked,
            "{fast_taken} of {checked}"
        );
    }
}
