//! Staying connected without losing anything: the bridge dies, closes, or
//! stops answering pings; replies made meanwhile are queued and delivered in
//! order after the next hello, none lost, none duplicated.

mod support;
mod support_ws;

use futures_util::SinkExt;
use serde_json::json;
use support_ws::{result_text, ws_command, BridgeServer, Plugin};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

fn seq(frame: &serde_json::Value) -> u64 {
    frame["seq"].as_u64().expect("seq")
}

#[tokio::test]
async fn bridge_killed_and_restarted_gets_hello_then_queued_replies_in_order_once() {
    let bridge = BridgeServer::bind().await;
    let addr = bridge.addr;
    // Keepalive pings far apart: the only pings are the delivery confirmations.
    let mut plugin = Plugin::spawn(ws_command(&bridge.url(), &["--ping-interval-ms", "600000"]));
    let mut peer = bridge.accept().await;
    let first_hello = peer.expect_kind("hello").await;
    plugin.handshake().await;

    assert!(result_text(&plugin.reply("one", true).await).contains("sent"));
    let one = peer.expect_kind("reply").await;
    assert_eq!((seq(&one), one["text"].as_str()), (1, Some("one")));
    // The confirmation ping after the frame; answering it confirms delivery.
    let payload = peer.expect_ping().await;
    assert_eq!(payload.len(), 8, "ping carries the outbox id");

    // Kill the bridge: connection and listener gone, no close frame.
    drop(peer);
    drop(bridge);
    plugin
        .wait_stderr("the lost connection", |l| {
            l.contains("bridge connection lost")
        })
        .await;

    // Replies while the bridge is down are queued, and the model is told so.
    for (text, is_final) in [("two", false), ("three", false), ("four", true)] {
        let result = plugin.reply(text, is_final).await;
        assert_ne!(result["isError"], json!(true), "{result}");
        let said = result_text(&result);
        assert!(said.contains("queued"), "{said}");
    }
    // The MCP side keeps answering while the bridge is away.
    let listed = plugin.request("tools/list", json!({})).await;
    assert!(listed["result"]["tools"].is_array());
    // At least one reconnect attempt failed meanwhile (the outage was real).
    plugin
        .wait_stderr("a failed reconnect", |l| {
            l.contains("cannot connect to the bridge")
        })
        .await;

    // Same port, new bridge process.
    let bridge = BridgeServer::bind_at(addr).await;
    let mut peer = bridge.accept().await;
    let hello = peer.expect_kind("hello").await;
    assert_eq!(hello, first_hello, "hello again, same identity");
    let mut got = Vec::new();
    for _ in 0..3 {
        let f = peer.expect_kind("reply").await;
        got.push((
            seq(&f),
            f["text"].as_str().unwrap().to_string(),
            f["final"].as_bool().unwrap(),
        ));
    }
    assert_eq!(
        got,
        [
            (2, "two".to_string(), false),
            (3, "three".to_string(), false),
            (4, "four".to_string(), true)
        ],
        "queued replies in order; seq 1 (confirmed) not sent again"
    );
    // And the stream goes on from there: the next frame is seq 5, nothing in between.
    assert!(result_text(&plugin.reply("five", true).await).contains("sent"));
    let five = peer.expect_kind("reply").await;
    assert_eq!((seq(&five), five["text"].as_str()), (5, Some("five")));
    assert!(plugin.close_stdin_and_wait().await.success());
}

#[tokio::test]
async fn reply_in_flight_when_the_socket_dies_is_sent_again_with_the_same_seq() {
    let bridge = BridgeServer::bind().await;
    let addr = bridge.addr;
    let mut plugin = Plugin::spawn(ws_command(&bridge.url(), &["--ping-interval-ms", "600000"]));
    let mut peer = bridge.accept().await;
    peer.expect_kind("hello").await;
    plugin.handshake().await;

    plugin.reply("maybe lost", true).await;
    let first = peer.expect_kind("reply").await;
    // Die before answering the confirmation ping: the plugin cannot know
    // whether the frame arrived, so it must not drop it.
    drop(peer);
    drop(bridge);
    plugin
        .wait_stderr("the lost connection", |l| {
            l.contains("bridge connection lost")
        })
        .await;
    assert!(result_text(&plugin.reply("after", true).await).contains("queued"));

    let bridge = BridgeServer::bind_at(addr).await;
    let mut peer = bridge.accept().await;
    peer.expect_kind("hello").await;
    let again = peer.expect_kind("reply").await;
    assert_eq!(
        again, first,
        "byte-identical resend, same seq: the bridge can de-duplicate"
    );
    let after = peer.expect_kind("reply").await;
    assert_eq!((seq(&after), after["text"].as_str()), (2, Some("after")));
    assert!(plugin.close_stdin_and_wait().await.success());
}

