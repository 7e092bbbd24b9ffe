//! Security of the WebSocket bridge on the real binary: credentials (the
//! bearer token, a password or key in the URL, Claude Code's secret env)
//! never reach the log, even at trace level and through reconnect errors;
//! a verdict from the bridge is relayed only with `--permission-relay`, and
//! only for a request Claude Code actually made; an oversized inbound frame
//! never reaches Claude Code, and one too large to read (over the 2 MiB
//! WebSocket cap) costs a reconnect, not memory, and loses nothing.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::{McpClient, TIMEOUT};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const TOKEN: &str = "tok-secret-123";
const URL_PASSWORD: &str = "url-pass-789";
const URL_KEY: &str = "query-secret-456";
const ENV_TOKEN: &str = "secret-xyz";

#[allow(clippy::result_large_err)] // tungstenite's callback signature
async fn accept(listener: &TcpListener) -> (WebSocketStream<TcpStream>, Option<String>) {
    let (tcp, _) = tokio::time::timeout(TIMEOUT, listener.accept())
        .await
        .expect("plugin connects")
        .unwrap();
    let mut auth = None;
    let ws = tokio_tungstenite::accept_hdr_async(tcp, |req: &Request, resp: Response| {
        auth = req
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string());
        Ok(resp)
    })
    .await
    .unwrap();
    (ws, auth)
}

async fn next_frame(ws: &mut WebSocketStream<TcpStream>) -> Value {
    loop {
        let msg = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("a frame in time")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = msg {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

/// Accept the plugin's next connection and read its `hello`.
async fn accept_hello(listener: &TcpListener) -> WebSocketStream<TcpStream> {
    let (mut ws, _) = accept(listener).await;
    assert_eq!(next_frame(&mut ws).await["type"], "hello");
    ws
}

/// The bridge sends a small `inbound` frame; it must reach Claude Code as a
/// channel notification.
async fn inbound_reaches_claude(
    ws: &mut WebSocketStream<TcpStream>,
    mcp: &mut McpClient,
    content: &str,
) {
    ws.send(Message::text(
        json!({"type": "inbound", "content": content}).to_string(),
    ))
    .await
    .unwrap();
    let n = mcp
        .expect_notification("notifications/claude/channel")
        .await;
    assert_eq!(n["params"]["content"], content);
}

fn ws_args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "ws",
        "--url",
        url,
        "--openclaw-session",
        "sec-test",
        "--claude-session",
        "5f0c6f7e-0000-4000-8000-000000000000",
        "--reconnect-min-ms",
        "20",
        "--reconnect-max-ms",
        "100",
    ];
    args.extend_from_slice(extra);
    args
}

/// Run a ws plugin at `RUST_LOG=trace` with a token, secret env and a URL
/// carrying a key (and user-info when asked) through connect, traffic, a
/// refused frame and failed reconnects; return its stderr.
async fn trace_log_of_a_session(userinfo: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = if userinfo {
        format!("ws://bridge:{URL_PASSWORD}@{addr}/bridge?key={URL_KEY}")
    } else {
        format!("ws://{addr}/bridge?key={URL_KEY}")
    };
    let mut mcp = McpClient::spawn_with(
        &ws_args(&url, &[]),
        &[
            ("RUST_LOG", "trace"),
            ("SYNTHESIS_WS_TOKEN", TOKEN),
            ("CLAUDE_CODE_MESSAGING_TOKEN", ENV_TOKEN),
            ("ANTHROPIC_API_KEY", "sk-ant-fake-ws-key"),
        ],
    )
    .await;
    let (mut ws, auth) = accept(&listener).await;
    assert_eq!(
        auth.as_deref(),
        Some(&*format!("Bearer {TOKEN}")),
        "token sent on the upgrade"
    );
    assert_eq!(next_frame(&mut ws).await["type"], "hello");
    mcp.handshake().await;
    // Traffic both ways, a refused frame, then the bridge dies and the
    // plugin logs its reconnect attempts (errors quote what they connect to).
    ws.send(Message::text(
        json!({"type": "inbound", "content": "hi", "meta": {"chat_id": "1"}}).to_string(),
    ))
    .await
    .unwrap();
    mcp.expect_notification("notifications/claude/channel")
        .await;
    ws.send(Message::text("{not json")).await.unwrap();
    assert_eq!(next_frame(&mut ws).await["type"], "error");
    mcp.send(&support::reply_call(7, json!({"text": "back"})))
        .await;
    mcp.expect_response(7).await;
    assert_eq!(next_frame(&mut ws).await["type"], "reply");
    drop(ws);
    drop(listener);
    tokio::time::sleep(Duration::from_millis(400)).await;
    mcp.close_stdin();
    assert!(mcp.wait_exit(TIMEOUT).await.success());

    mcp.stderr()
}

fn assert_absent(stderr: &str, what: &str, needle: &str) {
    let leaks: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(needle))
        .take(3)
        .collect();
    assert!(leaks.is_empty(), "{what} appears in stderr: {leaks:#?}");
}

