//! A scripted model: rules that turn a channel turn into tool calls, loadable from JSON so the
//! binary can use them.
//!
//! ```json
//! { "rules": [ { "when": { "content_matches": "." },
//!                "call": "reply",
//!                "arguments": { "text": "echo: {content}", "chat_id": "{meta.chat_id}" } } ] }
//! ```
//! Placeholders in argument strings: `{content}`, `{source}`, `{meta.KEY}`. A string that is
//! exactly one `{meta.KEY}` placeholder whose key is absent removes that argument.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::render::fill_template;
use crate::session::{ChannelEvent, ToolResult, Turn};

/// A list of rules; every matching rule fires once per event of the turn.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Script {
    /// Rules in order.
    pub rules: Vec<ScriptRule>,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptRule {
    /// Conditions on the event (all must hold; empty = always).
    #[serde(default)]
    pub when: Trigger,
    /// Tool name as the server lists it (e.g. `reply`).
    pub call: String,
    /// Arguments with placeholders.
    #[serde(default)]
    pub arguments: Value,
}

/// Conditions on an event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// Regex the content must match.
    #[serde(default)]
    pub content_matches: Option<String>,
    /// The event's source must equal this.
    #[serde(default)]
    pub source: Option<String>,
    /// The event must carry this meta key.
    #[serde(default)]
    pub meta_has: Option<String>,
}

/// One tool call the script made, and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallRecord {
    /// Tool name as listed.
    pub tool: String,
    /// Name the model used (`mcp__server__tool`).
    pub model_name: String,
    /// Arguments sent.
    pub arguments: Value,
    /// The result, or the error text.
    pub result: std::result::Result<ToolResult, String>,
}

impl Script {
    /// The usual echo bot: on every channel event call `reply` with
    /// `{text: "echo: {content}", chat_id: "{meta.chat_id}"}`.
    pub fn echo_reply() -> Script {
        Script {
            rules: vec![ScriptRule {
                when: Trigger::default(),
                call: "reply".into(),
                arguments: serde_json::json!({ "text": "echo: {content}", "chat_id": "{meta.chat_id}" }),
            }],
        }
    }

    /// Parse a script from JSON text.
    pub fn from_json(text: &str) -> Result<Script> {
        let s: Script = serde_json::from_str(text)
            .map_err(|e| Error::Script(format!("invalid script: {e}")))?;
        for r in &s.rules {
            if let Some(re) = &r.when.content_matches {
                regex::Regex::new(re)
                    .map_err(|e| Error::Script(format!("content_matches {re:?}: {e}")))?;
            }
        }
        Ok(s)
    }

    /// Load a script file.
    pub fn load(path: impl AsRef<Path>) -> Result<Script> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading script {}", path.display()), e))?;
        Self::from_json(&text).map_err(|e| Error::Script(format!("{}: {e}", path.display())))
    }

    /// The tool calls (tool, arguments) this script makes for a turn, in order.
    pub fn calls_for(&self, turn: &Turn) -> Result<Vec<(String, Value)>> {
        let mut out = Vec::new();
        for event in &turn.events {
            for rule in &self.rules {
                if rule.matches(event)? {
                    out.push((rule.call.clone(), fill_value(&rule.arguments, event)));
                }
            }
        }
        Ok(out)
    }
}

impl ScriptRule {
    fn matches(&self, e: &ChannelEvent) -> Result<bool> {
        if let Some(re) = &self.when.content_matches {
            let re = regex::Regex::new(re)
                .map_err(|err| Error::Script(format!("content_matches {re:?}: {err}")))?;
            if !re.is_match(&e.content) {
                return Ok(false);
            }
        }
        if self.when.source.as_ref().is_some_and(|s| *s != e.source) {
            return Ok(false);
        }
        if self
            .when
            .meta_has
            .as_ref()
            .is_some_and(|k| e.meta(k).is_none())
        {
            return Ok(false);
        }
        Ok(true)
    }
}

/// Fill placeholders in every string of `template` from `event`.
pub fn fill_value(template: &Value, event: &ChannelEvent) -> Value {
    match template {
        Value::String(s) => Value::String(fill_str(s, event)),
        Value::Array(a) => Value::Array(a.iter().map(|v| fill_value(v, event)).collect()),
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                if let Some(key) = v
                    .as_str()
                    .and_then(|s| s.strip_prefix("{meta."))
                    .and_then(|s| s.strip_suffix('}'))
                {
                    if !key.contains('{') && event.meta(key).is_none() {
                        continue;
                    }
                }
                out.insert(k.clone(), fill_value(v, event));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn fill_str(s: &str, event: &ChannelEvent) -> String {
    let meta_keys: Vec<String> = event
        .meta
        .iter()
        .map(|(k, _)| format!("meta.{k}"))
        .collect();
    let mut pairs: Vec<(&str, &str)> = vec![("content", &event.content), ("source", &event.source)];
    for (i, (_, v)) in event.meta.iter().enumerate() {
        pairs.push((&meta_keys[i], v));
    }
    fill_template(s, &pairs)
}
