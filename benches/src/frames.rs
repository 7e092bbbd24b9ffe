//! The client side of the stdio protocol, as Claude Code 2.1.330 sends it.

use serde_json::json;

/// `initialize`, id 0, Claude Code 2.1.330's shape (one line, with `\n`).
pub fn initialize() -> Vec<u8> {
    line(&json!({
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {"roots": {"listChanged": true}, "elicitation": {"form": {}, "url": {}}},
            "clientInfo": {"name": "claude-code", "title": "Claude Code", "version": "2.1.330"}
        },
        "jsonrpc": "2.0",
        "id": 0
    }))
}

/// `notifications/initialized` then `tools/list` (id 1), written together as
/// Claude Code does.
pub fn initialized_and_list() -> Vec<u8> {
    let mut out = line(&json!({"method": "notifications/initialized", "jsonrpc": "2.0"}));
    out.extend(line(
        &json!({"method": "tools/list", "jsonrpc": "2.0", "id": 1}),
    ));
    out
}

/// A `reply` tool call with request id `id`.
pub fn reply_call(id: u64, text: &str) -> Vec<u8> {
    line(&json!({
        "method": "tools/call",
        "params": {
            "name": "reply",
            "arguments": {"text": text, "chat_id": "bench"},
            "_meta": {"claudecode/toolUseId": format!("toolu_bench{id}"), "progressToken": id}
        },
        "jsonrpc": "2.0",
        "id": id
    }))
}

/// The `/inject` body used everywhere: a short chat message with meta.
pub fn inject_body(n: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "content": format!("hello from the bench, message {n}"),
        "chat_id": "bench",
        "meta": {"user": "bench"}
    }))
    .expect("serializable")
}

fn line(v: &serde_json::Value) -> Vec<u8> {
    let mut out = serde_json::to_vec(v).expect("serializable");
    out.push(b'\n');
    out
}

/// Whether a stdout line is a channel notification (cheap substring test:
/// the driver must not spend more than the server).
pub fn is_channel_notification(line: &[u8]) -> bool {
    memfind(line, b"\"notifications/claude/channel\"")
}

/// Whether a stdout line is the response with numeric id `id`.
pub fn is_response_to(line: &[u8], id: u64) -> bool {
    let a = format!("\"id\":{id},");
    let b = format!("\"id\":{id}}}");
    !memfind(line, b"\"method\"") && (memfind(line, a.as_bytes()) || memfind(line, b.as_bytes()))
}

pub fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
