//! `channel-plugin ws` against a real WebSocket bridge on loopback: hello,
//! inbound → channel notification, replies with seq, malformed frames,
//! permission relay, token, shutdown.

mod support;
mod support_ws;

use serde_json::{json, Value};
use support_ws::{result_text, schema_errors, ws_command, BridgeServer, Plugin};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn hello_inbound_and_replies_with_increasing_seq() {
    let bridge = BridgeServer::bind().await;
    let mut plugin = Plugin::spawn(ws_command(&bridge.url(), &["--token", "s3cret-token"]));
    let mut peer = bridge.accept().await;

    // hello first, with who we are; the token rides on the upgrade request.
    let hello = peer.expect_kind("hello").await;
    assert_eq!(hello["openclaw_session"], "developer::discord:channel:123");
    assert_eq!(
        hello["claude_session"],
        "5f0c6f7e-0000-4000-8000-000000000001"
    );
    assert_eq!(hello["pid"], json!(plugin.pid()));
    assert_eq!(hello["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(peer.authorization.as_deref(), Some("Bearer s3cret-token"));
    assert_eq!(peer.path, "/bridge");
    assert!(
        !plugin.stderr().contains("s3cret-token"),
        "the token must never be logged"
    );

    plugin.handshake().await;

    // inbound → notifications/claude/channel, meta in order, numbers as strings.
    peer.send_frame(json!({"type":"inbound","content":"hi from discord",
                           "meta":{"chat_id":"c-42","user":"ann","n":7}}))
        .await;
    let params = plugin
        .expect_notification("notifications/claude/channel")
        .await;
    assert_eq!(params["content"], "hi from discord");
    assert_eq!(
        serde_json::to_string(&params["meta"]).unwrap(),
        r#"{"chat_id":"c-42","user":"ann","n":"7"}"#
    );

    // Two progress chunks, then the final answer: seq 1, 2, 3.
    let mut seqs = Vec::new();
    for (text, is_final) in [
        ("working…", false),
        ("still working", false),
        ("done: 42", true),
    ] {
        let result = plugin.reply(text, is_final).await;
        assert_ne!(result["isError"], json!(true), "{result}");
        assert!(result_text(&result).contains("sent"), "{result}");
        let frame = peer.expect_kind("reply").await;
        assert_eq!(frame["text"], text);
        assert_eq!(frame["final"], is_final);
        assert!(frame.get("chat_id").is_none());
        seqs.push(frame["seq"].as_u64().unwrap());
    }
    assert_eq!(seqs, [1, 2, 3]);

    // chat_id, when the model passes one, travels along.
    let resp = plugin
        .request(
            "tools/call",
            json!({"name":"reply","arguments":{"text":"for c-42","chat_id":"c-42"}}),
        )
        .await;
    assert!(resp["result"]["isError"] != json!(true), "{resp}");
    let frame = peer.expect_kind("reply").await;
    assert_eq!(
        (frame["seq"].as_u64(), frame["chat_id"].as_str()),
        (Some(4), Some("c-42"))
    );

    // stdin EOF: the socket is closed cleanly and the plugin exits 0.
    let status = {
        let closing = plugin.close_stdin_and_wait();
        let close = peer.expect_close();
        let (status, close) = tokio::join!(closing, close);
        let close = close.expect("close frame with a code");
        assert_eq!(close.code, CloseCode::Normal);
        status
    };
    assert!(
        status.success(),
        "exit status {status:?}; stderr:\n{}",
        plugin.stderr()
    );
}

#[tokio::test]
async fn no_token_means_no_authorization_header() {
    let bridge = BridgeServer::bind().await;
    let mut plugin = Plugin::spawn(ws_command(&bridge.url(), &[]));
    let mut peer = bridge.accept().await;
    peer.expect_kind("hello").await;
    assert_eq!(peer.authorization, None);
    assert!(plugin.close_stdin_and_wait().await.success());
}

#[tokio::test]
async fn malformed_inbound_frames_get_error_frames_and_the_session_goes_on() {
    let bridge = BridgeServer::bind().await;
    let mut plugin = Plugin::spawn(ws_command(&bridge.url(), &[]));
    let mut peer = bridge.accept().await;
    peer.expect_kind("hello").await;
    plugin.handshake().await;

    let bad: [(&str, &str); 6] = [
        ("{not json", "not valid JSON"),
        (r#"{"type":"inbound"}"#, "content"),
        (
            r#"{"type":"inbound","content":"x","meta":{"chat-id":"1"}}"#,
            "chat-id",
        ),
        (
            r#"{"type":"inbound","content":"x","meta":{"user":{"id":1}}}"#,
            "user",
        ),
        (
            r#"{"type":"telepathy","content":"x"}"#,
            "unknown frame type",
        ),
        // No --permission-relay: verdicts are refused, with the reason.
        (
            r#"{"type":"permission","request_id":"abcde","behavior":"allow"}"#,
            "permission relay is off",
        ),
    ];
    for (text, needle) in bad {
        if let Ok(v) = serde_json::from_str::<Value>(text) {
            if v["type"] != "permission" {
                // Our schemas agree that these frames are wrong.
                assert!(!schema_errors(&v).is_empty(), "schema accepts {text}");
            }
        }
        peer.send_text(text).await;
        let err = peer.expect_kind("error").await;
        let reason = err["reason"].as_str().unwrap();
        assert!(
            reason.contains(needle),
            "{text}: reason {reason:?} lacks {needle:?}"
        );
    }
    peer.ws
        .send(tokio_tungstenite::tungstenite::Message::binary(vec![
            1u8, 2, 3,
        ]))
        .await
        .unwrap();
    let err = peer.expect_kind("error").await;
    assert!(err["reason"].as_str().unwrap().contains("binary"), "{err}");

    // Every refusal is logged, too.
    plugin
        .wait_stderr("the refusals", |log| {
            log.matches("inbound frame refused").count() >= 5
        })
        .await;

    // Same connection, next good frame is delivered.
    peer.send_frame(json!({"type":"inbound","content":"still here"}))
        .await;
    let params = plugin
        .expect_notification("notifications/claude/channel")
        .await;
    assert_eq!(params["content"], "still here");
    assert!(
        plugin.stderr().matches("connected to the bridge").count() == 1,
        "no reconnect"
    );
    assert!(plugin.close_stdin_and_wait().await.success());
}

use futures_util::SinkExt;

#[tokio::test]
async fn permission_relay_both_ways() {
    let bridge = BridgeServer::bind().await;
    let mut plugin = Plugin::spawn(ws_command(&bridge.url(), &["--permission-relay"]));
    let mut peer = bridge.accept().await;
    peer.expect_kind("hello").await;
    let init = plugin.handshake().await;
    assert!(
        init["result"]["capabilities"]["experimental"]["claude/channel/permission"].is_object(),
        "{init}"
    );

    plugin
        .send(
            json!({"jsonrpc":"2.0","method":"notifications/claude/channel/permission_request",
                     "params":{"request_id":"qwert","tool_name":"Bash",
                               "description":"list files","input_preview":"{\"command\":\"ls\"}",
                               "tool_kind":"shell"}}),
        )
        .await;
    let req = peer.expect_kind("permission_request").await;
    assert_eq!(
        req,
        json!({"type":"permission_request","request_id":"qwert","tool_name":"Bash",
               "description":"list files","input_preview":"{\"command\":\"ls\"}"})
    );

    // Unknown id: an error frame, nothing relayed.
    peer.send_frame(json!({"type":"permission","request_id":"zzzzz","behavior":"allow"}))
        .await;
    let err = peer.expect_kind("error").await;
    assert!(err["reason"].as_str().unwrap().contains("zzzzz"), "{err}");

    // The verdict (ids match case-insensitively) goes to Claude Code.
    peer.send_frame(json!({"type":"permission","request_id":"QWERT","behavior":"deny"}))
        .await;
    let verdict = plugin
        .expect_notification("notifications/claude/channel/permission")
        .await;
    assert_eq!(verdict, json!({"request_id":"qwert","behavior":"deny"}));

    // A second answer for the same id is refused, and said so.
    peer.send_frame(json!({"type":"permission","request_id":"qwert","behavior":"allow"}))
        .await;
    let err = peer.expect_kind("error").await;
    assert!(err["reason"].as_str().unwrap().contains("qwert"), "{err}");
    assert!(plugin.close_stdin_and_wait().await.success());
}
