//! Test support for the WebSocket bridge: a scripted bridge on loopback
//! ([`BridgeServer`]/[`BridgePeer`], real tokio-tungstenite), a driver for
//! the real `channel-plugin ws` process over real pipes ([`Plugin`], built on
//! the shared `support::McpClient`; test files declare `mod support;` too), and
//! validation of every frame against `fixtures/schemas/ws/`.
// The upgrade callback signature (a large `Err`) is fixed by tungstenite.
#![allow(dead_code, clippy::result_large_err)]

use std::net::SocketAddr;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::support::{reply_call, McpClient};

/// Generous: the machine is shared; never assert speed.
pub const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- schemas

fn schema_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/schemas/ws")
}

/// Frame kind → compiled schema, loaded once from `fixtures/schemas/ws/`.
fn validators() -> &'static Vec<(String, jsonschema::Validator)> {
    static V: OnceLock<Vec<(String, jsonschema::Validator)>> = OnceLock::new();
    V.get_or_init(|| {
        let mut out = Vec::new();
        for kind in [
            "hello",
            "reply",
            "permission_request",
            "error",
            "inbound",
            "permission",
        ] {
            let path = schema_dir().join(format!("{kind}.schema.json"));
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
            let validator = jsonschema::validator_for(&schema)
                .unwrap_or_else(|e| panic!("{} is not a valid schema: {e}", path.display()));
            out.push((kind.to_string(), validator));
        }
        out
    })
}

/// The schema errors of `frame` (picked by its `type`), empty when valid.
pub fn schema_errors(frame: &Value) -> Vec<String> {
    let Some(kind) = frame.get("type").and_then(Value::as_str) else {
        return vec!["frame has no string \"type\"".into()];
    };
    let Some((_, validator)) = validators().iter().find(|(k, _)| k == kind) else {
        return vec![format!("no schema for frame type {kind:?}")];
    };
    validator
        .iter_errors(frame)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect()
}

/// Panics unless `frame` is valid against the schema of its kind.
pub fn assert_valid_frame(frame: &Value) {
    let errors = schema_errors(frame);
    assert!(
        errors.is_empty(),
        "frame {frame} breaks its schema: {errors:?}"
    );
}

// ---------------------------------------------------------------- bridge

/// A WebSocket bridge on 127.0.0.1, scripted by the test.
pub struct BridgeServer {
    listener: TcpListener,
    pub addr: SocketAddr,
}

impl BridgeServer {
    pub async fn bind() -> Self {
        Self::bind_at("127.0.0.1:0".parse().unwrap()).await
    }

    /// Bind a given address (a restarted bridge reuses its port).
    pub async fn bind_at(addr: SocketAddr) -> Self {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => {
                    let addr = listener.local_addr().unwrap();
                    return BridgeServer { listener, addr };
                }
                Err(e) if tokio::time::Instant::now() < deadline => {
                    eprintln!("bind {addr}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot bind {addr}: {e}"),
            }
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/bridge", self.addr)
    }

    /// Accept the next plugin connection (WebSocket upgrade included).
    pub async fn accept(&self) -> BridgePeer {
        let (tcp, _) = tokio::time::timeout(WAIT, self.listener.accept())
            .await
            .expect("no plugin connected to the bridge in time")
            .expect("accept failed");
        let seen: Arc<Mutex<(Option<String>, String)>> = Arc::default();
        let record = seen.clone();
        let callback = move |req: &Request, resp: Response| {
            let auth = req
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_string());
            *record.lock().unwrap() = (auth, req.uri().path().to_string());
            Ok(resp)
        };
        let ws = tokio::time::timeout(WAIT, tokio_tungstenite::accept_hdr_async(tcp, callback))
            .await
            .expect("upgrade timed out")
            .expect("upgrade failed");
        let (authorization, path) = seen.lock().unwrap().clone();
        BridgePeer {
            ws,
            authorization,
            path,
        }
    }
}

/// One accepted plugin connection.
pub struct BridgePeer {
    pub ws: WebSocketStream<TcpStream>,
    /// The upgrade request's Authorization header.
    pub authorization: Option<String>,
    pub path: String,
}

impl BridgePeer {
    /// The next message of any kind.
    pub async fn next_message(&mut self) -> Message {
        match tokio::time::timeout(WAIT, self.ws.next()).await {
            Err(_) => panic!("no message from the plugin within {WAIT:?}"),
            Ok(None) => panic!("the plugin closed the connection"),
            Ok(Some(Err(e))) => panic!("reading from the plugin failed: {e}"),
            Ok(Some(Ok(m))) => m,
        }
    }

