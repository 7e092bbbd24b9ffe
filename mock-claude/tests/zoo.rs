//! The zoo of broken plugins (fixtures/zoo/zoo_plugin.py), each driven through the library under
//! real processes and pipes, each producing the client's real outcome.

use std::path::PathBuf;
use std::time::Duration;

use mock_claude::{
    fixtures_dir, DiscoverOutcome, DropKind, Era, Error, ExitVia, GateCheck, LaunchOptions,
    MockClaude, Profile, Script, Verdict,
};

const WAIT: Duration = Duration::from_secs(20);

fn profile(v: &str) -> Profile {
    Profile::by_version(fixtures_dir(), v).expect("profile loads")
}

fn zoo_path() -> PathBuf {
    fixtures_dir().join("zoo").join("zoo_plugin.py")
}

fn zoo(fault: Option<&str>, extra: &[&str]) -> LaunchOptions {
    let mut argv = vec!["python3".to_string(), zoo_path().display().to_string()];
    if let Some(f) = fault {
        argv.push("--fault".into());
        argv.push(f.into());
    }
    argv.extend(extra.iter().map(|s| s.to_string()));
    LaunchOptions::dev("zoo", argv)
}

#[tokio::test]
async fn correct_plugin_full_round_trip_under_2_1_330() {
    let dir = tempfile::tempdir().unwrap();
    let replies = dir.path().join("replies.ndjson");
    let opts = zoo(
        None,
        &[
            "--push-on-ready",
            "hello <world> & </channel> bye",
            "--reply-file",
            replies.to_str().unwrap(),
        ],
    );
    let mut s = MockClaude::spawn(&profile("2.1.330"), opts).await.unwrap();
    let hs = s.handshake().await.unwrap();
    assert_eq!(
        hs.discover,
        DiscoverOutcome::ErrorAnswered {
            code: -32601,
            message: "Method not found".into()
        }
    );
    assert_eq!(hs.protocol_version, "2025-11-25");
    assert_eq!(hs.era, Era::Legacy);
    assert!(hs.gate.registered, "{:?}", hs.gate);
    assert_eq!(
        hs.gate.log_line,
        "MCP server \"zoo\": Channel notifications registered"
    );
    assert_eq!(hs.tool_names(), vec!["reply"]);
    assert_eq!(hs.listed, vec!["tools/list"]);

    let turn = s.next_turn(WAIT).await.unwrap();
    assert_eq!(
        turn.text,
        "<channel source=\"zoo\" chat_id=\"1\" user=\"zoo\">\nhello <world> & <\\/channel> bye\n</channel>"
    );
    assert!(!turn.batched);
    let calls = s
        .run_script_turn(&Script::echo_reply(), &turn)
        .await
        .unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].model_name, "mcp__zoo__reply");
    let result = calls[0].result.as_ref().unwrap();
    assert_eq!(result.text(), "sent");
    assert!(!result.is_error && result.problems.is_empty());
    let written = std::fs::read_to_string(&replies).unwrap();
    assert!(
        written.contains("\"echo: hello <world> & </channel> bye\""),
        "{written}"
    );
    assert!(written.contains("\"chat_id\": \"1\""), "{written}");

    let id = s
        .send_permission_request("Bash", "run ls", "{\"command\":\"ls\"}")
        .await
        .unwrap();
    assert_eq!(id.len(), 5);
    assert!(id.chars().all(|c| c.is_ascii_lowercase() && c != 'l'));
    assert_eq!(s.wait_verdict(&id, WAIT).await.unwrap(), Verdict::Allowed);

    let report = s.shutdown().await.unwrap();
    assert!(report.exited);
    assert_eq!(report.via, Some(ExitVia::Sigint));
    assert!(s.orphans().is_empty());
    let t = s.transcript();
    assert_eq!(t.stray_stdout_bytes(), 0);
    assert_eq!(t.violations(), vec![]);
    // The tools/call frame has the observed shape.
    let call = t
        .frames_from(mock_claude::Direction::ClientToServer)
        .into_iter()
        .find(|f| f["method"] == "tools/call")
        .cloned()
        .unwrap();
    assert_eq!(call["params"]["_meta"]["progressToken"], call["id"]);
    assert!(call["params"]["_meta"]["claudecode/toolUseId"]
        .as_str()
        .unwrap()
        .starts_with("toolu_"));
    assert!(s.drops().is_empty());
}

