//! Interop with the official TypeScript MCP SDK (`@modelcontextprotocol/sdk`,
//! pinned in `interop/package.json`): a foreign client connects to the real
//! binary over stdio, lists tools, receives a channel notification injected
//! over HTTP, and calls `reply`, whose text reaches an SSE client.
//!
//! Needs Node.js and `npm ci --prefix plugin/tests/interop` (CI runs it).

mod support;

use std::path::Path;
use std::process::Stdio;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use support::http::{wait_for_discovery_with, SseStream, SESSION_ID};
use support::{plugin_bin, TIMEOUT};

struct NodeClient {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    seen: Vec<Value>,
}

impl NodeClient {
    /// The next progress line with `step`; panics on an `error` step.
    async fn expect_step(&mut self, step: &str) -> Value {
        loop {
            let line = tokio::time::timeout(TIMEOUT, self.lines.next_line())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no {step:?} step from the node client; seen {:?}",
                        self.seen
                    )
                })
                .expect("read node stdout")
                .unwrap_or_else(|| {
                    panic!("node client ended before {step:?}; seen {:?}", self.seen)
                });
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("node client printed non-JSON {line:?}: {e}"));
            if value["step"] == "error" {
                panic!(
                    "node client failed: {}",
                    value["message"].as_str().unwrap_or_default()
                );
            }
            self.seen.push(value.clone());
            if value["step"] == step {
                return value;
            }
        }
    }
}

#[tokio::test]
async fn official_typescript_sdk_client_round_trip() {
    let interop = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    assert!(
        interop.join("node_modules/@modelcontextprotocol/sdk/package.json").exists(),
        "the TypeScript SDK is not installed: run `npm ci --prefix plugin/tests/interop` (needs Node.js >= 18)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("channels");
    let mut child = Command::new("node")
        .current_dir(&interop)
        .arg("client.mjs")
        .arg(plugin_bin())
        .args([
            "http",
            "--discovery-dir",
            dir.to_str().unwrap(),
            "--session-id",
            SESSION_ID,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("run `node` (Node.js >= 18 must be on PATH)");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut node_stdin = child.stdin.take().unwrap();
    let mut node = NodeClient {
        child,
        lines,
        seen: Vec::new(),
    };

    let connected = node.expect_step("connected").await;
    assert_eq!(
        connected["capabilities"]["experimental"]["claude/channel"],
        json!({})
    );
    assert_eq!(
        connected["serverVersion"]["version"],
        env!("CARGO_PKG_VERSION")
    );
    assert!(connected["instructions"]
        .as_str()
        .unwrap()
        .contains("chat_id"));
    let tools = node.expect_step("tools").await;
    assert_eq!(tools["tools"][0]["name"], "reply");
    assert_eq!(
        tools["tools"][0]["inputSchema"]["required"],
        json!(["text"])
    );

    // Inject over real HTTP, as the opzero server would.
    let discovery = wait_for_discovery_with(&dir.join(format!("{SESSION_ID}.json")), || {
        "the plugin's stderr is in the test output (node inherits it)".into()
    })
    .await;
    let port = discovery["port"].as_u64().unwrap();
    let secret = discovery["secret"].as_str().unwrap();
    let http = reqwest::Client::new();
    let response = http
        .post(format!("http://127.0.0.1:{port}/inject"))
        .header("X-OPZero-Secret", secret)
        .json(&json!({"content": "hello from rust", "chat_id": "c7", "meta": {"user": "ana"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);

    let notification = node.expect_step("notification").await;
    assert_eq!(
        notification["params"],
        json!({"content": "hello from rust", "meta": {"chat_id": "c7", "user": "ana"}})
    );
    let reply = node.expect_step("reply").await;
    assert!(
        reply["result"].get("isError").is_none_or(|e| e == false),
        "{reply}"
    );
    let bad = node.expect_step("bad_reply").await;
    assert_eq!(bad["result"]["isError"], true, "{bad}");

    // The reply text reaches an SSE client (buffered until it connects).
    let mut sse = SseStream::connect(&format!("http://127.0.0.1:{port}/sse"), secret, None).await;
    let event = sse.next_event().await;
    assert_eq!(event.event, "reply");
    assert_eq!(event.data["text"], "ack: hello from rust");
    assert_eq!(event.data["chat_id"], "c7");
    assert_eq!(event.data["final"], true);
    drop(sse);

    node.expect_step("waiting_for_close").await;
    node_stdin.write_all(b"close\n").await.unwrap();
    node_stdin.flush().await.unwrap();
    node.expect_step("closed").await;
    let status = tokio::time::timeout(TIMEOUT, node.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "node client exit {status:?}");
    // Closing the SDK transport ends the plugin, which removes its file.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while dir.join(format!("{SESSION_ID}.json")).exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "discovery file not removed after the client closed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
