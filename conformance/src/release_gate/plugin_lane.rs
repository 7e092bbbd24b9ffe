//! Our plugin (`channel-plugin http`) under the real client.
//!
//! The harness never links the plugin crate: it runs the built binary as the real client would,
//! registered through `--mcp-config`. The HTTP lane proves the round trip a user relies on: the
//! client connects in the legacy era at an accepted version, the fake model's `tool_use` makes the
//! client call `reply`, the reply leaves the bridge as an SSE event, and the tool result goes back
//! to the model. The gate lane runs interactive `claude` with
//! `--dangerously-load-development-channels server:NAME` and reads the gate's line: it must be
//! the availability reason (check 4), which proves checks 1-3 (capability, era, provider) passed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};

use super::install::Claude;
use super::report::Check;
use super::session::{self, Mode, RunOutput, RunSpec, Server};

/// Server name our plugin is registered under.
pub const PLUGIN_NAME: &str = "chan";
/// Session id given to the plugin, so the discovery file name is known in advance.
pub const SESSION_ID: &str = "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f";
/// What the fake model asks `reply` to send.
pub const REPLY_TEXT: &str = "hello from the fake model";

/// Protocol versions the client accepts (CHANNELS.md §3.3).
const ACCEPTED: &[&str] = &[
    "2024-10-07",
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
];

/// `<workspace>/target/debug/channel-plugin`, honouring `CARGO_TARGET_DIR`.
pub fn default_plugin_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("conformance sits in the workspace")
                .join("target")
        });
    target.join("debug").join("channel-plugin")
}

/// Server name of the WebSocket variant.
pub const WS_PLUGIN_NAME: &str = "chanws";

/// A loopback WebSocket bridge that records every text frame the plugin sends.
async fn ws_bridge(frames: Arc<Mutex<Vec<Value>>>) -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let frames = Arc::clone(&frames);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    frames
                        .lock()
                        .unwrap()
                        .push(json!({"type": "!! upgrade failed"}));
                    return;
                };
                // Reading also answers pings (tungstenite queues the pong).
                while let Some(Ok(msg)) = ws.next().await {
                    if let tokio_tungstenite::tungstenite::Message::Text(text) = msg {
                        let v = serde_json::from_str::<Value>(text.as_str()).unwrap_or_else(
                            |_| json!({"type": "!! not json", "raw": text.as_str()}),
                        );
                        frames.lock().unwrap().push(v);
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// The WebSocket lane: `channel-plugin ws` against a loopback bridge; hello on connect, the
/// model's `reply` arrives as a `reply` frame, the result goes back to the model.
pub async fn ws_lane(claude: &Claude, plugin: &Path, work: &Path) -> anyhow::Result<Vec<Check>> {
    let lane = "plugin-ws";
    let root = work.join(format!("{}-plugin-ws", claude.version));
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    std::fs::create_dir_all(&root)?;
    let frames = Arc::new(Mutex::new(Vec::new()));
    let addr = ws_bridge(Arc::clone(&frames)).await?;
    let spec = RunSpec {
        mode: Mode::Print {
            prompt: "Reply to chat c1 with the reply tool.".into(),
        },
        servers: vec![Server {
            name: WS_PLUGIN_NAME.into(),
            command: plugin.to_owned(),
            args: vec![
                "ws".into(),
                "--url".into(),
                format!("ws://{addr}/bridge"),
                "--openclaw-session".into(),
                "release-gate".into(),
                "--claude-session".into(),
                SESSION_ID.into(),
                "--name".into(),
                WS_PLUGIN_NAME.into(),
            ],
        }],
        extra_env: vec![],
        model_tool: format!("mcp__{WS_PLUGIN_NAME}__reply"),
        model_input: json!({"chat_id": "c1", "text": REPLY_TEXT}),
        timeout: Duration::from_secs(90),
        warm_up_runs: 0,
    };
    let run = session::run(claude, &spec, &root).await?;
    let frames = frames.lock().unwrap().clone();
    std::fs::write(
        root.join("ws-frames.ndjson"),
        frames
            .iter()
            .map(|f| f.to_string() + "\n")
            .collect::<String>(),
    )?;
    let mut checks = vec![connection_check_named(lane, &run, WS_PLUGIN_NAME)];
    let hello = frames.iter().find(|f| f["type"] == "hello");
    checks.push(Check::new(
        lane,
        "the plugin says hello to the bridge",
        hello.is_some_and(|h| h["claude_session"] == SESSION_ID),
        hello
            .map(|h| h.to_string())
            .unwrap_or_else(|| format!("frames: {frames:?}")),
    ));
    let reply = frames
        .iter()
        .find(|f| f["type"] == "reply" && f["text"] == REPLY_TEXT);
    checks.push(Check::new(
        lane,
        "the reply comes out of the bridge as a WebSocket reply frame",
        reply.is_some(),
        reply
            .map(|r| r.to_string())
            .unwrap_or_else(|| format!("frames: {frames:?}")),
    ));
    let results: Vec<&Value> = run
        .events
        .iter()
        .filter(|e| e["ev"] == "api_request")
        .flat_map(|e| e["tool_results"].as_array().into_iter().flatten())
        .collect();
    let ok = results.iter().find(|r| r["result"]["is_error"] != true);
    checks.push(Check::new(
        lane,
        "reply's result goes back to the model",
        ok.is_some(),
        ok.map(|r| r["result"]["content"].to_string())
            .unwrap_or_else(|| format!("{} tool results, none successful", results.len())),
    ));
    Ok(checks)
}

fn plugin_server(plugin: &Path, discovery: &Path) -> Server {
    Server {
        name: PLUGIN_NAME.into(),
        command: plugin.to_owned(),
        args: vec![
            "http".into(),
            "--discovery-dir".into(),
            discovery.display().to_string(),
            "--session-id".into(),
            SESSION_ID.into(),
            "--name".into(),
            PLUGIN_NAME.into(),
        ],
    }
}

/// Reads the plugin's SSE stream (from event 0, so nothing sent before we connect is missed)
/// into `sink` until it closes.
async fn follow_sse(discovery: PathBuf, sink: Arc<Mutex<String>>) {
    let file = discovery.join(format!("{SESSION_ID}.json"));
    let mut record = None;
    for _ in 0..300 {
        if let Ok(text) = std::fs::read_to_string(&file) {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                record = Some(v);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some(record) = record else {
        sink.lock()
            .unwrap()
            .push_str("!! discovery file never appeared\n");
        return;
    };
    let url = format!("http://127.0.0.1:{}/sse", record["port"]);
    let secret = record["secret"].as_str().unwrap_or_default();
    let client = reqwest::Client::new();
    let resp = match client
        .get(&url)
        .bearer_auth(secret)
        .header("Last-Event-ID", "0")
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            sink.lock()
                .unwrap()
                .push_str(&format!("!! GET /sse failed: {e}\n"));
            return;
        }
    };
    if !resp.status().is_success() {
        sink.lock()
            .unwrap()
            .push_str(&format!("!! GET /sse answered {}\n", resp.status()));
        return;
    }
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(bytes) => sink
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&bytes)),
            Err(_) => break,
        }
    }
}

