//! The plugin against a bridge built on a WebSocket stack no one here wrote:
//! Python's `websockets` package (PyPI). Install: `python3 -m pip install websockets`.
//! This test FAILS (it does not skip) when python3 or the package is missing.

mod support;
mod support_ws;

use std::process::Stdio;

use serde_json::{json, Value};
use support_ws::{assert_valid_frame, ws_command, Plugin, WAIT};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const INSTALL: &str = "python3 -m pip install websockets";

struct PyBridge {
    _child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl PyBridge {
    async fn start() -> (PyBridge, u16) {
        let probe = Command::new("python3")
            .args(["-c", "import websockets; print(websockets.__version__)"])
            .output()
            .await
            .unwrap_or_else(|e| {
                panic!("python3 is not runnable ({e}); install Python 3 and run `{INSTALL}`")
            });
        assert!(
            probe.status.success(),
            "the Python `websockets` package is missing; install it with `{INSTALL}`\n{}",
            String::from_utf8_lossy(&probe.stderr)
        );
        eprintln!(
            "python websockets {}",
            String::from_utf8_lossy(&probe.stdout).trim()
        );
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support_ws/py_bridge.py");
        let mut child = Command::new("python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting the Python bridge");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut bridge = PyBridge {
            _child: child,
            stdin,
            stdout,
        };
        let port = bridge.event("listening").await.as_u64().unwrap() as u16;
        (bridge, port)
    }

    /// The next event line, which must be `kind`; returns its value.
    async fn event(&mut self, kind: &str) -> Value {
        let line = tokio::time::timeout(WAIT, self.stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("python bridge: no {kind} event in time"))
            .unwrap()
            .unwrap_or_else(|| panic!("python bridge exited while waiting for {kind}"));
        let v: Value = serde_json::from_str(&line).unwrap();
        v.get(kind)
            .cloned()
            .unwrap_or_else(|| panic!("expected {kind}, got {line}"))
    }

    /// The next frame the plugin sent, schema-checked.
    async fn frame(&mut self) -> Value {
        let text = self.event("recv").await;
        let frame: Value = serde_json::from_str(text.as_str().unwrap()).unwrap();
        assert_valid_frame(&frame);
        frame
    }

    async fn command(&mut self, cmd: Value) {
        self.stdin
            .write_all(format!("{cmd}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn send_frame(&mut self, frame: Value) {
        assert_valid_frame(&frame);
        self.command(json!({"send": frame.to_string()})).await;
    }
}

#[tokio::test]
async fn python_websockets_bridge_round_trip() {
    let (mut py, port) = PyBridge::start().await;
    let url = format!("ws://127.0.0.1:{port}/bridge");
    let mut plugin = Plugin::spawn(ws_command(&url, &["--token", "py-token"]));

    let conn = py.event("connected").await;
    assert_eq!(
        conn,
        json!({"authorization":"Bearer py-token","path":"/bridge"})
    );
    let hello = py.frame().await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["pid"], json!(plugin.pid()));
    plugin.handshake().await;

    py.send_frame(json!({"type":"inbound","content":"from python","meta":{"chat_id":"py1"}}))
        .await;
    let params = plugin
        .expect_notification("notifications/claude/channel")
        .await;
    assert_eq!(
        params,
        json!({"content":"from python","meta":{"chat_id":"py1"}})
    );

    plugin.reply("thinking", false).await;
    plugin.reply("answer", true).await;
    let (a, b) = (py.frame().await, py.frame().await);
    assert_eq!(
        (a["seq"].as_u64(), a["final"].as_bool()),
        (Some(1), Some(false))
    );
    assert_eq!(
        (b["seq"].as_u64(), b["final"].as_bool()),
        (Some(2), Some(true))
    );

    py.command(json!({"send": "{\"type\":\"inbound\"}"})).await;
    let err = py.frame().await;
    assert_eq!(err["type"], "error");

    // Python's stack answered our confirmation pings with our payload: both
    // replies are confirmed delivered (the outbox released them).
    plugin
        .wait_stderr("pong confirmation of both replies", |l| {
            l.contains("bridge confirmed frames") && l.contains("up_to=2")
        })
        .await;

    // The Python bridge closes: the plugin reconnects and says hello again.
    py.command(json!({"close": 1001})).await;
    py.event("disconnected").await;
    py.event("connected").await;
    assert_eq!(py.frame().await, hello);

    // Shutdown closes cleanly with 1000.
    assert!(plugin.close_stdin_and_wait().await.success());
    let gone = py.event("disconnected").await;
    assert_eq!(gone["code"], 1000, "{gone}");
}
