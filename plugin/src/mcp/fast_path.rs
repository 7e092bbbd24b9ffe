//! The one hot incoming frame, `tools/call` of `reply`, read without building
//! a `serde_json::Value` tree.
//!
//! Parsing a line into a `Value` builds an order-preserving map (with a
//! SipHash table) per object: three for a reply call. That was most of the
//! work between a reply arriving on stdin and its SSE event going out (see
//! `benches/RESULTS.md`). Here the same frame is read into borrowed parts in
//! one pass (only the small `arguments` object is read twice).
//!
//! This is only a shortcut: it accepts a line only when the general path
//! (`jsonrpc::classify`, `call_tool`, `tools::parse_reply_args`) would accept
//! it with the same meaning, and returns `None` for anything else, which
//! then takes the general path and gets its exact answers and errors. So:
//! objects only (serde would also read a struct from an array), unknown
//! reply arguments refused (`deny_unknown_fields`), duplicate keys refused
//! (serde's derive does; the general path keeps the last), escapes fine
//! (`Cow`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::tools::REPLY_TOOL;
use crate::bridge::Reply;

/// A well-formed `reply` call: its request id and arguments.
#[derive(Debug, PartialEq)]
pub(crate) struct ReplyCall {
    pub id: Value,
    pub reply: Reply,
}

/// The members of the envelope and of `params` the shortcut reads, in one
/// pass over the line: the visitors below take `params` in place and skip
/// everything else (`_meta` included) without building it. Objects only
/// (`deserialize_map` refuses an array), a repeated member refused.
#[derive(Default)]
struct Envelope<'a> {
    jsonrpc: Option<Cow<'a, str>>,
    id: Option<Value>,
    method: Option<Cow<'a, str>>,
    params: Option<CallParams<'a>>,
}

#[derive(Default)]
struct CallParams<'a> {
    name: Option<Cow<'a, str>>,
    /// Kept raw: read as [`ReplyArguments`] once `name` says `reply`.
    arguments: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyArguments<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
    #[serde(default, borrow)]
    chat_id: Option<Cow<'a, str>>,
    #[serde(default, rename = "final")]
    is_final: Option<bool>,
}

/// Store a member's value, refusing a second one.
fn once<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    slot: &mut Option<T>,
    map: &mut A,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(A::Error::custom("repeated member"));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

impl<'de> Visitor<'de> for Envelope<'de> {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC request object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self, A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "jsonrpc" => once(&mut self.jsonrpc, &mut map)?,
                "id" => once(&mut self.id, &mut map)?,
                "method" => once(&mut self.method, &mut map)?,
                "params" => {
                    if self.params.is_some() {
                        return Err(A::Error::custom("repeated member"));
                    }
                    self.params = Some(map.next_value_seed(CallParams::default())?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(self)
    }
}

impl<'de> DeserializeSeed<'de> for CallParams<'de> {
    type Value = CallParams<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for CallParams<'de> {
    type Value = CallParams<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tools/call params (an object)")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self, A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "name" => once(&mut self.name, &mut map)?,
                "arguments" => once(&mut self.arguments, &mut map)?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(self)
    }
}

/// `Some` when `line` is a `tools/call` of `reply` that the general path
/// would accept as the same call; `None` sends it down the general path.
pub(crate) fn reply_call(line: &str) -> Option<ReplyCall> {
    let mut de = serde_json::Deserializer::from_str(line);
    let envelope = de.deserialize_map(Envelope::default()).ok()?;
    de.end().ok()?;
    let (Some(jsonrpc), Some(id), Some(method), Some(params)) = (
        envelope.jsonrpc,
        envelope.id,
        envelope.method,
        envelope.params,
    ) else {
        return None;
    };
    if jsonrpc != "2.0"
        || method != "tools/call"
        || !matches!(id, Value::String(_) | Value::Number(_))
        || params.name.as_deref() != Some(REPLY_TOOL)
    {
        return None;
    }
    let arguments = params.arguments?.get();
    if !is_object(arguments) {
        return None;
    }
    let args: ReplyArguments = serde_json::from_str(arguments).ok()?;
    Some(ReplyCall {
        id,
        reply: Reply {
            text: args.text.into_owned(),
            chat_id: args.chat_id.map(Cow::into_owned),
            is_final: args.is_final.unwrap_or(true),
        },
    })
}