fn connection_check(lane: &str, run: &RunOutput) -> Check {
    connection_check_named(lane, run, PLUGIN_NAME)
}

fn connection_check_named(lane: &str, run: &RunOutput, name: &str) -> Check {
    let lines = run.debug_for(name);
    if let Some(failed) = lines
        .iter()
        .find(|l| l.contains("Connection failed") || l.contains("failed to connect"))
    {
        return Check::new(lane, "connects", false, failed.to_string());
    }
    let Some(est) = lines.iter().find(|l| l.contains("Connection established")) else {
        return Check::new(
            lane,
            "connects",
            false,
            format!("no \"Connection established\" line for {name} in the debug log"),
        );
    };
    let caps: Value = est
        .split_once("capabilities: ")
        .and_then(|(_, j)| serde_json::from_str(j).ok())
        .unwrap_or(Value::Null);
    match (
        caps["protocolEra"].as_str(),
        caps["negotiatedProtocolVersion"].as_str(),
    ) {
        (Some(era), Some(v)) => Check::new(
            lane,
            "connects in the legacy era at an accepted version",
            era == "legacy" && ACCEPTED.contains(&v),
            format!("protocolEra={era} negotiatedProtocolVersion={v}"),
        ),
        // Releases before 2.1.300 do not log the era; they have only the legacy handshake.
        _ => Check::new(
            lane,
            "connects (release logs no era: legacy handshake only)",
            caps["hasTools"] == true,
            format!("hasTools={}", caps["hasTools"]),
        ),
    }
}

