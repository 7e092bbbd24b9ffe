//! The JSON text frames spoken with the agent platform's bridge.
//!
//! Out (plugin → bridge): `hello` (first, on every connection), `reply`,
//! `permission_request` (relay on only), `error` (answer to a bad inbound
//! frame). In (bridge → plugin): `inbound`, `permission`.
//! JSON Schemas for every kind live in `fixtures/schemas/ws/`.
//!
//! Parsing is strict about what matters (types of known fields, meta rules)
//! and lenient about unknown extra fields, so a newer bridge that adds fields
//! keeps working. Every refusal comes back as a [`FrameError`] whose text is
//! sent to the bridge as `{"type":"error","reason":…}`.

use crate::mcp::meta::json_kind;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::bridge::{Behavior, ChannelEvent, PermissionRequest};
use crate::mcp::meta;

/// A frame the plugin sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutFrame {
    /// Who we are; always the first frame of a connection.
    Hello {
        openclaw_session: String,
        claude_session: String,
        pid: u32,
        /// `channel-plugin` version.
        version: String,
    },
    /// A `reply` tool call. `final: false` is a progress chunk the bridge
    /// buffers until a final one. `seq` grows by one per reply for the life of
    /// the plugin (across reconnects): a bridge that sees a `seq` twice (a
    /// resend after a connection died mid-flight) drops the second copy.
    Reply {
        text: String,
        #[serde(rename = "final")]
        is_final: bool,
        seq: u64,
        /// Only when the model passed one (the WebSocket session is already
        /// one conversation, so bridges usually ignore it).
        #[serde(skip_serializing_if = "Option::is_none")]
        chat_id: Option<String>,
    },
    /// Claude Code asks the outside to approve a tool use.
    PermissionRequest {
        request_id: String,
        tool_name: String,
        description: String,
        input_preview: String,
    },
    /// Answer to an inbound frame that was not accepted.
    Error { reason: String },
}

impl OutFrame {
    pub fn permission_request(request: &PermissionRequest) -> Self {
        OutFrame::PermissionRequest {
            request_id: request.request_id.clone(),
            tool_name: request.tool_name.clone(),
            description: request.description.clone(),
            input_preview: request.input_preview.clone(),
        }
    }

    pub fn error(reason: impl Into<String>) -> Self {
        OutFrame::Error {
            reason: reason.into(),
        }
    }

    /// The text of the WebSocket message.
    pub fn to_json(&self) -> String {
        // Serializing plain strings, bools and integers cannot fail.
        serde_json::to_string(self).expect("OutFrame serializes")
    }
}

/// Largest inbound text frame accepted, the HTTP bridge's body cap. Claude
/// Code closes the whole MCP connection on a stdout line over 16 MiB, so one
/// oversized event would cut the channel for the rest of the session.
pub const MAX_INBOUND_FRAME_BYTES: usize = 1024 * 1024;

/// A frame the bridge sent, already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InFrame {
    /// Push this into the Claude Code session.
    Inbound(ChannelEvent),
    /// A verdict for a permission request (relay on only).
    Permission {
        request_id: String,
        behavior: Behavior,
    },
}

/// Why an inbound frame was refused; the text goes back in an error frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FrameError(pub String);

impl InFrame {
    /// Parse one text message from the bridge.
    pub fn parse(text: &str) -> Result<InFrame, FrameError> {
        if text.len() > MAX_INBOUND_FRAME_BYTES {
            return Err(FrameError(format!(
                "frame of {} bytes exceeds the {MAX_INBOUND_FRAME_BYTES} byte limit; not delivered",
                text.len()
            )));
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|err| FrameError(format!("frame is not valid JSON: {err}")))?;
        let Value::Object(obj) = value else {
            return Err(FrameError(format!(
                "frame must be a JSON object, got {}",
                json_kind(&value)
            )));
        };
        let frame_type = match obj.get("type") {
            Some(Value::String(t)) => t.as_str(),
            Some(other) => {
                return Err(FrameError(format!(
                    "frame field \"type\" must be a string, got {}",
                    json_kind(other)
                )))
            }
            None => return Err(FrameError("frame has no \"type\" field".into())),
        };
        match frame_type {
            "inbound" => parse_inbound(&obj),
            "permission" => parse_permission(&obj),
            other => Err(FrameError(format!(
                "unknown frame type {other:?} (this plugin accepts \"inbound\" and \"permission\")"
            ))),
        }
    }
}

fn parse_inbound(obj: &Map<String, Value>) -> Result<InFrame, FrameError> {
    let content = required_string(obj, "inbound", "content")?;
    if content.is_empty() {
        return Err(FrameError("inbound frame: \"content\" is empty".into()));
    }
    let meta = meta::normalize(obj.get("meta"))
        .map_err(|err| FrameError(format!("inbound frame: {err}")))?;
    Ok(InFrame::Inbound(ChannelEvent {
        content: content.to_owned(),
        meta,
    }))
}

