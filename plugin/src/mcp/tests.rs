//! Core behaviour, driven in memory through [`super::memory`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::memory::{memory, MemoryClient};
use super::{Core, CoreConfig, CoreHandle, ServeEnd};
use crate::bridge::*;

#[derive(Default)]
struct RecordingBridge {
    replies: Mutex<Vec<Reply>>,
    requests: Mutex<Vec<PermissionRequest>>,
    resolved: Mutex<Vec<(String, Behavior)>>,
}

impl Bridge for RecordingBridge {
    fn reply(&self, reply: Reply) -> Result<ReplyDelivery, ReplyError> {
        if reply.text == "refuse me" {
            return Err(ReplyError("bridge says no".into()));
        }
        self.replies.lock().unwrap().push(reply);
        Ok(ReplyDelivery::Sent {
            detail: "sent to 1 client".into(),
        })
    }
    fn permission_request(&self, request: &PermissionRequest) {
        self.requests.lock().unwrap().push(request.clone());
    }
    fn permission_resolved(&self, request_id: &str, behavior: Behavior) {
        self.resolved
            .lock()
            .unwrap()
            .push((request_id.to_string(), behavior));
    }
}

struct Harness {
    client: MemoryClient,
    handle: CoreHandle,
    bridge: Arc<RecordingBridge>,
    stop: Option<oneshot::Sender<()>>,
    served: JoinHandle<ServeEnd>,
}

fn start(config: CoreConfig) -> Harness {
    start_with_capacity(config, 1 << 20)
}

fn start_with_capacity(config: CoreConfig, capacity: usize) -> Harness {
    let (core, handle) = Core::new(config);
    let (io, client) = memory(capacity);
    let bridge = Arc::new(RecordingBridge::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let dyn_bridge: Arc<dyn Bridge> = bridge.clone();
    let served = tokio::spawn(async move {
        core.serve(io.input, io.output, dyn_bridge, async {
            let _ = stopped.await;
        })
        .await
    });
    Harness {
        client,
        handle,
        bridge,
        stop: Some(stop),
        served,
    }
}

impl Harness {
    async fn recv(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(10), self.client.recv())
            .await
            .expect("timed out waiting for a frame")
            .expect("core closed its output")
    }

    async fn request(&mut self, id: Value, method: &str, params: Value) -> Value {
        self.client
            .send(&json!({"jsonrpc":"2.0","id":id,"method":method,"params":params}))
            .await;
        let frame = self.recv().await;
        assert_eq!(frame["id"], id, "unexpected frame {frame}");
        frame
    }

    async fn notify(&mut self, method: &str, params: Value) {
        self.client
            .send(&json!({"jsonrpc":"2.0","method":method,"params":params}))
            .await;
    }

    /// The CHANNELS.md §3 opening.
    async fn handshake(&mut self) {
        let probe = self
            .request(
                json!("server-discover-probe-1"),
                "server/discover",
                json!({}),
            )
            .await;
        assert_eq!(probe["error"]["code"], -32601);
        let init = self
            .request(
                json!(0),
                "initialize",
                json!({"protocolVersion":"2025-11-25","capabilities":{},
                "clientInfo":{"name":"test","version":"1"}}),
            )
            .await;
        assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
        self.notify("notifications/initialized", json!({})).await;
        let tools = self.request(json!(1), "tools/list", json!({})).await;
        assert_eq!(tools["result"]["tools"][0]["name"], "reply");
    }

    async fn expect_silence(&mut self, for_: Duration) {
        if let Ok(frame) = tokio::time::timeout(for_, self.client.recv()).await {
            panic!("expected no frame, got {frame:?}");
        }
    }
}

fn event(content: &str) -> ChannelEvent {
    ChannelEvent {
        content: content.into(),
        meta: vec![("chat_id".into(), "c1".into())],
    }
}