#[tokio::test]
async fn token_url_key_and_claude_env_never_logged() {
    let stderr = trace_log_of_a_session(false).await;
    assert!(
        stderr.contains("cannot connect to the bridge"),
        "no reconnect attempt was logged:\n{stderr}"
    );
    assert!(
        stderr.lines().count() > 30,
        "too little logged to be a real check:\n{stderr}"
    );
    assert_absent(&stderr, "the bearer token", TOKEN);
    assert_absent(&stderr, "the key in the URL query", URL_KEY);
    assert_absent(&stderr, "CLAUDE_CODE_MESSAGING_TOKEN", ENV_TOKEN);
    assert_absent(&stderr, "ANTHROPIC_API_KEY", "sk-ant-fake-ws-key");
}

#[tokio::test]
async fn url_password_never_logged() {
    let stderr = trace_log_of_a_session(true).await;
    assert_absent(&stderr, "the password in the URL", URL_PASSWORD);
    assert_absent(&stderr, "the bearer token", TOKEN);
}

#[tokio::test]
async fn bridge_verdicts_need_the_relay_and_a_real_request() {
    let request = json!({"request_id": "asdfg", "tool_name": "Bash", "description": "rm -rf", "input_preview": "{}"});
    let verdict =
        json!({"type": "permission", "request_id": "asdfg", "behavior": "allow"}).to_string();

    // Relay off: the request is not forwarded, a verdict is refused, nothing reaches Claude Code.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/bridge", listener.local_addr().unwrap());
    let mut mcp = McpClient::spawn(&ws_args(&url, &[])).await;
    let mut ws = accept_hello(&listener).await;
    mcp.handshake().await;
    mcp.notify(
        "notifications/claude/channel/permission_request",
        request.clone(),
    )
    .await;
    ws.send(Message::text(verdict.clone())).await.unwrap();
    let answer = next_frame(&mut ws).await;
    assert_eq!(
        answer["type"], "error",
        "a verdict without the relay must be refused: {answer}"
    );
    assert!(
        answer["reason"].as_str().unwrap().contains("relay is off"),
        "{answer}"
    );
    mcp.expect_no_frame(Duration::from_millis(300)).await;
    mcp.close_stdin();
    assert!(mcp.wait_exit(TIMEOUT).await.success());

    // Relay on: an unknown id is refused; the real request gets exactly one verdict.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/bridge", listener.local_addr().unwrap());
    let mut mcp = McpClient::spawn(&ws_args(&url, &["--permission-relay"])).await;
    let mut ws = accept_hello(&listener).await;
    mcp.handshake().await;
    ws.send(Message::text(verdict.clone())).await.unwrap();
    assert_eq!(
        next_frame(&mut ws).await["type"],
        "error",
        "verdict for a request never made"
    );
    mcp.notify(
        "notifications/claude/channel/permission_request",
        request.clone(),
    )
    .await;
    let forwarded = next_frame(&mut ws).await;
    assert_eq!(forwarded["type"], "permission_request");
    assert_eq!(forwarded["request_id"], "asdfg");
    ws.send(Message::text(verdict.clone())).await.unwrap();
    let relayed = mcp
        .expect_notification("notifications/claude/channel/permission")
        .await;
    assert_eq!(
        relayed["params"],
        json!({"request_id": "asdfg", "behavior": "allow"})
    );
    ws.send(Message::text(verdict)).await.unwrap();
    assert_eq!(
        next_frame(&mut ws).await["type"],
        "error",
        "a second verdict for the same request"
    );
    mcp.expect_no_frame(Duration::from_millis(300)).await;
    mcp.close_stdin();
    assert!(mcp.wait_exit(TIMEOUT).await.success());
}

