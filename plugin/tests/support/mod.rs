//! Test support: a scripted MCP client that drives the real `channel-plugin`
//! binary over real pipes (in the style of h2's test-support: a scripted
//! peer, frame builders, `expect_*` helpers that fail with context).
//!
//! Usage from an integration test (`mod support;` at the top):
//!
//! ```ignore
//! let mut mcp = support::McpClient::spawn(&["http", "--discovery-dir", dir]).await;
//! mcp.handshake().await;                       // CHANNELS.md §3 opening
//! let n = mcp.expect_notification("notifications/claude/channel").await;
//! mcp.close_stdin();
//! assert!(mcp.wait_exit(support::TIMEOUT).await.success());
//! ```
//!
//! Frames that arrive while an `expect_*` helper looks for something else are
//! stashed, in order, and returned by later helpers: nothing is skipped
//! silently. The child's stderr is captured (see [`McpClient::stderr`]),
//! echoed to the test's stderr with a `[plugin]` prefix, and included in
//! every failure message.
//!
//! HTTP helpers for the `http` bridge live in [`http`].

#![allow(dead_code)]

pub mod http;

use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Generous wait for anything the plugin should do "promptly" (the machine
/// is shared and slow; never assert speed with it).
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Path of the binary under test.
pub fn plugin_bin() -> &'static str {
    env!("CARGO_BIN_EXE_channel-plugin")
}

/// A JSON-RPC request frame.
pub fn request(id: impl Into<Value>, method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id.into(), "method": method, "params": params })
}

/// A JSON-RPC notification frame.
pub fn notification(method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "method": method, "params": params })
}

/// The `initialize` params Claude Code 2.1.330 sends (CHANNELS.md §3).
pub fn claude_initialize_params() -> Value {
    json!({
        "protocolVersion": "2025-11-25",
        "capabilities": { "roots": { "listChanged": true }, "elicitation": { "form": {}, "url": {} } },
        "clientInfo": { "name": "claude-code", "title": "Claude Code", "version": "2.1.330" }
    })
}

/// A `tools/call` of `reply` as Claude Code sends it (with `_meta`).
/// The text of a `tools/call` response's first content item.
pub fn tool_text(response: &Value) -> &str {
    response["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no tool text in {response}"))
}

pub fn reply_call(id: i64, arguments: Value) -> Value {
    request(
        id,
        "tools/call",
        json!({
            "name": "reply",
            "arguments": arguments,
            "_meta": { "claudecode/toolUseId": format!("toolu_{id}"), "progressToken": id }
        }),
    )
}

/// The plugin process with a scripted MCP client on its stdio.
pub struct McpClient {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
    stderr_task: Option<tokio::task::JoinHandle<()>>,
    stash: VecDeque<Value>,
}

impl McpClient {
    /// Spawn `channel-plugin ARGS` with a clean, quiet-by-default env.
    pub async fn spawn(args: &[&str]) -> Self {
        Self::spawn_with(args, &[]).await
    }

    /// Spawn with extra environment variables (`RUST_LOG` defaults to `debug`).
    pub async fn spawn_with(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(plugin_bin());
        cmd.args(args)
            .env_remove("OPZERO_CHANNEL_SESSION_ID")
            .env_remove("OPZERO_CHANNEL_DIR")
            .env_remove("CLAUDE_CODE_SESSION_ID")
            .env("RUST_LOG", "channel_plugin=debug");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self::spawn_command(cmd)
    }