#[tokio::test]
async fn env_given_to_the_server_follows_the_profile() {
    let mut s = MockClaude::spawn(&profile("2.1.330"), zoo(None, &[]))
        .await
        .unwrap();
    s.handshake().await.unwrap();
    s.shutdown().await.unwrap();
    let stderr = s.transcript().stderr_lines().join("\n");
    for name in [
        "CLAUDECODE",
        "CLAUDE_CODE_ENTRYPOINT",
        "CLAUDE_CODE_SESSION_ID",
        "CLAUDE_PROJECT_DIR",
        "CLAUDE_CODE_MESSAGING_TOKEN",
    ] {
        assert!(stderr.contains(name), "{name} missing: {stderr}");
    }
    // The secret value never reaches a redacted transcript.
    let t = s.transcript();
    assert!(!t.secrets_for_test().is_empty());
    for secret in t.secrets_for_test() {
        assert!(!t.to_ndjson(true).contains(secret.as_str()));
    }
    let mut s = MockClaude::spawn(&profile("2.1.80"), zoo(None, &[]))
        .await
        .unwrap();
    s.handshake().await.unwrap();
    s.shutdown().await.unwrap();
    let stderr = s.transcript().stderr_lines().join("\n");
    if std::env::var_os("CLAUDE_CODE_SESSION_ID").is_none() {
        assert!(
            !stderr.contains("CLAUDE_CODE_SESSION_ID"),
            "2.1.80 has no session id env: {stderr}"
        );
    }
}

