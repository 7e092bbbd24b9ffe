//! The WebSocket bridge is killed and restarted (same port) over and over
//! while the model streams replies. The ws bridge documents its guarantee in
//! `plugin/src/ws/outbox.rs`: at-least-once, in order, `seq` to
//! de-duplicate. So the bridge here de-duplicates by `seq`, and the test
//! checks that after de-duplication every reply arrived exactly once, in
//! order, and that a resent frame is byte-identical to the first copy.
//!
//! The bridge is a plain tokio-tungstenite server written here (it reads
//! continuously, which also answers the plugin's delivery-confirming pings).

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use support::{reply_call, McpClient};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

const REPLIES: u64 = 400;
const KILL_EVERY: usize = 37;

#[derive(Default)]
struct Seen {
    /// Every reply frame as received: (seq, raw text), duplicates included.
    frames: Vec<(u64, String)>,
    hellos: usize,
    kills: usize,
    /// The last reply arrived.
    done: bool,
    highest: u64,
}

async fn bind(addr: SocketAddr) -> TcpListener {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(e) if Instant::now() < deadline => {
                eprintln!("rebinding {addr}: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot rebind {addr}: {e}"),
        }
    }
}

/// Accept, read replies, and after every KILL_EVERY reply frames (resends
/// included) kill the whole bridge (connection and listener) and start a new
/// one on the same port. This is the hard case for delivery confirmation:
/// the first version of the plugin confirmed one ping per written batch, so
/// a bridge dying every 37 frames never confirmed a 398-frame backlog and
/// received it again forever (livelock found by this test; the ws bridge
/// now writes batches of 16 with a window of 64 unconfirmed frames).
async fn flaky_bridge(addr: SocketAddr, first: TcpListener, seen: Arc<Mutex<Seen>>) {
    let mut listener = Some(first);
    let mut round = 0usize;
    loop {
        let l = match listener.take() {
            Some(l) => l,
            None => bind(addr).await,
        };
        let (tcp, _) = l.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let mut frames_in_this_connection = 0;
        loop {
            let Some(Ok(msg)) = ws.next().await else {
                break;
            };
            let Message::Text(text) = msg else { continue };
            let frame: Value = serde_json::from_str(text.as_str()).unwrap();
            let done = {
                let mut s = seen.lock().unwrap();
                match frame["type"].as_str() {
                    Some("hello") => s.hellos += 1,
                    Some("reply") => {
                        let seq = frame["seq"].as_u64().unwrap();
                        s.frames.push((seq, text.as_str().to_string()));
                        s.highest = s.highest.max(seq);
                        frames_in_this_connection += 1;
                    }
                    other => panic!("unexpected frame {other:?}: {frame}"),
                }
                let done = s.frames.iter().any(|(seq, _)| *seq == REPLIES);
                s.done |= done;
                done
            };
            if done {
                // Keep the last connection up so the final pongs go out.
                while let Some(Ok(_)) = ws.next().await {}
                return;
            }
            if frames_in_this_connection == KILL_EVERY {
                break;
            }
        }
        seen.lock().unwrap().kills += 1;
        if round % 2 == 1 {
            // A polite bridge restart: a close frame first.
            let _ = ws.close(None).await;
        }
        // The abrupt kind: socket and listener just vanish.
        drop(ws);
        drop(l);
        round += 1;
        tokio::time::sleep(Duration::from_millis(30 + (round as u64 * 17) % 100)).await;
    }
}

#[tokio::test]
async fn bridge_killed_and_restarted_repeatedly_every_reply_arrives_once_in_order() {
    let first = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = first.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let bridge = tokio::spawn(flaky_bridge(addr, first, seen.clone()));

    let url = format!("ws://{addr}/bridge");
    let mut mcp = McpClient::spawn(&[
        "ws",
        "--url",
        &url,
        "--openclaw-session",
        "fault-test",
        "--claude-session",
        "c0ffee00-0000-4000-8000-000000000000",
        "--reconnect-min-ms",
        "20",
        "--reconnect-max-ms",
        "200",
        "--ping-interval-ms",
        "600000",
    ])
    .await;
    mcp.handshake().await;

    let start = Instant::now();
    let mut queued = 0;
    for i in 1..=REPLIES {
        let id = 100 + i as i64;
        mcp.send(&reply_call(
            id,
            json!({"text": format!("r{i}"), "final": i % 5 == 0}),
        ))
        .await;
        let response = mcp.expect_response(id).await;
        let result = &response["result"];
        assert_ne!(
            result["isError"],
            json!(true),
            "reply {i} refused: {response}"
        );
        if result["content"][0]["text"]
            .as_str()
            .unwrap_or("")
            .contains("queued")
        {
            queued += 1;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (done, frames, kills) = {
            let s = seen.lock().unwrap();
            (s.done, s.frames.len(), s.kills)
        };
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every reply reached the bridge: {frames} frames, {kills} kills\nstderr:\n{}",
            mcp.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let the last pongs go out, then stop the plugin (which ends the bridge).
    tokio::time::sleep(Duration::from_millis(200)).await;
    mcp.close_stdin();
    assert!(mcp.wait_exit(support::TIMEOUT).await.success());
    tokio::time::timeout(support::TIMEOUT, bridge)
        .await
        .expect("bridge task ended")
        .unwrap();

    let s = seen.lock().unwrap();
    let mut first_copy: std::collections::HashMap<u64, &str> = Default::default();
    let mut delivered = Vec::new();
    let mut duplicates = 0;
    let mut highest = 0;
    for (seq, raw) in &s.frames {
        assert!(
            *seq <= highest + 1,
            "seq {seq} arrived before seq {} (a gap or reordering)",
            highest + 1
        );
        match first_copy.get(seq) {
            Some(original) => {
                duplicates += 1;
                assert_eq!(
                    original, raw,
                    "a resend of seq {seq} differs from the first copy"
                );
            }
            None => {
                first_copy.insert(*seq, raw);
                delivered.push(*seq);
                let frame: Value = serde_json::from_str(raw).unwrap();
                assert_eq!(
                    frame["text"],
                    format!("r{seq}"),
                    "seq {seq} carries the wrong reply"
                );
            }
        }
        highest = highest.max(*seq);
    }
    assert_eq!(
        delivered,
        (1..=REPLIES).collect::<Vec<_>>(),
        "after de-duplication: each reply once, in order"
    );
    assert!(s.kills >= 5, "the bridge was killed only {} times", s.kills);
    assert_eq!(s.hellos, s.kills + 1, "a hello on every (re)connection");
    println!(
        "FAULT-FIGURE ws-restarts replies={REPLIES} bridge_kills={} connections={} duplicates_dropped_by_seq={duplicates} \
         replies_queued_while_down={queued} elapsed_ms={}",
        s.kills,
        s.hellos,
        start.elapsed().as_millis()
    );
}
