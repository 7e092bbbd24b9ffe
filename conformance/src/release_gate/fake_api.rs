//! A loopback fake of the Anthropic Messages API (`POST /v1/messages`), scripted to drive one
//! tool call.
//!
//! The first request that offers the target tool (e.g. `mcp__probe__reply`) is answered with a
//! `tool_use` of it; the request that carries the matching `tool_result` is answered with a final
//! text; anything else (title generation, side queries) gets a short text. Every request is logged
//! (path, model, tool names, and the tool results it carries) to the shared event log, never the
//! headers' values (the API key is fake, but the rule is the rule).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use super::events::EventLog;

/// Prefix of the `tool_use` ids the fake model uses (attempt number appended), so recordings can
/// find them again.
pub const TOOL_USE_ID: &str = "toolu_01ReleaseGateProbeCall";

/// How many times the fake model tries the tool. Since 2.1.3xx `-p` connects `--mcp-config`
/// servers without blocking, so the first request may not offer the tool yet; the model then
/// calls it anyway, the client answers "no such tool", and the next attempt usually finds it.
pub const MAX_ATTEMPTS: usize = 3;

/// What the fake model does.
#[derive(Debug, Clone)]
pub struct Script {
    /// Full tool name to call, e.g. `mcp__probe__reply`.
    pub tool: String,
    /// Input of the call.
    pub input: Value,
}

struct Shared {
    script: Script,
    log: EventLog,
}

/// A running fake API; dropping it does not stop the server (it dies with the runtime).
pub struct FakeApi {
    pub addr: SocketAddr,
}

impl FakeApi {
    /// `http://127.0.0.1:PORT`, the value for `ANTHROPIC_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Binds 127.0.0.1:0 and serves in the background on the current tokio runtime.
pub async fn start(script: Script, log: EventLog) -> anyhow::Result<FakeApi> {
    let shared = Arc::new(Shared { script, log });
    let app = Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .fallback(fallback)
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!("fake Messages API stopped: {err}");
        }
    });
    Ok(FakeApi { addr })
}

async fn fallback(State(s): State<Arc<Shared>>, uri: Uri) -> Response {
    s.log.emit("api_unknown", json!({"path": uri.path()}));
    (StatusCode::NOT_FOUND, "release-gate fake API: unknown path").into_response()
}

async fn count_tokens(State(s): State<Arc<Shared>>) -> Response {
    s.log.emit("api_count_tokens", json!({}));
    axum::Json(json!({"input_tokens": 42})).into_response()
}

/// Every `tool_result` block in the request's messages: `(tool_use_id, content)`.
fn tool_results(body: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for msg in body["messages"].as_array().into_iter().flatten() {
        for block in msg["content"].as_array().into_iter().flatten() {
            if block["type"] == "tool_result" {
                out.push((
                    block["tool_use_id"].as_str().unwrap_or("").to_owned(),
                    json!({"content": block["content"], "is_error": block["is_error"]}),
                ));
            }
        }
    }
    out
}

async fn messages(
    State(s): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        s.log.emit("api_bad_body", json!({"len": body.len()}));
        return (
            StatusCode::BAD_REQUEST,
            "release-gate fake API: body is not JSON",
        )
            .into_response();
    };
    let tools: Vec<String> = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    let offered = tools.iter().any(|t| *t == s.script.tool);
    let results = tool_results(&body);
    let ours: Vec<&(String, Value)> = results
        .iter()
        .filter(|(id, _)| id.starts_with(TOOL_USE_ID))
        .collect();
    let success = ours
        .iter()
        .find(|(_, r)| r["is_error"] != true)
        .map(|(_, r)| r.clone());
    let is_main_loop = body["tools"].as_array().is_some_and(|t| !t.is_empty());
    let stream = body["stream"].as_bool().unwrap_or(false);
    let mcp_tools: Vec<&String> = tools.iter().filter(|t| t.starts_with("mcp__")).collect();
    let target_tool = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["name"] == s.script.tool.as_str())
        .cloned();
    if let Some(dir) = std::env::var_os("RELEASE_GATE_DUMP_API") {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let _ = std::fs::write(
            std::path::Path::new(&dir).join(format!("req-{n}.json")),
            body.to_string(),
        );
    }
    s.log.emit(
        "api_request",
        json!({
            "path": uri.path(),
            "query": uri.query(),
            "model": body["model"],
            "stream": stream,
            "tool_count": tools.len(),
            "mcp_tools": mcp_tools,
            "tool_names": tools,
            "target_named_in_messages": body["messages"].to_string().contains(s.script.tool.as_str()),
            "system_has_probe_instructions": body["system"].to_string().contains("Recording probe of the channel release gate"),
            "messages_mention_probe_instructions": body["messages"].to_string().contains("Recording probe of the channel release gate"),
            "target_tool": target_tool,
            "tool_results": results.iter().map(|(id, c)| json!({"tool_use_id": id, "result": c})).collect::<Vec<_>>(),
            "header_names": headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            "anthropic_beta": headers.get("anthropic-beta").and_then(|v| v.to_str().ok()),
        }),
    );

    let content: Vec<Value> = if let Some(result) = success {
        let text = format!("The reply tool answered: {}", result["content"]);
        vec![json!({"type": "text", "text": text})]
    } else if is_main_loop && ours.len() < MAX_ATTEMPTS {
        let id = format!("{TOOL_USE_ID}{:02}", ours.len() + 1);
        s.log
            .emit("api_tool_use", json!({"id": id, "offered": offered}));
        vec![json!({"type": "tool_use", "id": id, "name": s.script.tool, "input": s.script.input})]
    } else {
        vec![json!({"type": "text", "text": "ok"})]
    };
    let stop = if content[0]["type"] == "tool_use" {
        "tool_use"
    } else {
        "end_turn"
    };
    let model = body["model"].as_str().unwrap_or("claude-fake").to_owned();
    if stream {
        sse(&model, &content, stop)
    } else {
        axum::Json(json!({
            "id": "msg_release_gate", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 5}
        }))
        .into_response()
    }
}

/// The streamed form of one assistant message, as the real API sends it.
fn sse(model: &str, content: &[Value], stop: &str) -> Response {
    let mut out = String::new();
    let mut event = |name: &str, data: Value| {
        out.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    };
    event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_release_gate", "type": "message",
            "role": "assistant", "model": model, "content": [], "stop_reason": null,
            "stop_sequence": null, "usage": {"input_tokens": 10, "output_tokens": 1}}}),
    );
    for (index, block) in content.iter().enumerate() {
        match block["type"].as_str() {
            Some("tool_use") => {
                event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": index, "content_block":
                        {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}}),
                );
                event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index, "delta":
                        {"type": "input_json_delta", "partial_json": block["input"].to_string()}}),
                );
            }
            _ => {
                event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": index, "content_block":
                        {"type": "text", "text": ""}}),
                );
                event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index, "delta":
                        {"type": "text_delta", "text": block["text"]}}),
                );
            }
        }
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        );
    }
    event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
            "usage": {"output_tokens": 5}}),
    );
    event("message_stop", json!({"type": "message_stop"}));
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("request-id", "req_release_gate")
        .body(Body::from(out))
        .expect("static response parts are valid")
}
