//! Session logic against the in-process scripted plugin (no processes): busy batching, verdict
//! races, drops, modern era, the unanswered probe's cost, transcript snapshots.

use std::time::Duration;

use mock_claude::testing::{memory, DiscoverAnswer, ScriptedPlugin};
use mock_claude::{fixtures_dir, DiscoverOutcome, DropKind, LaunchOptions, Profile, Verdict};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

fn p(v: &str) -> Profile {
    Profile::by_version(fixtures_dir(), v).unwrap()
}

fn fixed() -> LaunchOptions {
    let mut o = LaunchOptions::dev("zoo", vec![]);
    o.session_id = Some(uuid::Uuid::nil());
    o
}

#[tokio::test]
async fn idle_events_are_turns_and_busy_events_are_batched() {
    let (mut s, plugin) = memory(&p("2.1.330"), fixed(), ScriptedPlugin::channel());
    s.handshake().await.unwrap();
    plugin.push("one", json!({ "chat_id": "1" }));
    let t = s.next_turn(WAIT).await.unwrap();
    assert_eq!(
        t.text,
        "<channel source=\"zoo\" chat_id=\"1\">\none\n</channel>"
    );

    s.set_busy(true);
    plugin.push("two", json!(null));
    plugin.push("three", json!(null));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        s.next_turn(Duration::from_millis(50)).await.is_err(),
        "no turn while busy"
    );
    s.set_busy(false);
    let t = s.next_turn(WAIT).await.unwrap();
    assert!(t.batched);
    assert_eq!(t.events.len(), 2);
    assert!(t.text.starts_with("A message arrived from zoo while you were working:\n<channel source=\"zoo\">\ntwo\n</channel>"));
    assert!(t
        .text
        .contains("<channel source=\"zoo\">\nthree\n</channel>"));
}

#[tokio::test]
async fn first_verdict_wins_later_and_unknown_are_ignored() {
    let (mut s, plugin) = memory(&p("2.1.330"), fixed(), ScriptedPlugin::channel());
    s.handshake().await.unwrap();
    let id = s
        .send_permission_request("Bash", "list files", &"x".repeat(500))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let req = plugin
        .received()
        .into_iter()
        .find(|f| f["method"] == "notifications/claude/channel/permission_request")
        .unwrap();
    assert_eq!(req["params"]["input_preview"].as_str().unwrap().len(), 200);
    plugin.verdict(&id.to_uppercase(), "deny"); // matched case-insensitively
    plugin.verdict(&id, "allow");
    plugin.verdict("zzzzz", "allow");
    assert_eq!(s.wait_verdict(&id, WAIT).await.unwrap(), Verdict::Denied);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ignored = s.ignored_verdicts();
    assert_eq!(ignored.len(), 2, "{ignored:?}");
    assert!(ignored[0].reason.contains("first answer wins"));
    assert!(ignored[1].reason.contains("unknown request id"));

    // Unanswered → answered locally; a late channel answer is ignored.
    let id2 = s.send_permission_request("Bash", "x", "{}").await.unwrap();
    assert_eq!(
        s.wait_verdict(&id2, Duration::from_millis(200))
            .await
            .unwrap(),
        Verdict::AnsweredLocally
    );
    plugin.verdict(&id2, "allow");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(s.ignored_verdicts().len(), 3);
}

#[tokio::test]
async fn permission_relay_needs_both_capabilities_and_registration() {
    let mut plugin = ScriptedPlugin::channel();
    plugin.capabilities = json!({ "experimental": { "claude/channel": {} }, "tools": {} });
    let (mut s, _h) = memory(&p("2.1.330"), fixed(), plugin);
    s.handshake().await.unwrap();
    let e = s
        .send_permission_request("Bash", "x", "{}")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("claude/channel/permission"), "{e}");

    let (mut s, _h) = memory(&p("2.1.80"), fixed(), ScriptedPlugin::channel());
    s.handshake().await.unwrap();
    let e = s
        .send_permission_request("Bash", "x", "{}")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("2.1.81"), "{e}");

    let mut o = fixed();
    o.feature_available = false;
    let (mut s, _h) = memory(&p("2.1.330"), o, ScriptedPlugin::channel());
    s.handshake().await.unwrap();
    let e = s
        .send_permission_request("Bash", "x", "{}")
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("channels feature is not currently available"),
        "{e}"
    );
}

#[tokio::test]
async fn unanswered_probe_costs_the_profile_timeout() {
    let mut plugin = ScriptedPlugin::channel();
    plugin.discover = DiscoverAnswer::Silent;
    let mut profile = p("2.1.330");
    profile.discover.timeout_ms = Some(300); // shortened for the test; 2.1.330 waits 3000 ms
    let (mut s, _h) = memory(&profile, fixed(), plugin);
    let hs = s.handshake().await.unwrap();
    match hs.discover {
        DiscoverOutcome::Unanswered { waited } => assert!(waited >= Duration::from_millis(300)),
        other => panic!("{other:?}"),
    }
    assert!(hs.gate.registered);
}

