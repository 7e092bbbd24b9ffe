//! Load: 10,000 `reply` tool calls → 10,000 SSE events (HTTP bridge) and
//! 10,000 WebSocket frames (ws bridge), every one once and in order.
//!
//! Count: env `LOAD_REPLIES` (default 10,000). Calls are pipelined in
//! windows of 32 outstanding requests, as a busy client might. Rates are
//! printed (`LOAD-FIGURE`), never asserted.

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use support::http::HttpPlugin;
use support::{reply_call, McpClient, TIMEOUT};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

const WINDOW: usize = 32;

fn count() -> usize {
    std::env::var("LOAD_REPLIES")
        .map(|v| v.parse().expect("LOAD_REPLIES is a number"))
        .unwrap_or(10_000)
}

/// Make `total` reply calls in windows; every result must not be an error.
async fn reply_many(mcp: &mut McpClient, total: usize) {
    let mut made = 0;
    while made < total {
        let batch = WINDOW.min(total - made);
        for k in 0..batch {
            let i = made + k;
            mcp.send(&reply_call(
                10_000 + i as i64,
                json!({"text": format!("r{i}"), "chat_id": "load"}),
            ))
            .await;
        }
        for k in 0..batch {
            let id = 10_000 + (made + k) as i64;
            let response = mcp.expect_response(id).await;
            assert_ne!(
                response["result"]["isError"],
                json!(true),
                "reply {} refused: {response}",
                made + k
            );
        }
        made += batch;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_replies_become_ten_thousand_sse_events_in_order() {
    let total = count();
    let mut plugin = HttpPlugin::start(&[]).await;
    plugin.mcp.handshake().await;
    let mut sse = plugin.sse(None).await;
    let reader = tokio::spawn(async move {
        let mut got = Vec::with_capacity(total);
        while got.len() < total {
            let event = sse.next_event().await;
            assert_eq!(event.event, "reply");
            got.push((
                event.id.unwrap(),
                event.data["text"].as_str().unwrap().to_string(),
            ));
        }
        sse.expect_no_event(Duration::from_millis(300)).await;
        got
    });
    let start = Instant::now();
    reply_many(&mut plugin.mcp, total).await;
    let calls_done = start.elapsed();
    let got = tokio::time::timeout(Duration::from_secs(120), reader)
        .await
        .expect("SSE reader finished")
        .unwrap();
    let elapsed = start.elapsed();
    for (i, (id, text)) in got.iter().enumerate() {
        assert_eq!(text, &format!("r{i}"), "SSE event #{i}");
        if i > 0 {
            assert_eq!(*id, got[i - 1].0 + 1, "SSE ids contiguous at #{i}");
        }
    }
    println!(
        "LOAD-FIGURE sse replies={total} events={} lost=0 duplicated=0 calls_ms={} elapsed_ms={} rate_per_s={:.0} build={}",
        got.len(),
        calls_done.as_millis(),
        elapsed.as_millis(),
        total as f64 / elapsed.as_secs_f64(),
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    plugin.mcp.close_stdin();
    assert!(plugin.mcp.wait_exit(TIMEOUT).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_replies_become_ten_thousand_ws_frames_in_order() {
    let total = count();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/bridge", listener.local_addr().unwrap());
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Vec<u64>>();
    let bridge = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let mut seqs = Vec::with_capacity(total);
        while seqs.len() < total {
            let msg = tokio::time::timeout(TIMEOUT, ws.next())
                .await
                .expect("frames keep coming")
                .unwrap()
                .unwrap();
            let Message::Text(text) = msg else { continue };
            let frame: Value = serde_json::from_str(text.as_str()).unwrap();
            if frame["type"] == "reply" {
                let seq = frame["seq"].as_u64().unwrap();
                assert_eq!(frame["text"], format!("r{}", seq - 1), "seq {seq}");
                seqs.push(seq);
            }
        }
        done_tx.send(seqs).unwrap();
        // Keep reading (and answering pings) until the plugin closes.
        while let Some(Ok(_)) = ws.next().await {}
    });
    let mut mcp = McpClient::spawn(&[
        "ws",
        "--url",
        &url,
        "--openclaw-session",
        "load",
        "--claude-session",
        "5f0c6f7e-0000-4000-8000-000000000001",
    ])
    .await;
    mcp.handshake().await;
    let start = Instant::now();
    reply_many(&mut mcp, total).await;
    let calls_done = start.elapsed();
    let seqs = tokio::time::timeout(Duration::from_secs(120), done_rx)
        .await
        .expect("the bridge received every reply")
        .unwrap();
    let elapsed = start.elapsed();
    mcp.close_stdin();
    assert!(mcp.wait_exit(TIMEOUT).await.success());
    tokio::time::timeout(TIMEOUT, bridge)
        .await
        .expect("bridge saw the close")
        .unwrap();
    assert_eq!(
        seqs,
        (1..=total as u64).collect::<Vec<_>>(),
        "every reply once, in seq order"
    );
    println!(
        "LOAD-FIGURE ws replies={total} frames={} lost=0 duplicated=0 calls_ms={} elapsed_ms={} rate_per_s={:.0} build={}",
        seqs.len(),
        calls_done.as_millis(),
        elapsed.as_millis(),
        total as f64 / elapsed.as_secs_f64(),
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
}