#[tokio::test]
async fn trigger_file_pushes_arrive_as_turns() {
    let dir = tempfile::tempdir().unwrap();
    let trig = dir.path().join("t");
    let s_opts = zoo(None, &["--trigger-file", trig.to_str().unwrap()]);
    let mut s = MockClaude::spawn(&profile("2.1.330"), s_opts)
        .await
        .unwrap();
    s.handshake().await.unwrap();
    std::fs::write(
        &trig,
        "{\"content\":\"from file\",\"meta\":{\"chat_id\":\"42\"}}\n",
    )
    .unwrap();
    let turn = s.next_turn(WAIT).await.unwrap();
    assert_eq!(
        turn.text,
        "<channel source=\"zoo\" chat_id=\"42\">\nfrom file\n</channel>"
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn capability_at_top_level_fails_check_1() {
    let mut s = MockClaude::spawn(
        &profile("2.1.330"),
        zoo(Some("capability-top-level"), &["--push-on-ready", "x"]),
    )
    .await
    .unwrap();
    let hs = s.handshake().await.unwrap();
    assert_eq!(hs.gate.failed_check, Some(GateCheck::Capability));
    assert_eq!(
        hs.gate.log_line,
        "MCP server \"zoo\": Channel notifications skipped: server did not declare claude/channel capability"
    );
    let err = s.next_turn(Duration::from_millis(100)).await.unwrap_err();
    assert!(err.to_string().contains("not registered"), "{err}");
    // The push it sent is recorded as dropped, with the reason.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(s.drops().iter().any(|d| d.kind == DropKind::NotRegistered));
    assert!(s.send_permission_request("Bash", "x", "{}").await.is_err());
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn answering_discover_gives_modern_era_and_skips_channels() {
    let mut s = MockClaude::spawn(&profile("2.1.330"), zoo(Some("answers-discover"), &[]))
        .await
        .unwrap();
    let hs = s.handshake().await.unwrap();
    assert!(matches!(
        hs.discover,
        DiscoverOutcome::ResultAnswered { .. }
    ));
    assert_eq!(hs.era, Era::Modern);
    assert_eq!(hs.gate.failed_check, Some(GateCheck::Era));
    assert_eq!(
        hs.gate.reason.as_deref(),
        Some("connection negotiated a modern protocol revision with no unsolicited notification path")
    );
    // No initialize in the modern era; lists carry _meta.
    let t = s.transcript();
    let sent = t.frames_from(mock_claude::Direction::ClientToServer);
    assert!(sent.iter().all(|f| f["method"] != "initialize"));
    let list = sent.iter().find(|f| f["method"] == "tools/list").unwrap();
    assert!(list["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"].is_string());
    s.shutdown().await.unwrap();

    // 2.1.80 never probes: the same plugin is a fine legacy channel there.
    let mut s = MockClaude::spawn(&profile("2.1.80"), zoo(Some("answers-discover"), &[]))
        .await
        .unwrap();
    let hs = s.handshake().await.unwrap();
    assert_eq!(hs.discover, DiscoverOutcome::NotSent);
    assert!(hs.gate.registered);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn version_2026_fails_the_connection_with_the_clients_message() {
    let mut s = MockClaude::spawn(&profile("2.1.330"), zoo(Some("version-2026"), &[]))
        .await
        .unwrap();
    match s.handshake().await {
        Err(Error::ConnectionFailed(m)) => {
            assert_eq!(m, "Server's protocol version is not supported: 2026-07-28")
        }
        other => panic!("expected ConnectionFailed, got {other:?}"),
    }
    assert!(!s.gate().registered);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn junk_stdout_is_ignored_by_2_1_330_and_hangs_2_1_80() {
    let mut s = MockClaude::spawn(&profile("2.1.330"), zoo(Some("junk-stdout"), &[]))
        .await
        .unwrap();
    let hs = s.handshake().await.unwrap();
    assert!(hs.gate.registered);
    let t = s.transcript();
    assert_eq!(t.junk_lines().len(), 1);
    assert!(t.stray_stdout_bytes() > 10);
    s.shutdown().await.unwrap();

    let mut s = MockClaude::spawn(&profile("2.1.80"), zoo(Some("junk-stdout"), &[]))
        .await
        .unwrap();
    let err = s.handshake().await.unwrap_err();
    assert!(
        err.to_string().contains("hangs on a non-JSON stdout line"),
        "{err}"
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn push_before_listing_is_lost() {
    let mut s = MockClaude::spawn(
        &profile("2.1.330"),
        zoo(
            Some("push-before-initialized"),
            &["--push-on-ready", "early"],
        ),
    )
    .await
    .unwrap();
    let hs = s.handshake().await.unwrap();
    assert!(hs.gate.registered);
    assert!(matches!(
        s.next_turn(Duration::from_millis(500)).await,
        Err(Error::Timeout { .. })
    ));
    let drops = s.drops();
    assert_eq!(drops.len(), 1, "{drops:?}");
    assert_eq!(drops[0].kind, DropKind::BeforeListing);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn non_string_meta_drops_the_whole_event_silently() {
    let mut s = MockClaude::spawn(
        &profile("2.1.330"),
        zoo(Some("non-string-meta"), &["--push-on-ready", "n"]),
    )
    .await
    .unwrap();
    s.handshake().await.unwrap();
    assert!(matches!(
        s.next_turn(Duration::from_millis(800)).await,
        Err(Error::Timeout { .. })
    ));
    let drops = s.drops();
    assert_eq!(drops.len(), 1, "{drops:?}");
    assert_eq!(
        drops[0].kind,
        DropKind::NonStringMetaValue { key: "seq".into() }
    );
    assert_eq!(drops[0].client_warning, None);
    let v = s.transcript().violations();
    assert!(
        v.iter().any(
            |v| v.schema == "notifications_claude_channel.notification.schema.json"
                && v.index == drops[0].frame_index
        ),
        "{v:?}"
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn hyphenated_keys_are_dropped_with_a_warning_from_2_1_113() {
    for (version, warns) in [("2.1.330", true), ("2.1.80", false)] {
        let mut s = MockClaude::spawn(
            &profile(version),
            zoo(Some("hyphenated-keys"), &["--push-on-ready", "h"]),
        )
        .await
        .unwrap();
        s.handshake().await.unwrap();
        let turn = s.next_turn(WAIT).await.unwrap();
        assert_eq!(
            turn.text,
            "<channel source=\"zoo\" user=\"zoo\">\nh\n</channel>"
        );
        let drops = s.drops();
        assert_eq!(drops.len(), 2, "{drops:?}");
        assert_eq!(
            drops[0].kind,
            DropKind::MetaKey {
                key: "chat-id".into()
            }
        );
        assert_eq!(drops[0].client_warning.is_some(), warns, "{version}");
        s.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn no_reply_tool_means_the_model_cannot_answer() {
    let mut s = MockClaude::spawn(
        &profile("2.1.330"),
        zoo(Some("no-reply-tool"), &["--push-on-ready", "q"]),
    )
    .await
    .unwrap();
    let hs = s.handshake().await.unwrap();
    assert!(hs.tools.is_empty());
    let turn = s.next_turn(WAIT).await.unwrap();
    let calls = s
        .run_script_turn(&Script::echo_reply(), &turn)
        .await
        .unwrap();
    assert!(calls[0]
        .result
        .as_ref()
        .unwrap_err()
        .contains("not in the server's tools/list"));
    assert!(matches!(
        s.call_tool("reply", serde_json::json!({"text": "x"})).await,
        Err(Error::ToolNotListed { .. })
    ));
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn instructions_over_the_cap_are_cut_and_warned() {
    let mut s = MockClaude::spawn(&profile("2.1.330"), zoo(Some("instructions-over-2kb"), &[]))
        .await
        .unwrap();
    let hs = s.handshake().await.unwrap();
    assert_eq!(hs.instructions.as_ref().unwrap().chars().count(), 4500);
    assert_eq!(
        hs.instructions_as_seen.as_ref().unwrap().chars().count(),
        4096
    );
    assert_eq!(hs.cap_warnings.len(), 2, "{:?}", hs.cap_warnings);
    s.shutdown().await.unwrap();
    let mut s = MockClaude::spawn(&profile("2.1.80"), zoo(Some("instructions-over-2kb"), &[]))
        .await
        .unwrap();
    let hs = s.handshake().await.unwrap();
    assert!(hs.cap_warnings.is_empty(), "2.1.80 had no caps");
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn ignoring_sigint_costs_a_sigterm() {
    let mut s = MockClaude::spawn(&profile("2.1.330"), zoo(Some("ignores-sigint"), &[]))
        .await
        .unwrap();
    s.handshake().await.unwrap();
    let r = s.shutdown().await.unwrap();
    assert!(r.exited);
    assert_eq!(r.via, Some(ExitVia::Sigterm));
    assert!(r.elapsed >= Duration::from_millis(100));
}

#[tokio::test]
async fn stdin_eof_is_the_death_signal() {
    let mut s = MockClaude::spawn(&profile("2.1.330"), zoo(None, &[]))
        .await
        .unwrap();
    s.handshake().await.unwrap();
    let r = s.close_stdin_and_wait(WAIT).await.unwrap();
    assert!(r.exited);
    assert_eq!(r.via, Some(ExitVia::StdinEof));
    assert_eq!(r.exit_code, Some(0));

    let mut s = MockClaude::spawn(&profile("2.1.330"), zoo(Some("ignores-stdin-eof"), &[]))
        .await
        .unwrap();
    s.handshake().await.unwrap();
    let r = s
        .close_stdin_and_wait(Duration::from_millis(700))
        .await
        .unwrap();
    assert!(!r.exited);
    assert!(s.is_alive());
    let r = s.shutdown().await.unwrap();
    assert_eq!(r.via, Some(ExitVia::Sigint));
}

#[tokio::test]
async fn malformed_line_kills_the_crashing_plugin_only() {
    let mut s = MockClaude::spawn(&profile("2.1.330"), zoo(None, &[]))
        .await
        .unwrap();
    s.handshake().await.unwrap();
    s.send_raw_line(b"{not json").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(s.is_alive());
    s.shutdown().await.unwrap();

    let mut s = MockClaude::spawn(
        &profile("2.1.330"),
        zoo(Some("crashes-on-malformed-line"), &[]),
    )
    .await
    .unwrap();
    s.handshake().await.unwrap();
    s.send_raw_line(b"{not json").await.unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while s.is_alive() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!s.is_alive());
    assert_eq!(
        s.shutdown().await.unwrap().via,
        Some(ExitVia::AlreadyExited)
    );
}

/// The client runs its gate only after it has processed the lists, so a correct plugin settles
/// after answering tools/list before it flushes held pushes (channel-plugin waits 100 ms; the
/// zoo does the same). Measured from the moment the client *sent* tools/list, which scheduler
/// noise can only lengthen: the held push cannot arrive sooner than the settle time after it.
#[tokio::test]
async fn correct_plugin_settles_after_tools_list_before_flushing_held_pushes() {
    let mut s = MockClaude::spawn(&profile("2.1.330"), zoo(None, &["--push-on-ready", "held"]))
        .await
        .unwrap();
    s.handshake().await.unwrap();
    let turn = s.next_turn(WAIT).await.unwrap();
    assert!(turn.text.contains("held"), "{}", turn.text);
    let t = s.transcript();
    let at = |dir: mock_claude::Direction, method: &str| {
        t.entries
            .iter()
            .find(|e| e.dir == dir && e.frame.as_ref().is_some_and(|f| f["method"] == method))
            .map(|e| e.t_ms)
            .unwrap_or_else(|| panic!("no {method} frame"))
    };
    let listed = at(mock_claude::Direction::ClientToServer, "tools/list");
    let pushed = at(
        mock_claude::Direction::ServerToClient,
        "notifications/claude/channel",
    );
    assert!(
        pushed >= listed + 90,
        "the held push came {} ms after tools/list was sent; a correct plugin settles 100 ms \
         after its answer first",
        pushed.saturating_sub(listed)
    );
    assert!(s.drops().is_empty(), "{:?}", s.drops());
    s.shutdown().await.unwrap();
}

/// Only the crashes-on-malformed-line fault may die on bad input: the correct plugin answers a
/// tools/call whose params is a string with a JSON-RPC error and keeps serving.
#[tokio::test]
async fn correct_plugin_answers_string_params_with_an_error() {
    let mut s = MockClaude::spawn(&profile("2.1.330"), zoo(None, &[]))
        .await
        .unwrap();
    s.handshake().await.unwrap();
    s.send_raw_line(
        br#"{"jsonrpc":"2.0","id":"bad-params","method":"tools/call","params":"reply"}"#,
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    let answer = loop {
        let found = s
            .transcript()
            .frames_from(mock_claude::Direction::ServerToClient)
            .into_iter()
            .find(|f| f["id"] == "bad-params")
            .cloned();
        if let Some(f) = found {
            break f;
        }
        assert!(
            s.is_alive() && std::time::Instant::now() < deadline,
            "no answer to the string-params call (alive: {}); stderr:\n{}",
            s.is_alive(),
            s.transcript().stderr_lines().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("params must be an object"),
        "{answer}"
    );
    assert!(s.is_alive());
    let report = s.shutdown().await.unwrap();
    assert_eq!(report.via, Some(ExitVia::Sigint));
}

#[tokio::test]
async fn orphans_left_in_the_process_group_are_found() {
    // A plugin whose child outlives it: sh starts a background sleep, then exits on stdin EOF.
    let opts = LaunchOptions::dev(
        "orph",
        vec!["sh".into(), "-c".into(), "sleep 30 & cat >/dev/null".into()],
    );
    let mut s = MockClaude::spawn(&profile("2.1.330"), opts).await.unwrap();
    let r = s.close_stdin_and_wait(WAIT).await.unwrap();
    assert!(r.exited);
    let orphans = s.orphans();
    assert_eq!(orphans.len(), 1, "{orphans:?}");
    assert!(orphans[0].cmdline.contains("sleep"));
    s.kill_orphans();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(s.orphans().is_empty());
}

/// Every frame of a real-process session with the correct zoo plugin under 2.1.330 (times and
/// tool-use ids redacted; stderr left out because it lists inherited env names).
#[tokio::test]
async fn snapshot_zoo_session_frames() {
    let mut o = zoo(None, &["--push-on-ready", "hello"]);
    o.session_id = Some(uuid::Uuid::nil());
    let mut s = MockClaude::spawn(&profile("2.1.330"), o).await.unwrap();
    s.handshake().await.unwrap();
    let turn = s.next_turn(WAIT).await.unwrap();
    s.run_script_turn(&Script::echo_reply(), &turn)
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    let frames: Vec<mock_claude::Entry> = s
        .transcript()
        .redacted_entries()
        .into_iter()
        .filter(|e| e.dir != mock_claude::Direction::Stderr)
        .collect();
    insta::assert_json_snapshot!("zoo_session_2_1_330", frames, {
        "[].t_ms" => "[t_ms]",
        "[].frame.params._meta[\"claudecode/toolUseId\"]" => "[toolUseId]",
    });
}
