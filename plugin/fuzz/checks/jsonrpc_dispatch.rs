//! Bytes on stdin through the whole MCP core, in memory: line decoder,
//! JSON-RPC classification and dispatch (initialize, tools/call of `reply`,
//! permission requests, pushes held and released...).
//!
//! Properties checked on every input:
//! * the session survives: `serve` ends only because the input ended;
//! * everything written to stdout is a JSON-RPC 2.0 object, one per line;
//! * every request with a usable id gets exactly one response (matched as a
//!   multiset of ids against what `jsonrpc::classify` says the input held);
//! * a channel event pushed by the bridge before the input ends is either
//!   written or was still held (never half-written, never duplicated).
//!
//! Shared by the fuzz target `fuzz_targets/jsonrpc_dispatch.rs` and the stable replay test
//! `plugin/tests/regressions_fuzz.rs` (seeds and every crash input, on every CI run).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use channel_plugin::bridge::{
    Behavior, Bridge, ChannelEvent, PermissionRequest, Reply, ReplyDelivery, ReplyError,
};
use channel_plugin::mcp::codec::{Frame, FrameReader};
use channel_plugin::mcp::jsonrpc::{classify, Incoming};
use channel_plugin::mcp::{Core, CoreConfig, ServeEnd, CHANNEL_METHOD};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const CAP: usize = 8 * 1024;

#[derive(Default)]
struct RecordingBridge {
    replies: Mutex<Vec<Reply>>,
}

impl Bridge for RecordingBridge {
    fn reply(&self, reply: Reply) -> Result<ReplyDelivery, ReplyError> {
        let refuse = reply.text == "refuse";
        self.replies.lock().unwrap().push(reply);
        if refuse {
            return Err(ReplyError("refused by the fuzz bridge".into()));
        }
        Ok(ReplyDelivery::Sent {
            detail: "ok".into(),
        })
    }
    fn permission_request(&self, _request: &PermissionRequest) {}
    fn permission_resolved(&self, _request_id: &str, _behavior: Behavior) {}
}

/// What the core must answer: ids of requests (and of invalid messages whose
/// id was usable), from the same decoder the core uses.
async fn expected_ids(input: &[u8]) -> Vec<String> {
    let mut reader = FrameReader::new(input, CAP);
    let mut ids = Vec::new();
    while let Some(frame) = reader.next_frame().await.unwrap() {
        let Frame::Line(line) = frame else { continue };
        let Ok(text) = std::str::from_utf8(&line) else {
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        match classify(value) {
            Ok(Incoming::Request { id, .. }) => ids.push(id.to_string()),
            Ok(_) => {}
            Err(invalid) if !invalid.id.is_null() => ids.push(invalid.id.to_string()),
            Err(_) => {}
        }
    }
    ids.sort();
    ids
}

/// Run one input; panics when a property is broken.
pub fn check(data: &[u8]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut config = CoreConfig::new("fuzz");
        config.permission_relay = data.first().is_some_and(|b| b & 1 == 1);
        config.max_line_bytes = CAP;
        config.ready_settle = Duration::ZERO;
        config.ready_fallback = Duration::from_millis(1);
        config.max_held = 4;
        let (core, handle) = Core::new(config);
        let bridge = Arc::new(RecordingBridge::default());

        let (server, client) = tokio::io::duplex(64 * 1024);
        let (server_in, server_out) = tokio::io::split(server);
        let (client_in, mut client_out) = tokio::io::split(client);

        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(client_in).lines();
            let mut frames = Vec::new();
            while let Some(line) = lines.next_line().await.expect("core output is UTF-8") {
                let frame: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("core wrote non-JSON {line:?}: {e}"));
                assert_eq!(frame["jsonrpc"], "2.0", "{frame}");
                frames.push(frame);
            }
            frames
        });
        let owned = data.to_vec();
        let writer = tokio::spawn(async move {
            // Write in two parts so a push lands between them.
            let mid = owned.len() / 2;
            let _ = client_out.write_all(&owned[..mid]).await;
            tokio::task::yield_now().await;
            let _ = client_out.write_all(&owned[mid..]).await;
            let _ = client_out.shutdown().await;
        });
        let pusher = {
            let handle = handle.clone();
            tokio::spawn(async move {
                let mut accepted = 0usize;
                for i in 0..3 {
                    let event = ChannelEvent {
                        content: format!("fuzz push {i}"),
                        meta: vec![("chat_id".into(), "f".into())],
                    };
                    if handle.push(event).is_ok() {
                        accepted += 1;
                    }
                    tokio::task::yield_now().await;
                }
                accepted
            })
        };

        let end = core
            .serve(
                server_in,
                server_out,
                bridge.clone(),
                std::future::pending(),
            )
            .await;
        assert_eq!(
            end,
            ServeEnd::InputClosed,
            "the session ended for another reason"
        );
        writer.await.unwrap();
        let accepted = pusher.await.unwrap();
        let frames = tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .expect("core output did not close after serve returned")
            .unwrap();

        let mut answered: Vec<String> = frames
            .iter()
            .filter(|f| f.get("method").is_none() && !f["id"].is_null())
            .map(|f| f["id"].to_string())
            .collect();
        answered.sort();
        assert_eq!(
            answered,
            expected_ids(data).await,
            "requests and responses do not pair up"
        );

        let pushed: Vec<&Value> = frames
            .iter()
            .filter(|f| f["method"] == CHANNEL_METHOD)
            .collect();
        assert!(
            pushed.len() <= accepted,
            "more channel events written than accepted"
        );
        for (i, frame) in pushed.iter().enumerate() {
            // In order, none duplicated (the first ones written are the first accepted).
            assert_eq!(
                frame["params"]["content"],
                format!("fuzz push {i}"),
                "{frame}"
            );
        }
    });
}