/// The HTTP lane: connection, `reply` through the real client, SSE out, result back.
pub async fn http_lane(claude: &Claude, plugin: &Path, work: &Path) -> anyhow::Result<Vec<Check>> {
    let lane = "plugin-http";
    let root = work.join(format!("{}-plugin-http", claude.version));
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    std::fs::create_dir_all(&root)?;
    let discovery = root.join("discovery");
    let sse = Arc::new(Mutex::new(String::new()));
    let follower = tokio::spawn(follow_sse(discovery.clone(), Arc::clone(&sse)));
    let spec = RunSpec {
        mode: Mode::Print {
            prompt: "Reply to chat c1 with the reply tool.".into(),
        },
        servers: vec![plugin_server(plugin, &discovery)],
        extra_env: vec![],
        model_tool: format!("mcp__{PLUGIN_NAME}__reply"),
        model_input: json!({"chat_id": "c1", "text": REPLY_TEXT}),
        timeout: Duration::from_secs(90),
        warm_up_runs: 0,
    };
    let run = session::run(claude, &spec, &root).await?;
    // The client SIGINTs the plugin on exit, which ends the stream; do not wait forever.
    let _ = tokio::time::timeout(Duration::from_secs(5), follower).await;
    let sse = sse.lock().unwrap().clone();
    std::fs::write(root.join("sse.txt"), &sse)?;

    let mut checks = vec![connection_check(lane, &run)];
    let calls: Vec<&Value> = run
        .events
        .iter()
        .filter(|e| e["ev"] == "api_request")
        .flat_map(|e| e["tool_results"].as_array().into_iter().flatten())
        .collect();
    checks.push(Check::new(
        lane,
        "the model's tool_use makes the client call reply",
        !calls.is_empty(),
        format!(
            "{} tool_result(s) came back to the fake model; debug: {}",
            calls.len(),
            run.debug_for(PLUGIN_NAME)
                .iter()
                .find(|l| l.contains("Calling MCP tool") || l.contains("Tool 'reply'"))
                .copied()
                .unwrap_or("(no tool line)")
        ),
    ));
    let ok = calls.iter().find(|r| r["result"]["is_error"] != true);
    checks.push(Check::new(
        lane,
        "reply's result goes back to the model",
        ok.is_some(),
        ok.map(|r| r["result"]["content"].to_string())
            .unwrap_or_else(|| {
                format!(
                    "results: {}",
                    Value::from(calls.iter().map(|c| (*c).clone()).collect::<Vec<_>>())
                )
            }),
    ));
    let reply_event = sse.contains("event: reply") && sse.contains(REPLY_TEXT);
    checks.push(Check::new(
        lane,
        "the reply comes out of the bridge as an SSE event",
        reply_event,
        if reply_event {
            sse.lines()
                .find(|l| l.starts_with("data:") && l.contains(REPLY_TEXT))
                .unwrap_or("")
                .to_owned()
        } else {
            format!(
                "SSE stream: {:?}",
                sse.chars().take(400).collect::<String>()
            )
        },
    ));
    Ok(checks)
}

/// The gate lane: interactive `claude` must stop our plugin at the availability check.
pub async fn gate_lane(
    claude: &Claude,
    plugin: &Path,
    work: &Path,
    feature_reason: &str,
) -> anyhow::Result<Vec<Check>> {
    let lane = "plugin-gate";
    let root = work.join(format!("{}-plugin-gate", claude.version));
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    std::fs::create_dir_all(&root)?;
    let spec = RunSpec {
        mode: Mode::Interactive {
            dev_channels: vec![PLUGIN_NAME.into()],
            watch_server: PLUGIN_NAME.into(),
        },
        servers: vec![plugin_server(plugin, &root.join("discovery"))],
        extra_env: vec![],
        model_tool: format!("mcp__{PLUGIN_NAME}__reply"),
        model_input: json!({"chat_id": "c1", "text": REPLY_TEXT}),
        timeout: Duration::from_secs(60),
        warm_up_runs: 0,
    };
    let run = session::run(claude, &spec, &root).await?;
    let mut checks = vec![connection_check(lane, &run)];
    let gate = run
        .debug_for(PLUGIN_NAME)
        .into_iter()
        .find(|l| l.contains("Channel notifications"))
        .map(str::to_owned);
    let expected = format!("Channel notifications skipped: {feature_reason}");
    checks.push(Check::new(
        lane,
        "gate stops at the availability check (capability and era accepted)",
        gate.as_deref().is_some_and(|g| g.ends_with(&expected)),
        gate.unwrap_or_else(|| {
            format!(
                "no gate line for {PLUGIN_NAME} within {} s (timed out: {})",
                spec.timeout.as_secs(),
                run.timed_out
            )
        }),
    ));
    Ok(checks)
}