#[tokio::test]
async fn initialize_echoes_known_versions_and_falls_back_otherwise() {
    let mut h = start(CoreConfig::new("test"));
    for (asked, answered) in [
        ("2024-11-05", "2024-11-05"),
        ("2025-06-18", "2025-06-18"),
        ("2026-07-28", "2025-11-25"),
        ("1999-01-01", "2025-11-25"),
    ] {
        let r = h
            .request(
                json!(asked),
                "initialize",
                json!({"protocolVersion": asked}),
            )
            .await;
        assert_eq!(r["result"]["protocolVersion"], answered);
    }
    let r = h.request(json!(9), "initialize", json!({})).await["result"].clone();
    assert_eq!(r["protocolVersion"], "2025-11-25");
    assert_eq!(
        r["capabilities"],
        json!({"tools":{},"experimental":{"claude/channel":{}}})
    );
    assert_eq!(r["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(r["instructions"].as_str().unwrap().len() < 2048);
}

#[tokio::test]
async fn permission_capability_only_with_relay() {
    let mut config = CoreConfig::new("test");
    config.permission_relay = true;
    let mut h = start(config);
    let r = h
        .request(
            json!(0),
            "initialize",
            json!({"protocolVersion":"2025-11-25"}),
        )
        .await;
    assert_eq!(
        r["result"]["capabilities"]["experimental"],
        json!({"claude/channel":{},"claude/channel/permission":{}})
    );
}

#[tokio::test]
async fn unsupported_methods_answer_method_not_found() {
    let mut h = start(CoreConfig::new("test"));
    for method in [
        "server/discover",
        "prompts/list",
        "resources/list",
        "nope/never",
    ] {
        let r = h.request(json!(method), method, json!({})).await;
        assert_eq!(r["error"]["code"], -32601, "{method}: {r}");
    }
    let r = h.request(json!(5), "ping", json!({})).await;
    assert_eq!(r["result"], json!({}));
    // Unknown notifications get no answer; the next request is answered next.
    h.notify("notifications/whatever", json!({})).await;
    let r = h.request(json!(6), "ping", json!({})).await;
    assert_eq!(r["result"], json!({}));
}

#[tokio::test]
async fn malformed_input_is_answered_and_survived() {
    let mut h = start(CoreConfig::new("test"));
    h.client.send_raw(b"this is not json\n").await;
    let r = h.recv().await;
    assert_eq!(
        (r["id"].clone(), r["error"]["code"].clone()),
        (Value::Null, json!(-32700))
    );
    h.client
        .send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xffing\"}\n")
        .await;
    let r = h.recv().await;
    assert_eq!(
        (r["id"].clone(), r["error"]["code"].clone()),
        (Value::Null, json!(-32700))
    );
    h.client.send_raw(b"[1,2]\n42\n").await;
    for _ in 0..2 {
        let r = h.recv().await;
        assert_eq!(
            (r["id"].clone(), r["error"]["code"].clone()),
            (Value::Null, json!(-32600))
        );
    }
    h.client
        .send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":7}\n\n  \n")
        .await;
    let r = h.recv().await;
    assert_eq!(
        (r["id"].clone(), r["error"]["code"].clone()),
        (json!(3), json!(-32600))
    );
    let r = h.request(json!(4), "ping", json!({})).await;
    assert_eq!(r["result"], json!({}));
}

#[tokio::test]
async fn oversized_line_is_refused_and_the_session_goes_on() {
    let mut config = CoreConfig::new("test");
    config.max_line_bytes = 1024;
    let mut h = start(config);
    let mut big = vec![b'x'; 5000];
    big.push(b'\n');
    h.client.send_raw(&big).await;
    let r = h.recv().await;
    assert_eq!(r["error"]["code"], -32600);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("5000 bytes"),
        "{r}"
    );
    let r = h.request(json!(1), "ping", json!({})).await;
    assert_eq!(r["result"], json!({}));
}

#[tokio::test]
async fn pushes_before_ready_are_held_then_flushed_in_order_after_tools_list() {
    let mut config = CoreConfig::new("test");
    // Far away, so a stalled test machine cannot trigger it mid-test.
    config.ready_fallback = Duration::from_secs(60);
    let mut h = start(config);
    let first = h.handle.push(event("one")).unwrap();
    let init = h
        .request(
            json!(0),
            "initialize",
            json!({"protocolVersion":"2025-11-25"}),
        )
        .await;
    assert!(init.get("result").is_some());
    h.handle.push(event("two")).unwrap();
    h.notify("notifications/initialized", json!({})).await;
    // Initialized but tools not listed: still held.
    h.expect_silence(Duration::from_millis(300)).await;
    assert!(!h.handle.status().ready);
    let third = h.handle.push(event("three")).unwrap();
    assert_eq!(third, first + 2);
    let tools = h.request(json!(1), "tools/list", json!({})).await;
    assert!(tools.get("result").is_some());
    for want in ["one", "two", "three"] {
        let n = h.recv().await;
        assert_eq!(n["method"], "notifications/claude/channel");
        assert_eq!(
            n["params"],
            json!({"content": want, "meta": {"chat_id": "c1"}})
        );
    }
    // Post-ready pushes keep flowing in order.
    h.handle.push(event("four")).unwrap();
    assert_eq!(h.recv().await["params"]["content"], "four");
    assert!(h.handle.status().ready);
}