fn parse_permission(obj: &Map<String, Value>) -> Result<InFrame, FrameError> {
    let request_id = required_string(obj, "permission", "request_id")?;
    let behavior = match required_string(obj, "permission", "behavior")? {
        "allow" => Behavior::Allow,
        "deny" => Behavior::Deny,
        other => {
            return Err(FrameError(format!(
                "permission frame: \"behavior\" must be \"allow\" or \"deny\", got {other:?}"
            )))
        }
    };
    Ok(InFrame::Permission {
        request_id: request_id.to_owned(),
        behavior,
    })
}

fn required_string<'a>(
    obj: &'a Map<String, Value>,
    frame: &str,
    field: &str,
) -> Result<&'a str, FrameError> {
    match obj.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(FrameError(format!(
            "{frame} frame: \"{field}\" must be a string, got {}",
            json_kind(other)
        ))),
        None => Err(FrameError(format!("{frame} frame: missing \"{field}\""))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn out_frames_have_the_agreed_shape() {
        let hello = OutFrame::Hello {
            openclaw_session: "developer::discord:channel:123".into(),
            claude_session: "c0ffee".into(),
            pid: 42,
            version: "0.1.0".into(),
        };
        assert_eq!(
            serde_json::from_str::<Value>(&hello.to_json()).unwrap(),
            json!({"type":"hello","openclaw_session":"developer::discord:channel:123",
                   "claude_session":"c0ffee","pid":42,"version":"0.1.0"})
        );
        let reply = OutFrame::Reply {
            text: "hi".into(),
            is_final: false,
            seq: 7,
            chat_id: None,
        };
        assert_eq!(
            reply.to_json(),
            r#"{"type":"reply","text":"hi","final":false,"seq":7}"#
        );
        let reply = OutFrame::Reply {
            text: "x".into(),
            is_final: true,
            seq: 8,
            chat_id: Some("c1".into()),
        };
        assert_eq!(
            reply.to_json(),
            r#"{"type":"reply","text":"x","final":true,"seq":8,"chat_id":"c1"}"#
        );
        assert_eq!(
            OutFrame::error("nope").to_json(),
            r#"{"type":"error","reason":"nope"}"#
        );
        let req = PermissionRequest {
            request_id: "abcde".into(),
            tool_name: "Bash".into(),
            description: "run ls".into(),
            input_preview: "{\"command\":\"ls\"}".into(),
        };
        assert_eq!(
            serde_json::from_str::<Value>(&OutFrame::permission_request(&req).to_json()).unwrap(),
            json!({"type":"permission_request","request_id":"abcde","tool_name":"Bash",
                   "description":"run ls","input_preview":"{\"command\":\"ls\"}"})
        );
    }

    #[test]
    fn inbound_with_meta_in_order() {
        let f = InFrame::parse(
            r#"{"type":"inbound","content":"hello","meta":{"user":"ann","chat_id":"9","n":3}}"#,
        )
        .unwrap();
        assert_eq!(
            f,
            InFrame::Inbound(ChannelEvent {
                content: "hello".into(),
                meta: vec![
                    ("user".into(), "ann".into()),
                    ("chat_id".into(), "9".into()),
                    ("n".into(), "3".into())
                ],
            })
        );
        // No meta, null meta and unknown extra fields are all fine.
        assert!(InFrame::parse(r#"{"type":"inbound","content":"x"}"#).is_ok());
        assert!(
            InFrame::parse(r#"{"type":"inbound","content":"x","meta":null,"extra":1}"#).is_ok()
        );
    }

    #[test]
    fn bad_frames_say_what_is_wrong() {
        let cases = [
            ("not json", "not valid JSON"),
            ("[1,2]", "must be a JSON object, got an array"),
            (r#"{"content":"x"}"#, "no \"type\""),
            (r#"{"type":5}"#, "\"type\" must be a string"),
            (r#"{"type":"bogus"}"#, "unknown frame type \"bogus\""),
            (r#"{"type":"inbound"}"#, "missing \"content\""),
            (
                r#"{"type":"inbound","content":1}"#,
                "\"content\" must be a string, got a number",
            ),
            (r#"{"type":"inbound","content":""}"#, "\"content\" is empty"),
            (
                r#"{"type":"inbound","content":"x","meta":{"bad-key":"v"}}"#,
                "bad-key",
            ),
            (
                r#"{"type":"inbound","content":"x","meta":{"k":{"a":1}}}"#,
                "value is an object",
            ),
            (
                r#"{"type":"inbound","content":"x","meta":"s"}"#,
                "meta must be a JSON object",
            ),
            (
                r#"{"type":"permission","behavior":"allow"}"#,
                "missing \"request_id\"",
            ),
            (
                r#"{"type":"permission","request_id":"abcde","behavior":"maybe"}"#,
                "\"allow\" or \"deny\"",
            ),
        ];
        for (text, needle) in cases {
            let err = InFrame::parse(text).unwrap_err();
            assert!(err.0.contains(needle), "{text}: {err} (wanted {needle:?})");
        }
    }

    #[test]
    fn permission_verdicts() {
        assert_eq!(
            InFrame::parse(r#"{"type":"permission","request_id":"abcde","behavior":"deny"}"#)
                .unwrap(),
            InFrame::Permission {
                request_id: "abcde".into(),
                behavior: Behavior::Deny
            }
        );
    }
}
