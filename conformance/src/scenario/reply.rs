//! `reply`: the scripted model answers a channel turn with the reply tool;
//! the text must come out at the outside.

use std::time::Instant;

use serde_json::{json, Value};

use super::{gate_blocked, start_and_handshake, Ctx, ScenarioOutcome};
use crate::catalogue::Scenario;
use crate::outcome::Finding;
use crate::trigger::OutsideEvent;

const CHAT: &str = "conf-reply-1";

pub async fn run(ctx: &Ctx) -> ScenarioOutcome {
    let mut out = ScenarioOutcome::default();
    if let Some(why) = ctx.trigger.missing(true) {
        out.push("reply.round-trip", Finding::skip(why), &[]);
        return out;
    }
    let Some((mut plugin, mut outside, hs)) =
        start_and_handshake(ctx, Scenario::Reply, &mut out).await
    else {
        return out;
    };
    let finding = 'check: {
        let Some(tool) = hs.tool("reply").cloned() else {
            break 'check Finding::skip("no reply tool (see handshake.reply-tool)");
        };
        if let Some(blocked) = gate_blocked(&hs) {
            break 'check blocked;
        }
        if let Err(e) = outside.connect(plugin.pid(), ctx.timeouts.connect).await {
            break 'check Finding::fail(format!(
                "cannot reach the plugin's outside endpoint: {e:#}"
            ));
        }
        let event = OutsideEvent {
            content: "conformance: please reply".into(),
            meta: vec![("chat_id".into(), CHAT.into())],
            chat_id: Some(CHAT.into()),
        };
        if let Err(e) = outside.inject(&event).await {
            break 'check Finding::fail(format!("injecting the event failed: {e:#}"));
        }
        let Some(turn) = plugin.next_turn(ctx.timeouts.event).await else {
            break 'check Finding::fail(format!(
                "the event never became a turn within {:?}",
                ctx.timeouts.event
            ));
        };
        let attrs = mock_claude::render::parse_turn(&ctx.profile.render, &turn.text)
            .map(|t| t.attributes)
            .unwrap_or_default();
        let nonce = format!("conformance reply {}", uuid::Uuid::new_v4().simple());
        let args = reply_arguments(&tool["inputSchema"], &nonce, &attrs);
        match plugin.call_tool("reply", args.clone()).await {
            Err(e) => break 'check Finding::fail(format!("tools/call reply {args} failed: {e}")),
            Ok(r) if r.is_error => {
                break 'check Finding::fail(format!(
                    "tools/call reply {args} returned isError: {}",
                    r.text
                ))
            }
            Ok(_) => {}
        }
        let deadline = Instant::now() + ctx.timeouts.event;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match outside.next_reply(left).await {
                Some(r) if r.text.contains(&nonce) => {
                    let chat_note = match &r.chat_id {
                        Some(c) if c != CHAT => format!(" but for chat {c:?}, not {CHAT:?}"),
                        _ => String::new(),
                    };
                    if chat_note.is_empty() {
                        break 'check Finding::pass(format!("the reply reached the outside (final: {})", r.is_final));
                    }
                    break 'check Finding::fail(format!("the reply reached the outside{chat_note}"));
                }
                Some(r) => seen.push(r.text),
                None => {
                    break 'check Finding::fail(format!(
                        "the reply tool succeeded but the text never reached the outside within {:?} (saw {} other reply(s))",
                        ctx.timeouts.event,
                        seen.len()
                    ))
                }
            }
        }
    };
    plugin.shutdown().await;
    out.record("reply", &mut plugin, &outside.secrets()).await;
    out.push("reply.round-trip", finding, &["tools/call", "reply"]);
    out
}

/// Arguments for the plugin's reply tool: `text` (or the first required
/// string property) gets the nonce; properties named like a turn attribute
/// (`chat_id`) get the attribute's value, as a model following the
/// instructions would do.
pub fn reply_arguments(schema: &Value, text: &str, attrs: &[(String, String)]) -> Value {
    let props = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let required: Vec<String> = schema["required"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut args = serde_json::Map::new();
    let text_key = if props.contains_key("text") || props.is_empty() {
        "text".to_string()
    } else {
        required
            .iter()
            .find(|k| props[k.as_str()]["type"] == "string" && !attrs.iter().any(|(a, _)| a == *k))
            .cloned()
            .unwrap_or_else(|| "text".into())
    };
    args.insert(text_key, json!(text));
    for (k, v) in attrs {
        if props.contains_key(k) && !args.contains_key(k) {
            args.insert(k.clone(), json!(v));
        }
    }
    Value::Object(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_arguments_follow_the_schema() {
        let schema = json!({"type":"object","properties":{"text":{"type":"string"},"chat_id":{"type":"string"}},"required":["text"]});
        let attrs = vec![
            ("chat_id".to_string(), "c1".to_string()),
            ("user".to_string(), "u".to_string()),
        ];
        assert_eq!(
            reply_arguments(&schema, "hi", &attrs),
            json!({"text":"hi","chat_id":"c1"})
        );
        let schema = json!({"type":"object","properties":{"message":{"type":"string"}},"required":["message"]});
        assert_eq!(reply_arguments(&schema, "hi", &[]), json!({"message":"hi"}));
    }
}
