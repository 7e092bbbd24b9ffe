//! The MCP core over real pipes: the real binary, spoken to the way Claude
//! Code 2.1.330 does (CHANNELS.md §3).

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::http::HttpPlugin;
use support::{claude_initialize_params, request, TIMEOUT};

#[tokio::test]
async fn claude_code_opening_gets_the_channel_capability() {
    let mut p = HttpPlugin::start(&["--name", "my-channel"]).await;
    let init = p.mcp.handshake().await;
    assert_eq!(init["protocolVersion"], "2025-11-25");
    assert_eq!(
        init["capabilities"],
        json!({"tools": {}, "experimental": {"claude/channel": {}}})
    );
    assert_eq!(init["serverInfo"]["name"], "channel-plugin");
    assert_eq!(init["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
    let instructions = init["instructions"].as_str().unwrap();
    assert!(instructions.len() < 2048, "{} bytes", instructions.len());
    assert!(instructions.contains("my-channel") && instructions.contains("chat_id"));
    // Status reflects the session.
    let status = p.status().await;
    assert_eq!(status["initialized"], true);
    let pong = p.mcp.call(2, "ping", json!({})).await;
    assert_eq!(pong["result"], json!({}));
    for method in ["prompts/list", "resources/list", "logging/setLevel"] {
        let r = p.mcp.call(method, method, json!({})).await;
        assert_eq!(r["error"]["code"], -32601, "{method}");
    }
}

#[tokio::test]
async fn protocol_versions_are_echoed_or_fall_back() {
    let mut p = HttpPlugin::start(&[]).await;
    for (asked, answered) in [
        ("2024-10-07", "2024-10-07"),
        ("2025-03-26", "2025-03-26"),
        ("2026-07-28", "2025-11-25"),
    ] {
        let r = p
            .mcp
            .call(
                asked,
                "initialize",
                json!({"protocolVersion": asked, "capabilities": {}}),
            )
            .await;
        assert_eq!(r["result"]["protocolVersion"], answered);
    }
}

#[tokio::test]
async fn malformed_input_never_kills_the_plugin() {
    let mut p = HttpPlugin::start(&[]).await;
    let expect_error = |frame: Value, id: Value, code: i64| {
        assert_eq!(frame["id"], id, "{frame}");
        assert_eq!(frame["error"]["code"], code, "{frame}");
    };
    p.mcp.send_raw(b"Downloading packages...\n").await;
    let f = p.mcp.expect_frame(TIMEOUT).await;
    expect_error(f, Value::Null, -32700);
    p.mcp
        .send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xc3\x28\"}\n")
        .await;
    let f = p.mcp.expect_frame(TIMEOUT).await;
    expect_error(f, Value::Null, -32700);
    p.mcp.send_raw(b"{\"hello\":1}\n").await;
    let f = p.mcp.expect_frame(TIMEOUT).await;
    expect_error(f, Value::Null, -32600);
    p.mcp
        .send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":[]}\n")
        .await;
    let f = p.mcp.expect_frame(TIMEOUT).await;
    expect_error(f, json!(9), -32600);
    // A line over the 4 MiB cap, through the real pipe: one error, then on.
    let mut big = b"{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":{\"pad\":\"".to_vec();
    big.resize(4 * 1024 * 1024 + 100, b'a');
    big.extend_from_slice(b"\"}}\n");
    p.mcp.send_raw(&big).await;
    let f = p.mcp.expect_frame(TIMEOUT).await;
    expect_error(f.clone(), Value::Null, -32600);
    assert!(
        f["error"]["message"].as_str().unwrap().contains("exceeds"),
        "{f}"
    );
    // Unknown notifications and stray responses are ignored silently on stdout.
    p.mcp
        .send(&json!({"jsonrpc":"2.0","method":"notifications/unknown"}))
        .await;
    p.mcp
        .send(&json!({"jsonrpc":"2.0","id":77,"result":{}}))
        .await;
    p.mcp
        .send(&json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}))
        .await;
    p.mcp.expect_no_frame(Duration::from_millis(300)).await;
    // The session still works end to end.
    p.mcp.handshake().await;
    p.inject_ok(json!({"content": "still alive"})).await;
    let n = p
        .mcp
        .expect_notification("notifications/claude/channel")
        .await;
    assert_eq!(n["params"]["content"], "still alive");
}

