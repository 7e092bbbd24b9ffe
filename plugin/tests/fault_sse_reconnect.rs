//! An SSE client that drops (with events written to its socket but not yet
//! read, which are then lost with the connection) and reconnects with
//! `Last-Event-ID` misses nothing and sees nothing twice.

mod support;

use std::time::Instant;

use serde_json::json;
use support::http::HttpPlugin;
use support::reply_call;

const ROUNDS: usize = 8;
const PER_ROUND: usize = 40;

#[tokio::test]
async fn sse_client_dropping_and_resuming_with_last_event_id_misses_nothing() {
    let mut plugin = HttpPlugin::start(&[]).await;
    plugin.mcp.handshake().await;
    let start = Instant::now();

    let mut received: Vec<(u64, String)> = Vec::new();
    let mut next_text = 0usize;
    let mut last_id: Option<u64> = None;
    let mut dropped_unread = 0usize;
    let mut call_id = 1000i64;
    for round in 0..ROUNDS {
        let mut sse = plugin.sse(last_id).await;
        if round % 3 == 2 {
            // Replies made while no client was connected are replayed too.
            drop(sse);
            for _ in 0..PER_ROUND {
                call_id += 1;
                plugin
                    .mcp
                    .send(&reply_call(
                        call_id,
                        json!({"text": format!("t{next_text}")}),
                    ))
                    .await;
                plugin.mcp.expect_response(call_id).await;
                next_text += 1;
            }
            continue;
        }
        for _ in 0..PER_ROUND {
            call_id += 1;
            plugin
                .mcp
                .send(&reply_call(
                    call_id,
                    json!({"text": format!("t{next_text}")}),
                ))
                .await;
            let response = plugin.mcp.expect_response(call_id).await;
            assert_ne!(response["result"]["isError"], json!(true), "{response}");
            next_text += 1;
        }
        // Read only part of what was sent; the rest is in flight and dies
        // with the connection.
        let read_now = 7 + round * 3;
        for _ in 0..read_now {
            let event = sse.next_event().await;
            assert_eq!(event.event, "reply");
            received.push((
                event.id.expect("every event has an id"),
                event.data["text"].as_str().unwrap().to_string(),
            ));
        }
        last_id = received.last().map(|(id, _)| *id);
        dropped_unread += PER_ROUND - read_now;
        drop(sse);
    }
    // Final reconnect: everything not read yet.
    let mut sse = plugin.sse(last_id).await;
    while received.len() < next_text {
        let event = sse.next_event().await;
        received.push((
            event.id.unwrap(),
            event.data["text"].as_str().unwrap().to_string(),
        ));
    }
    sse.expect_no_event(std::time::Duration::from_millis(300))
        .await;

    let texts: Vec<String> = received.iter().map(|(_, t)| t.clone()).collect();
    let expected: Vec<String> = (0..next_text).map(|i| format!("t{i}")).collect();
    assert_eq!(
        texts, expected,
        "every reply once, in order, across {ROUNDS} reconnects"
    );
    let ids: Vec<u64> = received.iter().map(|(id, _)| *id).collect();
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "event ids are contiguous: {ids:?}"
    );
    println!(
        "FAULT-FIGURE sse-reconnects replies={next_text} reconnects={ROUNDS} events_lost_in_dropped_connections_then_replayed={dropped_unread} elapsed_ms={}",
        start.elapsed().as_millis()
    );
}