/// Claude Code closes the whole MCP connection when a stdout line exceeds
/// 16 MiB (CHANNELS.md §3.6): one oversized event from the bridge would cut
/// the channel for the rest of the session. The HTTP side caps bodies at
/// 1 MiB; an inbound WebSocket frame must be refused just as clearly (an
/// error frame, or a 1009 close), never pushed, and the session goes on.
#[tokio::test]
async fn oversized_inbound_frame_never_reaches_claude_code() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/bridge", listener.local_addr().unwrap());
    let mut mcp = McpClient::spawn(&ws_args(&url, &[])).await;
    let mut ws = accept_hello(&listener).await;
    mcp.handshake().await;
    let huge = "h".repeat(17 * 1024 * 1024);
    let frame = json!({"type": "inbound", "content": huge, "meta": {"chat_id": "big"}}).to_string();
    drop(huge);
    // Sent as two fragments of ~8.5 MiB: each under tungstenite's default
    // 16 MiB frame limit, the message under its default 64 MiB message limit,
    // so with defaults only an application-level cap could stop it. With the
    // plugin's 2 MiB cap tungstenite stops at the first fragment's header and
    // the plugin closes with 1009 (see the tests below).
    let bytes = frame.into_bytes();
    let (first, rest) = bytes.split_at(bytes.len() / 2);
    let _ = ws
        .feed(Message::Frame(Frame::message(
            first.to_vec(),
            OpCode::Data(Data::Text),
            false,
        )))
        .await;
    let _ = ws
        .send(Message::Frame(Frame::message(
            rest.to_vec(),
            OpCode::Data(Data::Continue),
            true,
        )))
        .await;
    // Either an error frame on this connection, or the plugin closes it (1009).
    let refused = loop {
        match tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("an answer to the oversized frame")
        {
            Some(Ok(Message::Text(text))) => {
                let v: Value = serde_json::from_str(text.as_str()).unwrap();
                break format!("error frame: {}", v["reason"]);
            }
            Some(Ok(Message::Close(close))) => break format!("close: {close:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => break format!("connection ended: {e}"),
            None => break "connection ended".to_string(),
        }
    };
    println!("SECURITY-FIGURE oversized-ws-inbound refused_by={refused}");
    mcp.expect_no_frame(Duration::from_secs(2)).await;
    // The session goes on: MCP answers, and (after a reconnect if the
    // connection was closed) a normal inbound frame is delivered.
    let pong = mcp.call(77, "ping", json!({})).await;
    assert_eq!(pong["result"], json!({}));
    if !refused.starts_with("error frame") {
        drop(ws);
        ws = accept_hello(&listener).await;
    }
    inbound_reaches_claude(&mut ws, &mut mcp, "small").await;
    mcp.close_stdin();
    assert!(mcp.wait_exit(TIMEOUT).await.success());
}

/// An `inbound` frame whose JSON text is about `bytes` long.
fn inbound_of_about(bytes: usize, chat_id: &str) -> String {
    json!({"type": "inbound", "content": "x".repeat(bytes), "meta": {"chat_id": chat_id}})
        .to_string()
}

/// `text` as two fragments (each under the cap when the halves are).
async fn send_in_two_fragments(ws: &mut WebSocketStream<TcpStream>, text: String) {
    let bytes = text.into_bytes();
    let (first, rest) = bytes.split_at(bytes.len() / 2);
    let first = Frame::message(first.to_vec(), OpCode::Data(Data::Text), false);
    let rest = Frame::message(rest.to_vec(), OpCode::Data(Data::Continue), true);
    // The plugin may drop the connection mid-send; the reads below tell.
    let _ = tokio::time::timeout(TIMEOUT, async {
        ws.feed(Message::Frame(first)).await?;
        ws.send(Message::Frame(rest)).await
    })
    .await;
}