#[tokio::test]
async fn legacy_env_switch_turns_the_probe_off() {
    let mut plugin = ScriptedPlugin::channel();
    plugin.discover =
        DiscoverAnswer::Result(json!({ "protocolVersion": "2026-07-28", "capabilities": {} }));
    let (mut s, _h) = memory(
        &p("2.1.330"),
        fixed().env("MCP_PROTOCOL_NEGOTIATION", "legacy"),
        plugin,
    );
    let hs = s.handshake().await.unwrap();
    assert_eq!(hs.discover, DiscoverOutcome::NotSent);
    assert!(hs.gate.registered);
}

#[tokio::test]
async fn modern_era_tool_call_meta_matches_the_recording() {
    let mut plugin = ScriptedPlugin::channel();
    plugin.discover = DiscoverAnswer::Result(json!({
        "protocolVersion": "2026-07-28",
        "capabilities": { "experimental": { "claude/channel": {} }, "tools": {} }
    }));
    let (mut s, h) = memory(&p("2.1.330"), fixed(), plugin);
    let hs = s.handshake().await.unwrap();
    assert_eq!(hs.gate.failed_check, Some(mock_claude::GateCheck::Era));
    s.call_tool("reply", json!({ "text": "t" })).await.unwrap();
    let frames = h.received();
    let list = frames.iter().find(|f| f["method"] == "tools/list").unwrap();
    assert_eq!(list["id"], 0, "ids count from 0 without initialize");
    let call = frames.iter().find(|f| f["method"] == "tools/call").unwrap();
    assert_eq!(call["id"], 1);
    let keys: Vec<&String> = call["params"]["_meta"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        keys,
        [
            "io.modelcontextprotocol/protocolVersion",
            "io.modelcontextprotocol/clientInfo",
            "io.modelcontextprotocol/clientCapabilities",
            "claudecode/toolUseId",
            "progressToken"
        ]
    );
}

#[tokio::test]
async fn capability_true_fails_initialize_validation() {
    let mut plugin = ScriptedPlugin::channel();
    plugin.capabilities = json!({ "experimental": { "claude/channel": true }, "tools": {} });
    let (mut s, _h) = memory(&p("2.1.330"), fixed(), plugin);
    let e = s.handshake().await.unwrap_err();
    assert!(e.to_string().contains("must be an object"), "{e}");
    assert!(!s.gate().registered);
}

#[tokio::test]
async fn junk_and_bad_pushes_are_recorded_not_fatal() {
    let (mut s, h) = memory(&p("2.1.330"), fixed(), ScriptedPlugin::channel());
    s.handshake().await.unwrap();
    h.send_raw("not json at all");
    h.send(json!({ "jsonrpc": "2.0", "method": "notifications/claude/channel", "params": { "content": 5 } }));
    h.push("ok", json!({ "chat_id": "1" }));
    let t = s.next_turn(WAIT).await.unwrap();
    assert_eq!(t.events[0].content, "ok");
    let drops = s.drops();
    assert_eq!(drops.len(), 1);
    assert_eq!(drops[0].kind, DropKind::InvalidParams);
    let tr = s.transcript();
    assert_eq!(tr.stray_stdout_bytes(), "not json at all\n".len() as u64);
    let v = tr.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].index, drops[0].frame_index);
}

/// The whole opening of a 2.1.330 session, frame for frame (ids kept: they are deterministic;
/// times, session ids and tool-use ids redacted).
#[tokio::test]
async fn snapshot_transcript_of_a_session() {
    let (mut s, h) = memory(&p("2.1.330"), fixed(), ScriptedPlugin::channel());
    s.handshake().await.unwrap();
    h.push(
        "hello </channel>",
        json!({ "chat_id": "1", "bad-key": "x" }),
    );
    let turn = s.next_turn(WAIT).await.unwrap();
    s.run_script_turn(&mock_claude::Script::echo_reply(), &turn)
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    let entries = s.transcript().redacted_entries();
    insta::assert_json_snapshot!("transcript_2_1_330_memory", entries, {
        "[].t_ms" => "[t_ms]",
        "[].frame.params._meta[\"claudecode/toolUseId\"]" => "[toolUseId]",
    });
}

#[tokio::test]
async fn availability_is_rechecked_at_delivery_from_2_1_290() {
    for (version, rechecks) in [("2.1.330", true), ("2.1.80", false)] {
        let (mut s, h) = memory(&p(version), fixed(), ScriptedPlugin::channel());
        assert!(s.handshake().await.unwrap().gate.registered);
        s.set_feature_available(false);
        h.push("late", json!(null));
        if rechecks {
            assert!(s.next_turn(Duration::from_millis(500)).await.is_err());
            let d = s.drops();
            assert_eq!(d.len(), 1);
            assert_eq!(d[0].kind, DropKind::FeatureUnavailable);
            assert!(d[0]
                .reason
                .contains("channels feature is not currently available"));
        } else {
            assert_eq!(
                s.next_turn(WAIT).await.unwrap().events[0].content,
                "late",
                "{version}"
            );
        }
    }
}