#[tokio::test]
async fn no_pong_for_two_intervals_means_reconnect() {
    let bridge = BridgeServer::bind().await;
    let mut plugin = Plugin::spawn(ws_command(&bridge.url(), &["--ping-interval-ms", "300"]));
    let mut silent = bridge.accept().await;
    silent.expect_kind("hello").await;
    // Keep the TCP connection open but never read again: no pongs.
    let mut peer = bridge.accept().await;
    peer.expect_kind("hello").await;
    // (stderr is read by a separate task: wait for the line, don't race it.)
    plugin
        .wait_stderr("the dead-link reason", |l| l.contains("no pong for"))
        .await;
    // (No timing-sensitive checks on the new connection: with a 300 ms
    // interval a loaded machine could legitimately miss a pong there too.)
    drop(silent);
    assert!(plugin.close_stdin_and_wait().await.success());
}

#[tokio::test]
async fn close_from_the_bridge_means_reconnect() {
    let bridge = BridgeServer::bind().await;
    let mut plugin = Plugin::spawn(ws_command(&bridge.url(), &[]));
    let mut peer = bridge.accept().await;
    peer.expect_kind("hello").await;
    peer.ws
        .send(tokio_tungstenite::tungstenite::Message::Close(Some(
            CloseFrame {
                code: CloseCode::Away,
                reason: "bridge restarting".into(),
            },
        )))
        .await
        .unwrap();
    let mut peer = bridge.accept().await;
    peer.expect_kind("hello").await;
    plugin
        .wait_stderr("the close reason", |l| {
            l.contains("the bridge closed the connection (1001") && l.contains("bridge restarting")
        })
        .await;
    assert!(plugin.close_stdin_and_wait().await.success());
}

#[tokio::test]
async fn sigterm_closes_the_socket_and_exits_zero() {
    let bridge = BridgeServer::bind().await;
    let mut plugin = Plugin::spawn(ws_command(&bridge.url(), &[]));
    let mut peer = bridge.accept().await;
    peer.expect_kind("hello").await;
    plugin.handshake().await;
    plugin.mcp.signal(libc::SIGTERM);
    let close = peer.expect_close().await.expect("a close code");
    assert_eq!(close.code, CloseCode::Normal);
    // Exits even though stdin is still open.
    let status = plugin.mcp.wait_exit(support_ws::WAIT).await;
    assert!(status.success(), "{status:?}; stderr:\n{}", plugin.stderr());
}

#[tokio::test]
async fn a_backlog_drains_even_when_the_bridge_keeps_dying_mid_stream() {
    // 100 replies queued while the bridge is down; then a bridge that reads
    // 20 frames and dies, again and again. Delivery must make progress on
    // every connection (confirmations come in batches, within a window), so
    // everything arrives, in order once duplicates are dropped by seq.
    let bridge = BridgeServer::bind().await;
    let addr = bridge.addr;
    let mut plugin = Plugin::spawn(ws_command(&bridge.url(), &["--ping-interval-ms", "600000"]));
    let mut peer = bridge.accept().await;
    peer.expect_kind("hello").await;
    drop(peer);
    drop(bridge);
    plugin.handshake().await;
    plugin
        .wait_stderr("the lost connection", |l| {
            l.contains("bridge connection lost")
        })
        .await;
    for i in 1..=100 {
        let r = plugin.reply(&format!("r{i}"), true).await;
        assert!(result_text(&r).contains("queued"), "{r}");
    }

    let mut received: Vec<serde_json::Value> = Vec::new();
    let mut rounds = 0;
    while !received.iter().any(|f| seq(f) == 100) {
        rounds += 1;
        assert!(
            rounds <= 40,
            "no progress: {} frames after {rounds} connections",
            received.len()
        );
        let bridge = BridgeServer::bind_at(addr).await;
        let mut peer = bridge.accept().await;
        peer.expect_kind("hello").await;
        for _ in 0..20 {
            let f = peer.expect_kind("reply").await;
            let last = seq(&f) == 100;
            received.push(f);
            if last {
                break;
            }
        }
        // Dies without a close frame.
    }
    let mut delivered: Vec<u64> = Vec::new();
    let mut first_copy = std::collections::HashMap::new();
    for f in &received {
        let s = seq(f);
        match first_copy.get(&s) {
            Some(original) => assert_eq!(original, f, "a resend differs from the first copy"),
            None => {
                assert_eq!(
                    s,
                    delivered.len() as u64 + 1,
                    "gap or reordering at seq {s}"
                );
                assert_eq!(f["text"], format!("r{s}"));
                first_copy.insert(s, f.clone());
                delivered.push(s);
            }
        }
    }
    assert_eq!(delivered, (1..=100).collect::<Vec<_>>());
    eprintln!(
        "delivered 100 replies over {rounds} connections, {} frames",
        received.len()
    );
    assert!(plugin.close_stdin_and_wait().await.success());
}
