//! The `reply` tool: its definition for `tools/list` and argument validation
//! for `tools/call`.
//!
//! Validation errors are returned to the model as an `isError` tool result
//! (not a JSON-RPC error) so it can read what was wrong and call again.

use serde_json::{json, Value};

use super::meta::json_kind;
use crate::bridge::Reply;

pub const REPLY_TOOL: &str = "reply";

/// The answer to a `tools/call`: one text block, maybe marked as an error.
/// Serializes as the whole response frame (`{"jsonrpc","id","result":
/// {"content":[{"type":"text","text"}],"isError"?}}`) straight from its
/// fields, so the hot reply path builds no `Value` for it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolText {
    pub id: Value,
    pub text: String,
    pub is_error: bool,
}

impl ToolText {
    /// The same frame as a `Value` (the general dispatch path's currency).
    pub fn to_frame(&self) -> Value {
        let mut result = json!({ "content": [{ "type": "text", "text": self.text }] });
        if self.is_error {
            result["isError"] = json!(true);
        }
        super::jsonrpc::result_frame(&self.id, result)
    }
}

impl serde::Serialize for ToolText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Frame<'a> {
            jsonrpc: &'static str,
            id: &'a Value,
            result: ToolResult<'a>,
        }
        #[derive(serde::Serialize)]
        struct ToolResult<'a> {
            content: [TextContent<'a>; 1],
            #[serde(rename = "isError", skip_serializing_if = "std::ops::Not::not")]
            is_error: bool,
        }
        #[derive(serde::Serialize)]
        struct TextContent<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            text: &'a str,
        }
        Frame {
            jsonrpc: "2.0",
            id: &self.id,
            result: ToolResult {
                content: [TextContent {
                    kind: "text",
                    text: &self.text,
                }],
                is_error: self.is_error,
            },
        }
        .serialize(serializer)
    }
}

/// The `tools/list` entry for `reply`.
pub fn reply_tool_definition() -> Value {
    json!({
        "name": REPLY_TOOL,
        "title": "Reply on the channel",
        "description": "Send a message back to the person or system that wrote a <channel> event. \
    Pass the chat_id attribute of the event you are answering so the reply reaches the right \
    conversation. Set final to false for an intermediate progress update; the last message of an \
    answer has final true (the default).",
        "inputSchema": {
            "type": "object",
            "properties": {
                "text": {
                    "type": "string",
                    "description": "The message to send (plain text or Markdown)."
                },
                "chat_id": {
                    "type": "string",
                    "description": "The chat_id attribute of the <channel> tag you are answering."
                },
                "final": {
                    "type": "boolean",
                    "description": "false for a progress update that more text will follow; true (default) when the answer is complete.",
                    "default": true
                }
            },
            "required": ["text"],
            "additionalProperties": false
        }
    })
}

/// Validate `reply` arguments. The error says what is wrong, in words the
/// model can act on.
pub fn parse_reply_args(arguments: Option<&Value>) -> Result<Reply, String> {
    let args = match arguments {
        Some(Value::Object(map)) => map,
        None | Some(Value::Null) => return Err(
            "reply needs arguments: {\"text\": string, \"chat_id\"?: string, \"final\"?: boolean}"
                .into(),
        ),
        Some(other) => {
            return Err(format!(
                "reply arguments must be an object, got {}",
                json_kind(other)
            ))
        }
    };
    let mut problems = Vec::new();
    let text = match args.get("text") {
        Some(Value::String(s)) => Some(s.clone()),
        None => {
            problems.push("missing required argument \"text\" (string)".to_string());
            None
        }
        Some(other) => {
            problems.push(format!(
                "\"text\" must be a string, got {}",
                json_kind(other)
            ));
            None
        }
    };
    let chat_id = match args.get("chat_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            problems.push(format!(
                "\"chat_id\" must be a string, got {}",
                json_kind(other)
            ));
            None
        }
    };
    let is_final = match args.get("final") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            problems.push(format!(
                "\"final\" must be a boolean, got {}",
                json_kind(other)
            ));
            true
        }
    };
    for key in args.keys() {
        if !matches!(key.as_str(), "text" | "chat_id" | "final") {
            problems.push(format!(
                "unknown argument {key:?} (reply takes text, chat_id, final)"
            ));
        }
    }
    match (problems.is_empty(), text) {
        (true, Some(text)) => Ok(Reply {
            text,
            chat_id,
            is_final,
        }),
        _ => Err(format!("invalid reply arguments: {}", problems.join("; "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_text_serializes_exactly_as_its_value_frame() {
        for (id, text, is_error) in [
            (json!(7), "Reply sent to 1 connected client(s).", false),
            (
                json!("abc"),
                "reply not delivered: \"quoted\" \u{e9}\n",
                true,
            ),
            (json!(1e70), "", false),
        ] {
            let t = ToolText {
                id,
                text: text.into(),
                is_error,
            };
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                serde_json::to_string(&t.to_frame()).unwrap()
            );
        }
    }

    #[test]
    fn accepts_minimal_and_full_arguments() {
        let r = parse_reply_args(Some(&json!({"text": "hi"}))).unwrap();
        assert_eq!(
            r,
            Reply {
                text: "hi".into(),
                chat_id: None,
                is_final: true
            }
        );
        let r =
            parse_reply_args(Some(&json!({"text": "", "chat_id": "c1", "final": false}))).unwrap();
        assert_eq!(
            r,
            Reply {
                text: "".into(),
                chat_id: Some("c1".into()),
                is_final: false
            }
        );
    }

    #[test]
    fn reports_every_problem() {
        let err =
            parse_reply_args(Some(&json!({"chat_id": 5, "final": "yes", "txt": "x"}))).unwrap_err();
        assert!(err.contains("missing required argument \"text\""), "{err}");
        assert!(
            err.contains("\"chat_id\" must be a string, got a number"),
            "{err}"
        );
        assert!(
            err.contains("\"final\" must be a boolean, got a string"),
            "{err}"
        );
        assert!(err.contains("unknown argument \"txt\""), "{err}");
    }

    #[test]
    fn refuses_non_object_arguments() {
        assert!(parse_reply_args(None)
            .unwrap_err()
            .contains("needs arguments"));
        let err = parse_reply_args(Some(&json!("hi"))).unwrap_err();
        assert!(err.contains("must be an object, got a string"), "{err}");
        let err = parse_reply_args(Some(&json!({"text": ["a"]}))).unwrap_err();
        assert!(
            err.contains("\"text\" must be a string, got an array"),
            "{err}"
        );
    }

    #[test]
    fn description_is_under_the_claude_code_cap() {
        let def = reply_tool_definition();
        assert!(def["description"].as_str().unwrap().len() < 2048);
    }
}