#[tokio::test]
async fn reply_tool_errors_are_explained_to_the_model() {
    let mut p = HttpPlugin::start(&[]).await;
    p.mcp.handshake().await;
    let r = p
        .mcp
        .call(
            2,
            "tools/call",
            json!({"name": "reply", "arguments": {"text": 3, "extra": 1}}),
        )
        .await;
    assert_eq!(r["result"]["isError"], true);
    let text = r["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("\"text\" must be a string") && text.contains("unknown argument \"extra\""),
        "{text}"
    );
    let r = p
        .mcp
        .call(
            3,
            "tools/call",
            json!({"name": "send_message", "arguments": {}}),
        )
        .await;
    assert_eq!(r["error"]["code"], -32602);
}

/// Claude Code installs its channel handler only after listing tools: an
/// event injected before `initialized` must arrive after the `tools/list`
/// response, in order, and none may be lost.
#[tokio::test]
async fn pushes_before_initialized_arrive_after_tools_list_in_order() {
    let mut p = HttpPlugin::start(&[]).await;
    p.inject_ok(json!({"content": "first"})).await;
    let probe = p
        .mcp
        .call("server-discover-probe-1", "server/discover", json!({}))
        .await;
    assert_eq!(probe["error"]["code"], -32601);
    let init = p
        .mcp
        .call(0, "initialize", claude_initialize_params())
        .await;
    assert!(init.get("result").is_some());
    p.inject_ok(json!({"content": "second"})).await;
    p.mcp.expect_no_frame(Duration::from_millis(300)).await;
    // initialized and tools/list in one write, as a fast client sends them
    // (no timing window for the 1 s no-tools/list fallback to fire).
    let mut opening = serde_json::to_vec(&support::notification(
        "notifications/initialized",
        json!({}),
    ))
    .unwrap();
    opening.push(b'\n');
    opening.extend(serde_json::to_vec(&request(1, "tools/list", json!({}))).unwrap());
    opening.push(b'\n');
    p.mcp.send_raw(&opening).await;
    // Held or already flowing: either way it must come after the others.
    p.inject_ok(json!({"content": "third"})).await;
    // Strict order on the wire: the response, then the held events.
    let f = p.mcp.expect_frame(TIMEOUT).await;
    assert_eq!(f["id"], 1, "tools/list response must come first: {f}");
    for want in ["first", "second", "third"] {
        let f = p.mcp.expect_frame(TIMEOUT).await;
        assert_eq!(f["method"], "notifications/claude/channel", "{f}");
        assert_eq!(f["params"]["content"], want);
    }
    p.inject_ok(json!({"content": "fourth"})).await;
    let f = p.mcp.expect_frame(TIMEOUT).await;
    assert_eq!(f["params"]["content"], "fourth");
}

#[tokio::test]
async fn held_pushes_are_released_when_the_client_never_lists_tools() {
    let mut p = HttpPlugin::start(&[]).await;
    p.inject_ok(json!({"content": "early"})).await;
    p.mcp
        .call(0, "initialize", claude_initialize_params())
        .await;
    p.mcp.notify("notifications/initialized", json!({})).await;
    let n = p
        .mcp
        .expect_notification("notifications/claude/channel")
        .await;
    assert_eq!(n["params"]["content"], "early");
}

/// A response carries exactly the id of its request. Ids past 2^64 are
/// floats, and serde_json's default float parsing is fast but not always
/// correctly rounded (fuzzing jsonrpc_dispatch found "1e70" read back as
/// 9.999999999999999e69), so the workspace enables `float_roundtrip`. The
/// answer's raw text is compared with the correctly rounded number (Rust's
/// own parser) in serde_json's shortest form, so the test's own JSON parsing
/// plays no part.
#[test]
fn huge_numeric_ids_are_echoed_exactly() {
    use std::io::{BufRead, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(support::plugin_bin())
        .args(["http", "--discovery-dir"])
        .arg(dir.path())
        .args(["--session-id", support::http::SESSION_ID])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let digits = format!("1{}", "0".repeat(70));
    let ids = [
        "1e70",
        digits.as_str(),
        "123456789012345678901234567890",
        "4.35e-300",
    ];
    let mut input = child.stdin.take().unwrap();
    for id in ids {
        writeln!(
            input,
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"ping\"}}"
        )
        .unwrap();
    }
    drop(input);
    let answers: Vec<String> = std::io::BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .collect();
    assert!(child.wait().unwrap().success());
    assert_eq!(answers.len(), ids.len(), "{answers:?}");
    for (id, answer) in ids.iter().zip(&answers) {
        let exact: f64 = id.parse().unwrap();
        let want = format!("\"id\":{}", serde_json::to_string(&exact).unwrap());
        assert!(
            answer.contains(&want),
            "asked with id {id}: {answer} lacks {want}"
        );
    }
}
