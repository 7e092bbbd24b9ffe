//! Test support for the WebSocket bridge: a scripted bridge on loopback
//! ([`BridgeServer`]/[`BridgePeer`], real tokio-tungstenite), a driver for
//! the real `channel-plugin ws` process over real pipes ([`Plugin`]), and
//! validation of every frame against `fixtures/schemas/ws/`.
// The upgrade callback signature (a large `Err`) is fixed by tungstenite.
#![allow(dead_code, clippy::result_large_err)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

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

pub fn plugin_bin() -> &'static str {
    env!("CARGO_BIN_EXE_channel-plugin")
}

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

/// A running plugin process, driven as Claude Code would over its stdio.
pub struct Plugin {
    pub child: Child,
    stdin: Option<ChildStdin>,
    stdout: mpsc::UnboundedReceiver<Result<Value, String>>,
    /// Messages read while waiting for something else.
    backlog: VecDeque<Value>,
    stderr: Arc<Mutex<String>>,
    next_id: i64,
}

impl Plugin {
    pub fn spawn(mut cmd: Command) -> Plugin {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawning channel-plugin");
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::unbounded_channel();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                // stdout is protocol only: anything else is a defect.
                let item = serde_json::from_str::<Value>(&line)
                    .map_err(|e| format!("non-JSON line on stdout {line:?}: {e}"));
                if tx.send(item).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut err_lines = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                if std::env::var_os("WS_TEST_ECHO_STDERR").is_some() {
                    eprintln!("[plugin] {line}");
                }
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Plugin {
            child,
            stdin,
            stdout: rx,
            backlog: VecDeque::new(),
            stderr,
            next_id: 0,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("plugin still running")
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
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
        let mut line = serde_json::to_vec(&msg).unwrap();
        line.push(b'\n');
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(&line)
            .await
            .expect("writing to plugin stdin");
        stdin.flush().await.unwrap();
    }

    async fn read(&mut self) -> Value {
        match tokio::time::timeout(WAIT, self.stdout.recv()).await {
            Err(_) => panic!(
                "no message on stdout within {WAIT:?}; stderr:\n{}",
                self.stderr()
            ),
            Ok(None) => panic!("plugin stdout closed; stderr:\n{}", self.stderr()),
            Ok(Some(Err(bad))) => panic!("{bad}"),
            Ok(Some(Ok(v))) => v,
        }
    }

    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc":"2.0","id":id,"method":method,"params":params}))
            .await;
        loop {
            let msg = self.read().await;
            if msg.get("id") == Some(&json!(id)) && msg.get("method").is_none() {
                return msg;
            }
            self.backlog.push_back(msg);
        }
    }

    /// initialize, initialized, tools/list: what Claude Code does first.
    pub async fn handshake(&mut self) -> Value {
        let init = self
            .request(
                "initialize",
                json!({"protocolVersion":"2025-11-25","capabilities":{},
                       "clientInfo":{"name":"ws-test","version":"0"}}),
            )
            .await;
        assert!(init.get("result").is_some(), "initialize failed: {init}");
        self.send(json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
            .await;
        let tools = self.request("tools/list", json!({})).await;
        assert!(
            tools["result"]["tools"].is_array(),
            "tools/list failed: {tools}"
        );
        init
    }

    /// Call `reply`; returns the tool result (`result` of the response).
    pub async fn reply(&mut self, text: &str, is_final: bool) -> Value {
        let resp = self
            .request(
                "tools/call",
                json!({"name":"reply","arguments":{"text":text,"final":is_final}}),
            )
            .await;
        resp.get("result")
            .cloned()
            .unwrap_or_else(|| panic!("tools/call failed: {resp}"))
    }

    /// The next notification with `method` (others are kept for later).
    pub async fn expect_notification(&mut self, method: &str) -> Value {
        if let Some(pos) = self.backlog.iter().position(|m| m["method"] == method) {
            return self.backlog.remove(pos).unwrap()["params"].clone();
        }
        loop {
            let msg = self.read().await;
            if msg["method"] == method {
                return msg["params"].clone();
            }
            self.backlog.push_back(msg);
        }
    }

    /// Close stdin (Claude Code went away) and wait for the exit.
    pub async fn close_stdin_and_wait(&mut self) -> ExitStatus {
        drop(self.stdin.take());
        match tokio::time::timeout(WAIT, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!(
                "plugin did not exit after stdin closed; stderr:\n{}",
                self.stderr()
            ),
        }
    }
}

/// Text of a tool result's first content item.
pub fn result_text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