    /// Spawn a prepared command (stdio is set up here).
    pub fn spawn_command(mut cmd: Command) -> Self {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn channel-plugin");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut err_lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let stderr_task = tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                eprintln!("[plugin] {line}");
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        McpClient {
            child,
            stdin,
            stdout,
            stderr,
            stderr_task: Some(stderr_task),
            stash: VecDeque::new(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("child still running")
    }

    /// Everything the plugin wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Send one frame as a line.
    pub async fn send(&mut self, frame: &Value) {
        let mut line = serde_json::to_vec(frame).unwrap();
        line.push(b'\n');
        self.send_raw(&line).await;
    }

    /// Send raw bytes (malformed input, partial lines).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin.write_all(bytes).await.expect("write to plugin stdin");
        stdin.flush().await.expect("flush plugin stdin");
    }

    /// Close the plugin's stdin (Claude Code going away).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Send a signal to the plugin.
    pub fn signal(&self, signal: i32) {
        let pid = self.pid() as libc::pid_t;
        // SAFETY: plain kill(2) on our own child.
        assert_eq!(
            unsafe { libc::kill(pid, signal) },
            0,
            "kill({pid}, {signal})"
        );
    }

    async fn read_frame(&mut self, timeout: Duration) -> Option<Value> {
        match tokio::time::timeout(timeout, self.stdout.next_line()).await {
            Err(_) => None,
            Ok(Ok(Some(line))) => Some(serde_json::from_str(&line).unwrap_or_else(|e| {
                panic!(
                    "plugin wrote a non-JSON line to stdout: {line:?} ({e})\nstderr:\n{}",
                    self.stderr()
                )
            })),
            Ok(Ok(None)) => panic!("plugin closed stdout\nstderr:\n{}", self.stderr()),
            Ok(Err(e)) => panic!("reading plugin stdout: {e}\nstderr:\n{}", self.stderr()),
        }
    }

    /// The next frame (stashed ones first); panics after `timeout`.
    pub async fn expect_frame(&mut self, timeout: Duration) -> Value {
        if let Some(frame) = self.stash.pop_front() {
            return frame;
        }
        match self.read_frame(timeout).await {
            Some(frame) => frame,
            None => panic!("no frame within {timeout:?}\nstderr:\n{}", self.stderr()),
        }
    }

    /// Wait for the first frame matching `pred`, stashing the others.
    pub async fn expect_matching(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(pos) = self.stash.iter().position(&pred) {
            return self.stash.remove(pos).unwrap();
        }
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read_frame(left).await {
                Some(frame) if pred(&frame) => return frame,
                Some(frame) => self.stash.push_back(frame),
                None => panic!(
                    "no {what} within {TIMEOUT:?}; other frames: {:?}\nstderr:\n{}",
                    self.stash,
                    self.stderr()
                ),
            }
        }
    }

    /// The response to request `id` (other frames are stashed).
    pub async fn expect_response(&mut self, id: impl Into<Value>) -> Value {
        let id = id.into();
        self.expect_matching(&format!("response to id {id}"), |f| {
            f.get("method").is_none() && f["id"] == id
        })
        .await
    }

    /// The next notification with `method` (other frames are stashed).
    pub async fn expect_notification(&mut self, method: &str) -> Value {
        self.expect_matching(&format!("notification {method}"), |f| {
            f.get("id").is_none() && f["method"] == method
        })
        .await
    }

    /// Assert no frame arrives for `window` (nothing stashed either).
    pub async fn expect_no_frame(&mut self, window: Duration) {
        assert!(
            self.stash.is_empty(),
            "unexpected stashed frames: {:?}",
            self.stash
        );
        if let Some(frame) = self.read_frame(window).await {
            panic!("expected silence for {window:?}, got {frame}");
        }
    }

    /// Send a request and return its response.
    pub async fn call(&mut self, id: impl Into<Value>, method: &str, params: Value) -> Value {
        let id = id.into();
        self.send(&request(id.clone(), method, params)).await;
        self.expect_response(id).await
    }

    pub async fn notify(&mut self, method: &str, params: Value) {
        self.send(&notification(method, params)).await;
    }

    /// The opening Claude Code 2.1.330 performs (CHANNELS.md §3): the
    /// `server/discover` probe (must fail with -32601), `initialize` id 0,
    /// `notifications/initialized`, `tools/list` id 1. Returns the
    /// `initialize` result.
    pub async fn handshake(&mut self) -> Value {
        let probe = self
            .call(
                "server-discover-probe-1",
                "server/discover",
                json!({ "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28" } }),
            )
            .await;
        assert_eq!(
            probe["error"]["code"], -32601,
            "discover probe must be refused: {probe}"
        );
        let init = self.call(0, "initialize", claude_initialize_params()).await;
        let result = init
            .get("result")
            .cloned()
            .unwrap_or_else(|| panic!("initialize failed: {init}"));
        self.notify("notifications/initialized", json!({})).await;
        let tools = self.call(1, "tools/list", json!({})).await;
        assert_eq!(tools["result"]["tools"][0]["name"], "reply", "{tools}");
        result
    }

    /// Wait for the process to exit (and its stderr to be fully captured);
    /// panics after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let status = match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.expect("wait for plugin"),
            Err(_) => panic!(
                "plugin still running after {timeout:?}\nstderr:\n{}",
                self.stderr()
            ),
        };
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(TIMEOUT, task).await;
        }
        status
    }
}