/// A JSON text whose value is an object (serde would also fill a struct from
/// an array, which the general path refuses).
fn is_object(json: &str) -> bool {
    json.trim_start().starts_with('{')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::jsonrpc::{classify, Incoming};
    use crate::mcp::tools::parse_reply_args;

    /// What the general path makes of `line`: the reply call it would
    /// deliver, or `None` when it would answer with an error instead.
    fn general(line: &str) -> Option<ReplyCall> {
        let value: Value = serde_json::from_str(line).ok()?;
        let Ok(Incoming::Request { id, method, params }) = classify(value) else {
            return None;
        };
        let params = params?;
        if method != "tools/call" || params.get("name")?.as_str()? != REPLY_TOOL {
            return None;
        }
        let reply = parse_reply_args(params.get("arguments")).ok()?;
        Some(ReplyCall { id, reply })
    }

    #[test]
    fn the_shapes_claude_code_sends_take_the_fast_path() {
        for line in [
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"reply","arguments":{"text":"hi","chat_id":"c1"}}}"#,
            r#"{"method":"tools/call","params":{"name":"reply","arguments":{"chat_id":"web","text":"a \"quoted\" \u00e9 line\nnext","final":false},"_meta":{"progressToken":3,"claudecode/toolUseId":"toolu_1"}},"jsonrpc":"2.0","id":"abc"}"#,
            r#"  {"jsonrpc":"2.0","id":1e70,"method":"tools/call","params":{"name":"reply","arguments":{"text":"","chat_id":null,"final":null}},"extra":1}"#,
        ] {
            let fast = reply_call(line).unwrap_or_else(|| panic!("not fast: {line}"));
            assert_eq!(Some(&fast), general(line).as_ref(), "{line}");
        }
    }

    #[test]
    fn anything_unusual_takes_the_general_path() {
        for line in [
            // arrays where objects belong (serde would read a struct from them)
            r#"["2.0",1,"tools/call",{"name":"reply","arguments":{"text":"x"}}]"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["reply",{"text":"x"}]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"reply","arguments":["x"]}}"#,
            // wrong or missing members
            r#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"reply","arguments":{"text":"x"}}}"#,
            r#"{"id":1,"method":"tools/call","params":{"name":"reply","arguments":{"text":"x"}}}"#,
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"reply","arguments":{"text":"x"}}}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"reply","arguments":{"text":"x"}}}"#,
            r#"{"jsonrpc":"2.0","id":{"a":1},"method":"tools/call","params":{"name":"reply","arguments":{"text":"x"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"other","arguments":{"text":"x"}}}"#,
            // argument problems the general path explains
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"reply","arguments":{"text":5}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"reply","arguments":{"chat_id":"c"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"reply","arguments":{"text":"x","txt":"y"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"reply","arguments":{"text":"x","final":"yes"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"reply"}}"#,
            // duplicate keys: the general path keeps the last one
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"reply","arguments":{"text":"a","text":"b"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/call","params":{"name":"reply","arguments":{"text":"a"}}}"#,
            // not JSON
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"reply","arguments":{"text":"x"}}"#,
        ] {
            assert_eq!(reply_call(line), None, "took the fast path: {line}");
        }
        // A duplicate the general path accepts still ends the same way.
        let dup = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"reply","arguments":{"text":"a","text":"b"}}}"#;
        assert_eq!(general(dup).unwrap().reply.text, "b");
    }

    /// Differential check: byte-level mutations of real reply calls (bytes
    /// dropped, doubled, swapped for JSON punctuation) never make the fast
    /// path accept a line the general path reads differently.
    #[test]
    fn mutated_lines_never_disagree_with_the_general_path() {
        let seeds = [
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"reply","arguments":{"text":"hi","chat_id":"c1","final":true}}}"#,
            r#"{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"reply","arguments":{"text":"a\"b"},"_meta":{"progressToken":1}}}"#,
        ];
        let (mut fast_taken, mut checked) = (0, 0);
        for bytes in crate::mutants::mutants(&seeds, 8, 40_000) {
            let Ok(line) = std::str::from_utf8(&bytes) else {
                continue;
            };
            checked += 1;
            if let Some(fast) = reply_call(line) {
                fast_taken += 1;
                assert_eq!(Some(fast), general(line), "disagree on {line}");
            }
        }
        // The mutations must exercise both outcomes to mean anything.
        assert!(
            fast_taken > 1_000 && fast_taken < checked,
            "{fast_taken} of {checked}"
        );
    }
}
