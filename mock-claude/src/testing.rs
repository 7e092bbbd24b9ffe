//! Test support in the style of lsp-server's `Connection::memory()` and h2's test-support: an
//! in-process [`ScriptedPlugin`] that speaks MCP over an in-memory pipe, so session logic can be
//! unit-tested without spawning processes.
//!
//! ```no_run
//! # async fn demo() -> mock_claude::Result<()> {
//! use mock_claude::{testing::{memory, ScriptedPlugin}, LaunchOptions, Profile};
//! let profile = Profile::by_version(mock_claude::fixtures_dir(), "2.1.330")?;
//! let (mut session, plugin) = memory(&profile, LaunchOptions::dev("zoo", vec![]), ScriptedPlugin::channel());
//! session.handshake().await?;
//! plugin.push("hello", serde_json::json!({"chat_id": "1"}));
//! let turn = session.next_turn(std::time::Duration::from_secs(5)).await?;
//! assert!(turn.text.starts_with("<channel source=\"zoo\" chat_id=\"1\">"));
//! # Ok(()) }
//! ```

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::options::LaunchOptions;
use crate::profile::Profile;
use crate::session::Session;

/// How the scripted plugin answers `server/discover`.
#[derive(Debug, Clone, PartialEq)]
pub enum DiscoverAnswer {
    /// `-32601 Method not found` (correct for a channel).
    MethodNotFound,
    /// No answer at all.
    Silent,
    /// A result (puts the client in the modern era).
    Result(Value),
}

/// Behaviour of the in-process plugin. Defaults are a correct channel server with a `reply`
/// tool and the permission capability.
#[derive(Debug, Clone)]
pub struct ScriptedPlugin {
    /// `capabilities` in the initialize result.
    pub capabilities: Value,
    /// Answer to `server/discover`.
    pub discover: DiscoverAnswer,
    /// `protocolVersion` answered (`None` = echo the client's).
    pub protocol_version: Option<String>,
    /// Tools listed.
    pub tools: Vec<Value>,
    /// Instructions.
    pub instructions: Option<String>,
    /// Text answered by every tool call (`isError: false`).
    pub tool_answer: String,
    /// Pushes sent right after answering `tools/list`.
    pub push_after_tools_list: Vec<Value>,
}

impl ScriptedPlugin {
    /// A correct channel server: `experimental["claude/channel"]` and
    /// `experimental["claude/channel/permission"]`, a `reply(chat_id, text)` tool.
    pub fn channel() -> Self {
        ScriptedPlugin {
            capabilities: json!({
                "experimental": { "claude/channel": {}, "claude/channel/permission": {} },
                "tools": {}
            }),
            discover: DiscoverAnswer::MethodNotFound,
            protocol_version: None,
            tools: vec![json!({
                "name": "reply",
                "description": "Send a message back to the chat.",
                "inputSchema": {
                    "type": "object",
                    "properties": { "chat_id": { "type": "string" }, "text": { "type": "string" } },
                    "required": ["text"]
                }
            })],
            instructions: Some(
                "Events arrive as <channel source=...>. Answer with the reply tool.".into(),
            ),
            tool_answer: "sent".into(),
            push_after_tools_list: Vec::new(),
        }
    }
}

/// The plugin side of a memory pair: push events, see what the client sent.
#[derive(Clone)]
pub struct PluginHandle {
    out: mpsc::UnboundedSender<Option<String>>,
    received: Arc<Mutex<Vec<Value>>>,
}