/// Read a bridge connection until the plugin ends it. An `error` frame
/// means the plugin read the whole over-cap message (the cap is missing):
/// fail. Returns how it ended (the close code, if the close got through).
async fn expect_plugin_ends_connection(ws: &mut WebSocketStream<TcpStream>) -> String {
    loop {
        match tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("the plugin ends the connection in time")
        {
            Some(Ok(Message::Text(text))) => {
                let v: Value = serde_json::from_str(text.as_str()).unwrap();
                assert_ne!(
                    v["type"], "error",
                    "the plugin read an over-cap message whole and answered it: {v}"
                );
            }
            Some(Ok(Message::Close(Some(close)))) => {
                assert_eq!(close.code, CloseCode::Size, "close code: {close:?}");
                assert!(
                    close.reason.as_str().contains("2097152 byte limit"),
                    "{close:?}"
                );
                return format!("close 1009 {:?}", close.reason.as_str());
            }
            Some(Ok(Message::Close(None))) => panic!("close without a code"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return format!("connection ended: {e}"),
            None => return "connection ended".to_string(),
        }
    }
}

/// A frame over our 1 MiB limit but under the 2 MiB WebSocket cap is read
/// whole and refused with a clear error frame, as one frame or in fragments,
/// and the connection stays up: the next frame on it is delivered.
#[tokio::test]
async fn frame_between_the_limit_and_the_cap_gets_an_error_frame_and_the_connection_stays() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/bridge", listener.local_addr().unwrap());
    let mut mcp = McpClient::spawn(&ws_args(&url, &[])).await;
    let mut ws = accept_hello(&listener).await;
    mcp.handshake().await;

    let size = 3 * 1024 * 1024 / 2; // 1.5 MiB
    ws.send(Message::text(inbound_of_about(size, "one-frame")))
        .await
        .unwrap();
    let answer = next_frame(&mut ws).await;
    assert_eq!(answer["type"], "error", "{answer}");
    let reason = answer["reason"].as_str().unwrap();
    assert!(reason.contains("1048576 byte limit"), "{reason}");
    send_in_two_fragments(&mut ws, inbound_of_about(size, "fragments")).await;
    let answer = next_frame(&mut ws).await;
    assert_eq!(answer["type"], "error", "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("1048576 byte limit"),
        "{answer}"
    );
    mcp.expect_no_frame(Duration::from_millis(500)).await;

    // Same connection, still up.
    inbound_reaches_claude(&mut ws, &mut mcp, "still here").await;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), listener.accept())
            .await
            .is_err(),
        "the plugin reconnected: the connection did not stay up"
    );
    mcp.close_stdin();
    assert!(mcp.wait_exit(TIMEOUT).await.success());
    let stderr = mcp.stderr();
    assert!(!stderr.contains("1009"), "no close expected:\n{stderr}");
}

/// A message over the 2 MiB cap (one 3 MiB frame; then 3 MiB in two
/// 1.5 MiB fragments, each under the frame cap) is not buffered: the plugin
/// logs the limit, closes with 1009 and reconnects; the reply the bridge had
/// not confirmed is sent again with its `seq`, and the session goes on.
#[tokio::test]
async fn message_over_the_cap_closes_with_1009_and_reconnects_losing_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/bridge", listener.local_addr().unwrap());
    let mut mcp = McpClient::spawn(&ws_args(&url, &[])).await;
    let mut ws = accept_hello(&listener).await;
    mcp.handshake().await;
    // A reply the bridge does not confirm (it reads nothing, so no pong).
    mcp.send(&support::reply_call(7, json!({"text": "before"})))
        .await;
    mcp.expect_response(7).await;

    // One 3 MiB frame: over the frame cap, refused at its header.
    let big = inbound_of_about(3 * 1024 * 1024, "big");
    let _ = tokio::time::timeout(TIMEOUT, ws.send(Message::text(big.clone()))).await;
    let ended = expect_plugin_ends_connection(&mut ws).await;
    println!("SECURITY-FIGURE over-cap-ws-frame ended_by={ended}");
    drop(ws);

    let mut ws = accept_hello(&listener).await;
    let resent = next_frame(&mut ws).await;
    assert_eq!(
        (&resent["type"], &resent["seq"], &resent["text"]),
        (&json!("reply"), &json!(1), &json!("before")),
        "the unconfirmed reply is sent again: {resent}"
    );

    // 3 MiB in fragments under the frame cap: over the message cap.
    send_in_two_fragments(&mut ws, big).await;
    let ended = expect_plugin_ends_connection(&mut ws).await;
    println!("SECURITY-FIGURE over-cap-ws-message ended_by={ended}");
    drop(ws);

    let mut ws = accept_hello(&listener).await;
    mcp.expect_no_frame(Duration::from_millis(300)).await;
    inbound_reaches_claude(&mut ws, &mut mcp, "after reconnect").await;
    // Replies go on with the next seq (a resend of seq 1 may come first:
    // the bridge de-duplicates by seq).
    mcp.send(&support::reply_call(8, json!({"text": "after"})))
        .await;
    mcp.expect_response(8).await;
    let reply = loop {
        let frame = next_frame(&mut ws).await;
        if frame["type"] == "reply" && frame["seq"] == 1 {
            continue;
        }
        break frame;
    };
    assert_eq!(
        (&reply["type"], &reply["seq"], &reply["text"]),
        (&json!("reply"), &json!(2), &json!("after")),
        "{reply}"
    );
    mcp.close_stdin();
    assert!(mcp.wait_exit(TIMEOUT).await.success());

    let stderr = mcp.stderr();
    let warnings = stderr
        .lines()
        .filter(|l| {
            l.contains("WARN")
                && l.contains("exceeds the 2097152 byte WebSocket message limit")
                && l.contains("1009")
        })
        .count();
    assert_eq!(warnings, 2, "one warning per over-cap message:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