    /// The next JSON text frame (pings and pongs skipped), schema-checked.
    pub async fn expect_frame(&mut self) -> Value {
        loop {
            match self.next_message().await {
                Message::Text(text) => {
                    let frame: Value = serde_json::from_str(text.as_str())
                        .unwrap_or_else(|e| panic!("plugin sent non-JSON text {text:?}: {e}"));
                    assert_valid_frame(&frame);
                    return frame;
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next frame, which must be of `kind`.
    pub async fn expect_kind(&mut self, kind: &str) -> Value {
        let frame = self.expect_frame().await;
        assert_eq!(frame["type"], kind, "unexpected frame {frame}");
        frame
    }

    /// Read until the plugin's next ping (no text frame may come first), and
    /// send the pong for it (tungstenite queues it; flush writes it).
    pub async fn expect_ping(&mut self) -> Vec<u8> {
        loop {
            match self.next_message().await {
                Message::Ping(payload) => {
                    self.ws.flush().await.expect("flushing the pong");
                    return payload.to_vec();
                }
                Message::Pong(_) => continue,
                other => panic!("expected a ping, got {other:?}"),
            }
        }
    }

    /// Send a frame that must be valid against its schema.
    pub async fn send_frame(&mut self, frame: Value) {
        assert_valid_frame(&frame);
        self.send_text(&frame.to_string()).await;
    }

    /// Send raw text (for malformed frames).
    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_string()))
            .await
            .expect("sending to the plugin");
    }

    /// Read until the plugin's close frame; returns it.
    pub async fn expect_close(&mut self) -> Option<CloseFrame> {
        loop {
            match self.next_message().await {
                Message::Close(frame) => return frame,
                Message::Ping(_) | Message::Pong(_) => continue,
                Message::Text(t) => {
                    let frame: Value = serde_json::from_str(t.as_str()).unwrap();
                    assert_valid_frame(&frame);
                    panic!("expected close, got frame {frame}");
                }
                other => panic!("expected close, got {other:?}"),
            }
        }
    }
}

// ---------------------------------------------------------------- plugin

pub use crate::support::plugin_bin;

/// `channel-plugin ws` with a clean environment for its own variables, fast
/// test timings, and `extra` flags.
pub fn ws_command(url: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(plugin_bin());
    cmd.arg("ws")
        .args([
            "--url",
            url,
            "--openclaw-session",
            "developer::discord:channel:123",
        ])
        .args(["--claude-session", "5f0c6f7e-0000-4000-8000-000000000001"])
        .args(extra);
    // Fast reconnects unless the test picks its own.
    if !extra.contains(&"--reconnect-min-ms") {
        cmd.args(["--reconnect-min-ms", "50", "--reconnect-max-ms", "400"]);
    }
    clean_env(&mut cmd);
    cmd
}

pub fn clean_env(cmd: &mut Command) {
    for var in [
        "SYNTHESIS_WS_URL",
        "SYNTHESIS_OPENCLAW_SESSION",
        "SYNTHESIS_CLAUDE_SESSION",
        "SYNTHESIS_WS_TOKEN",
        "CLAUDE_CODE_SESSION_ID",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "info,channel_plugin=debug");
}

/// A running plugin process, driven as Claude Code would over its stdio:
/// the shared [`McpClient`] plus what the ws tests need on top.
pub struct Plugin {
    pub mcp: McpClient,
    /// Request ids for our calls (the shared handshake uses 0 and 1).
    next_id: i64,
}

impl Plugin {
    pub fn spawn(cmd: Command) -> Plugin {
        Plugin {
            mcp: McpClient::spawn_command(cmd),
            next_id: 100,
        }
    }

    pub fn pid(&self) -> u32 {
        self.mcp.pid()
    }

    pub fn stderr(&self) -> String {
        self.mcp.stderr()
    }

    /// Wait until stderr satisfies `pred`; panics with the log otherwise.
    pub async fn wait_stderr(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let log = self.stderr();
            if pred(&log) {
                return log;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("stderr never showed {what}; log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn send(&mut self, msg: Value) {
        self.mcp.send(&msg).await;
    }

    /// A request with a fresh id; returns the whole response.
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.mcp.call(id, method, params).await
    }

    /// The opening Claude Code 2.1.330 performs (shared support).
    pub async fn handshake(&mut self) -> Value {
        let result = self.mcp.handshake().await;
        // Keep the shape our tests read: `{"result": …}`.
        json!({ "result": result })
    }

    /// Call `reply` as Claude Code does; returns the tool result.
    pub async fn reply(&mut self, text: &str, is_final: bool) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.mcp
            .send(&reply_call(id, json!({"text": text, "final": is_final})))
            .await;
        let resp = self.mcp.expect_response(id).await;
        resp.get("result")
            .cloned()
            .unwrap_or_else(|| panic!("tools/call failed: {resp}"))
    }

    /// The params of the next notification with `method`.
    pub async fn expect_notification(&mut self, method: &str) -> Value {
        self.mcp.expect_notification(method).await["params"].clone()
    }

    /// Close stdin (Claude Code went away) and wait for the exit.
    pub async fn close_stdin_and_wait(&mut self) -> ExitStatus {
        self.mcp.close_stdin();
        self.mcp.wait_exit(WAIT).await
    }
}

/// Text of a tool result's first content item.
pub fn result_text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