impl PluginHandle {
    /// Send `notifications/claude/channel` with `content` and `meta` (an object, or `null`).
    pub fn push(&self, content: &str, meta: Value) {
        let mut params = json!({ "content": content });
        if !meta.is_null() {
            params["meta"] = meta;
        }
        self.send(
            json!({ "jsonrpc": "2.0", "method": "notifications/claude/channel", "params": params }),
        );
    }
    /// Send any frame.
    pub fn send(&self, frame: Value) {
        let _ = self.out.send(Some(frame.to_string()));
    }
    /// Send a raw line (junk).
    pub fn send_raw(&self, line: &str) {
        let _ = self.out.send(Some(line.to_string()));
    }
    /// Send a permission verdict.
    pub fn verdict(&self, request_id: &str, behavior: &str) {
        self.send(json!({
            "jsonrpc": "2.0",
            "method": "notifications/claude/channel/permission",
            "params": { "request_id": request_id, "behavior": behavior }
        }));
    }
    /// Frames the client sent so far.
    pub fn received(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }
}

/// Connect a [`Session`] to an in-process [`ScriptedPlugin`] over an in-memory pipe.
/// Must be called inside a tokio runtime.
pub fn memory(
    profile: &Profile,
    options: LaunchOptions,
    plugin: ScriptedPlugin,
) -> (Session, PluginHandle) {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let (client_read, client_write) = tokio::io::split(client_io);
    let (server_read, mut server_write) = tokio::io::split(server_io);
    let session = Session::connect(profile, options, client_read, client_write);
    let (tx, mut rx) = mpsc::unbounded_channel::<Option<String>>();
    let received = Arc::new(Mutex::new(Vec::new()));
    let handle = PluginHandle {
        out: tx.clone(),
        received: received.clone(),
    };
    tokio::spawn(async move {
        // `None` = the client closed our stdin: exit like a correct server (close stdout).
        while let Some(Some(line)) = rx.recv().await {
            if server_write.write_all(line.as_bytes()).await.is_err()
                || server_write.write_all(b"\n").await.is_err()
            {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    });
    tokio::spawn(async move {
        let mut lines = BufReader::new(server_read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(frame) = serde_json::from_str::<Value>(&line) else {
                continue; // a malformed line: a correct server ignores it
            };
            received.lock().unwrap().push(frame.clone());
            let id = frame.get("id").cloned();
            let method = frame["method"].as_str().unwrap_or_default().to_string();
            let answer = |result: Value| json!({ "jsonrpc": "2.0", "id": id, "result": result });
            let reply = match (method.as_str(), &id) {
                (_, None) => None,
                ("server/discover", _) => match &plugin.discover {
                    DiscoverAnswer::MethodNotFound => Some(
                        json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32601, "message": "Method not found" } }),
                    ),
                    DiscoverAnswer::Silent => None,
                    DiscoverAnswer::Result(r) => Some(answer(r.clone())),
                },
                ("initialize", _) => {
                    let version = plugin.protocol_version.clone().unwrap_or_else(|| {
                        frame["params"]["protocolVersion"]
                            .as_str()
                            .unwrap_or("2025-11-25")
                            .into()
                    });
                    let mut r = json!({
                        "protocolVersion": version,
                        "capabilities": plugin.capabilities,
                        "serverInfo": { "name": "scripted-plugin", "version": "0.0.0" }
                    });
                    if let Some(i) = &plugin.instructions {
                        r["instructions"] = json!(i);
                    }
                    Some(answer(r))
                }
                ("tools/list", _) => Some(answer(json!({ "tools": plugin.tools }))),
                ("prompts/list", _) => Some(answer(json!({ "prompts": [] }))),
                ("resources/list", _) => Some(answer(json!({ "resources": [] }))),
                ("tools/call", _) => Some(answer(
                    json!({ "content": [{ "type": "text", "text": plugin.tool_answer }], "isError": false }),
                )),
                ("ping", _) => Some(answer(json!({}))),
                _ => Some(
                    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32601, "message": "Method not found" } }),
                ),
            };
            if let Some(r) = reply {
                let _ = tx.send(Some(r.to_string()));
            }
            if method == "tools/list" {
                for p in &plugin.push_after_tools_list {
                    let _ = tx.send(Some(p.to_string()));
                }
            }
        }
        let _ = tx.send(None);
    });
    (session, handle)
}