#[tokio::test]
async fn held_pushes_flush_after_fallback_when_tools_are_never_listed() {
    let mut config = CoreConfig::new("test");
    config.ready_fallback = Duration::from_millis(200);
    let mut h = start(config);
    h.handle.push(event("early")).unwrap();
    h.request(json!(0), "initialize", json!({})).await;
    h.notify("notifications/initialized", json!({})).await;
    assert_eq!(h.recv().await["params"]["content"], "early");
}

/// Meta from a bridge is normalized (distinct keys) but the core does not
/// rely on it: a repeated key keeps its first place and its last value, as
/// a JSON object would.
#[tokio::test]
async fn a_repeated_meta_key_keeps_its_place_and_last_value() {
    let mut h = start(CoreConfig::new("test"));
    h.handshake().await;
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    h.handle
        .push(ChannelEvent {
            content: "dup".into(),
            meta: vec![pair("a", "1"), pair("b", "2"), pair("a", "3")],
        })
        .unwrap();
    let n = h.recv().await;
    assert_eq!(
        serde_json::to_string(&n["params"]["meta"]).unwrap(),
        r#"{"a":"3","b":"2"}"#
    );
}

#[tokio::test]
async fn reply_tool_reaches_the_bridge_and_bad_arguments_are_explained() {
    let mut h = start(CoreConfig::new("test"));
    h.handshake().await;
    let ok = h
        .request(
            json!(2),
            "tools/call",
            json!({"name":"reply","arguments":{"text":"hi","chat_id":"c1"},
            "_meta":{"claudecode/toolUseId":"toolu_1","progressToken":2}}),
        )
        .await;
    assert_eq!(ok["result"]["content"][0]["text"], "sent to 1 client");
    assert!(ok["result"].get("isError").is_none());
    assert_eq!(
        h.bridge.replies.lock().unwrap().clone(),
        vec![Reply {
            text: "hi".into(),
            chat_id: Some("c1".into()),
            is_final: true
        }]
    );
    let bad = h
        .request(
            json!(3),
            "tools/call",
            json!({"name":"reply","arguments":{"text":1}}),
        )
        .await;
    assert_eq!(bad["result"]["isError"], true);
    assert!(bad["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("\"text\" must be a string"));
    let refused = h
        .request(
            json!(4),
            "tools/call",
            json!({"name":"reply","arguments":{"text":"refuse me"}}),
        )
        .await;
    assert_eq!(refused["result"]["isError"], true);
    assert!(refused["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("bridge says no"));
    let unknown = h
        .request(
            json!(5),
            "tools/call",
            json!({"name":"send","arguments":{}}),
        )
        .await;
    assert_eq!(unknown["error"]["code"], -32602);
    let nameless = h.request(json!(6), "tools/call", json!({})).await;
    assert_eq!(nameless["error"]["code"], -32602);
    assert_eq!(h.bridge.replies.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn permission_relay_round_trip() {
    let mut config = CoreConfig::new("test");
    config.permission_relay = true;
    let mut h = start(config);
    h.handshake().await;
    h.notify(
        "notifications/claude/channel/permission_request",
        json!({"request_id":"abcde","tool_name":"Bash","description":"run ls","input_preview":"{}","tool_kind":"x"}),
    )
    .await;
    // Round-trip a ping so the notification has been processed.
    h.request(json!(10), "ping", json!({})).await;
    assert_eq!(h.bridge.requests.lock().unwrap()[0].request_id, "abcde");
    assert_eq!(
        h.handle.permission_verdict("zzzzz", Behavior::Allow),
        Err(VerdictError::Unknown("zzzzz".into()))
    );
    h.handle
        .permission_verdict("ABCDE", Behavior::Deny)
        .unwrap();
    let n = h.recv().await;
    assert_eq!(
        n,
        json!({"jsonrpc":"2.0","method":"notifications/claude/channel/permission",
            "params":{"request_id":"abcde","behavior":"deny"}})
    );
    assert_eq!(
        h.bridge.resolved.lock().unwrap().clone(),
        vec![("abcde".to_string(), Behavior::Deny)]
    );
    assert_eq!(
        h.handle.permission_verdict("abcde", Behavior::Allow),
        Err(VerdictError::AlreadyAnswered("abcde".into()))
    );
}

#[tokio::test]
async fn verdicts_are_refused_without_the_relay() {
    let mut h = start(CoreConfig::new("test"));
    h.handshake().await;
    h.notify(
        "notifications/claude/channel/permission_request",
        json!({"request_id":"abcde","tool_name":"Bash","description":"d","input_preview":"{}"}),
    )
    .await;
    h.request(json!(10), "ping", json!({})).await;
    assert!(h.bridge.requests.lock().unwrap().is_empty());
    assert_eq!(
        h.handle.permission_verdict("abcde", Behavior::Allow),
        Err(VerdictError::RelayDisabled)
    );
}

#[tokio::test]
async fn full_queue_refuses_pushes_and_loses_none_it_accepted() {
    let mut config = CoreConfig::new("test");
    config.max_queued = 8;
    config.ready_settle = Duration::ZERO;
    let mut h = start_with_capacity(config, 256);
    h.handshake().await;
    while !h.handle.status().ready {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The client stops reading: the writer's buffer and the pipe fill up.
    let mut accepted = 0u64;
    let busy = loop {
        match h.handle.push(event(&"x".repeat(200))) {
            Ok(_) => accepted += 1,
            Err(err) => break err,
        }
        if accepted % 64 == 0 {
            tokio::task::yield_now().await;
        }
        assert!(accepted < 100_000, "queue never filled");
    };
    assert!(matches!(busy, PushError::Busy { .. }), "{busy:?}");
    // A request is still answered, behind the queued events.
    h.client
        .send(&json!({"jsonrpc":"2.0","id":"p","method":"ping"}))
        .await;
    let mut received = 0u64;
    loop {
        let frame = h.recv().await;
        if frame["id"] == "p" {
            break;
        }
        assert_eq!(frame["method"], "notifications/claude/channel");
        received += 1;
    }
    assert_eq!(received, accepted);
}

#[tokio::test]
async fn serve_ends_on_eof_and_on_shutdown() {
    let mut h = start(CoreConfig::new("test"));
    h.client.close_input().await;
    assert_eq!(h.served.await.unwrap(), ServeEnd::InputClosed);
    assert_eq!(h.handle.push(event("late")), Err(PushError::ShuttingDown));

    let mut h = start(CoreConfig::new("test"));
    h.handshake().await;
    h.stop.take().unwrap().send(()).unwrap();
    assert_eq!(h.served.await.unwrap(), ServeEnd::Shutdown);
    assert_eq!(h.handle.push(event("late")), Err(PushError::ShuttingDown));
}

#[tokio::test]
async fn the_backlog_is_bounded_in_bytes_too() {
    let mut config = CoreConfig::new("test");
    config.max_backlog_bytes = 10_000;
    let mut h = start(config);
    // Before ready: held events count against the byte budget.
    let big = || ChannelEvent {
        content: "x".repeat(4_000),
        meta: Vec::new(),
    };
    h.handle.push(big()).unwrap();
    h.handle.push(big()).unwrap();
    assert!(matches!(
        h.handle.push(big()),
        Err(PushError::Busy { queued: 2, .. })
    ));
    // A small one still fits.
    h.handle.push(event("small")).unwrap();
    h.handshake().await;
    for _ in 0..3 {
        assert_eq!(h.recv().await["method"], "notifications/claude/channel");
    }
    // Once written, the budget is free again.
    while h.handle.status().queued > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.handle.push(big()).unwrap();
    h.handle.push(big()).unwrap();
    for _ in 0..2 {
        assert_eq!(
            h.recv().await["params"]["content"].as_str().unwrap().len(),
            4_000
        );
    }
}
