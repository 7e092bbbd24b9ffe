//! The recording probe and the fake Messages API, driven over real pipes and real loopback HTTP.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use channel_conformance::release_gate::events::{read_events, EventLog};
use channel_conformance::release_gate::fake_api;

const PROBE: &str = env!("CARGO_BIN_EXE_release-gate");

fn frame(v: Value) -> String {
    format!("{v}\n")
}

#[test]
fn probe_answers_the_handshake_and_logs_frames_env_names_but_no_secret_values() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.ndjson");
    let mut child = Command::new(PROBE)
        .args(["probe", "--log"])
        .arg(&log)
        .args([
            "--discover",
            "error",
            "--caps",
            "channel,permission",
            "--no-watch",
        ])
        .env("RELEASE_GATE_TEST_SECRET_TOKEN", "hunter2-very-secret")
        .env(
            "CLAUDE_CODE_SESSION_ID",
            "0b7e7c9e-1c1d-4f55-9a0e-6f0d1d3b9a11",
        )
        .env("CLAUDECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut next = || {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        serde_json::from_str::<Value>(&line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"))
    };

    stdin
        .write_all(
            frame(
                json!({"jsonrpc":"2.0","id":"server-discover-probe-1","method":"server/discover",
            "params":{"_meta":{}}}),
            )
            .as_bytes(),
        )
        .unwrap();
    let d = next();
    assert_eq!(d["error"]["code"], -32601, "{d}");
    assert_eq!(d["id"], "server-discover-probe-1");

    stdin
        .write_all(
            frame(json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}))
            .as_bytes(),
        )
        .unwrap();
    let init = next();
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(
        init["result"]["capabilities"]["experimental"],
        json!({"claude/channel":{}, "claude/channel/permission":{}})
    );

    stdin.write_all(b"this is not json\n").unwrap();
    stdin
        .write_all(frame(json!({"jsonrpc":"2.0","method":"notifications/initialized"})).as_bytes())
        .unwrap();
    stdin
        .write_all(frame(json!({"jsonrpc":"2.0","id":1,"method":"tools/list"})).as_bytes())
        .unwrap();
    let list = next();
    assert_eq!(list["result"]["tools"][0]["name"], "reply");
    stdin
        .write_all(
            frame(
                json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{
            "name":"reply","arguments":{"text":"hi"},"_meta":{"progressToken":2}}}),
            )
            .as_bytes(),
        )
        .unwrap();
    let call = next();
    assert_eq!(call["result"]["content"][0]["text"], "sent: hi");
    drop(stdin); // EOF: the probe logs it and exits after a short linger

    let status = child.wait().unwrap();
    assert!(status.success());
    let events = read_events(&log).unwrap();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["ev"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"start"), "{kinds:?}");
    assert!(
        kinds.contains(&"recv_raw"),
        "non-JSON input is logged: {kinds:?}"
    );
    assert!(kinds.contains(&"stdin_eof"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"exit"), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "recv").count(), 5);

    let env = &events[0]["env"];
    assert_eq!(
        env["CLAUDECODE"], "=1",
        "allowlisted value recorded verbatim"
    );
    assert_eq!(env["CLAUDE_CODE_SESSION_ID"], "uuid");
    assert_eq!(env["RELEASE_GATE_TEST_SECRET_TOKEN"], "opaque");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("hunter2"),
        "a secret value leaked into the log"
    );
    assert!(
        !text.contains("0b7e7c9e"),
        "the session id value leaked into the log"
    );
    // Monotonic times are non-decreasing in file order for one writer.
    let times: Vec<f64> = events
        .iter()
        .filter_map(|e| e["mono_ms"].as_f64())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[test]
fn probe_records_signals_and_its_death_through_the_watcher() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.ndjson");
    let mut child = Command::new(PROBE)
        .args(["probe", "--log"])
        .arg(&log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // Wait until it is up: the start event is written after the signal handlers are installed.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while read_events(&log).map(|e| e.is_empty()).unwrap_or(true) {
        assert!(std::time::Instant::now() < deadline, "probe never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap(); // SIGKILL, like the client's last step
    child.wait().unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let events = read_events(&log).unwrap();
        if events.iter().any(|e| e["ev"] == "probe_gone") {
            let sigs: Vec<&str> = events
                .iter()
                .filter(|e| e["ev"] == "signal")
                .filter_map(|e| e["sig"].as_str())
                .collect();
            assert_eq!(
                sigs,
                ["SIGINT", "SIGTERM"],
                "the probe stays up through both (record mode)"
            );
            assert!(
                !events.iter().any(|e| e["ev"] == "exit"),
                "SIGKILL leaves no exit event"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "watcher never logged the death"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn fake_api_calls_the_tool_then_answers_with_text_after_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("api.ndjson");
    let api = fake_api::start(
        fake_api::Script {
            tool: "mcp__probe__reply".into(),
            input: json!({"text": "x"}),
        },
        EventLog::open(&log_path, "api").unwrap(),
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/v1/messages?beta=true", api.base_url());
    let first = client
        .post(&url)
        .json(&json!({"model": "m", "stream": true, "max_tokens": 10,
            "tools": [{"name": "mcp__probe__reply", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": "go"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(first.headers()["content-type"], "text/event-stream");
    let sse = first.text().await.unwrap();
    for ev in [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ] {
        assert!(
            sse.contains(&format!("event: {ev}\n")),
            "{ev} missing in {sse}"
        );
    }
    assert!(
        sse.contains("\"tool_use\"") && sse.contains("input_json_delta"),
        "{sse}"
    );
    let id = format!("{}01", fake_api::TOOL_USE_ID);
    assert!(sse.contains(&id));

    let second: Value = client
        .post(&url)
        .json(&json!({"model": "m", "stream": false, "max_tokens": 10,
            "tools": [{"name": "mcp__probe__reply", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": "go"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": id, "name": "mcp__probe__reply", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id,
                    "content": [{"type": "text", "text": "sent: x"}]}]}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["stop_reason"], "end_turn");
    assert!(second["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("sent: x"));
    let events = read_events(&log_path).unwrap();
    let reqs: Vec<&Value> = events.iter().filter(|e| e["ev"] == "api_request").collect();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1]["tool_results"][0]["tool_use_id"], id.as_str());
    assert!(
        !std::fs::read_to_string(&log_path)
            .unwrap()
            .contains("x-api-key\":\""),
        "header values are never logged"
    );
}
