//! Three documented Claude Code behaviours, each driven against a real process
//! (`tests/support/stand_in.py`) over real pipes:
//! - the memory of an unanswered `server/discover` probe (CHANNELS.md §3.2, FINDINGS 16);
//! - the idle cut of a tool call with no progress (CHANNELS.md §3.5, 2.1.187+);
//! - 2.1.300 rejecting a modern-era `tools/list` result without `resultType` (FINDINGS 6).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use mock_claude::{
    fixtures_dir, Direction, DiscoverOutcome, Era, Error, Handshake, LaunchOptions, ManualClock,
    MockClaude, ProbeMemory, Profile,
};
use serde_json::json;

fn profile(v: &str) -> Profile {
    Profile::by_version(fixtures_dir(), v).expect("profile loads")
}

fn stand_in(args: &[&str]) -> LaunchOptions {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/stand_in.py");
    let mut argv = vec!["python3".to_string(), script.display().to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    LaunchOptions::dev("stand-in", argv)
}

/// Start a stand-in under `p` and run the client's opening: the session and
/// what the handshake saw.
async fn open(p: &Profile, options: LaunchOptions) -> (mock_claude::Session, Handshake) {
    let mut s = MockClaude::spawn(p, options).await.unwrap();
    let hs = s.handshake().await.unwrap();
    (s, hs)
}

fn client_methods(s: &mock_claude::Session) -> Vec<String> {
    s.transcript()
        .frames_from(Direction::ClientToServer)
        .iter()
        .filter_map(|f| f["method"].as_str().map(String::from))
        .collect()
}

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

// ── 1. The probe memory ─────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn unanswered_probe_is_remembered_per_command_for_seven_days() {
    let home = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_at(SystemTime::UNIX_EPOCH + 1000 * DAY);
    let memory = || ProbeMemory::in_dir(home.path()).with_clock(clock.clone());
    let p = profile("2.1.330");
    assert_eq!(p.discover.remember_unanswered_days, Some(7));

    // First start: the probe goes unanswered, costs the timeout, and is remembered on disk.
    let (mut s, hs) = open(
        &p,
        stand_in(&["--discover", "silent"]).probe_memory(memory()),
    )
    .await;
    assert!(
        matches!(hs.discover, DiscoverOutcome::Unanswered { .. }),
        "{:?}",
        hs.discover
    );
    assert_eq!(hs.discover_skipped, None);
    s.shutdown().await.unwrap();
    assert!(home
        .path()
        .join(mock_claude::probe_memory::MEMORY_FILE)
        .exists());

    // Second start of the same command, 6 days later: no probe, straight to initialize.
    clock.advance(6 * DAY);
    let (mut s, hs) = open(
        &p,
        stand_in(&["--discover", "silent"]).probe_memory(memory()),
    )
    .await;
    assert_eq!(hs.discover, DiscoverOutcome::NotSent);
    let why = hs.discover_skipped.clone().expect("skip reason");
    assert!(why.contains("remembered as a legacy peer"), "{why}");
    assert_eq!(hs.era, Era::Legacy);
    let methods = client_methods(&s);
    assert_eq!(
        methods.first().map(String::as_str),
        Some("initialize"),
        "{methods:?}"
    );
    assert!(
        !methods.iter().any(|m| m == "server/discover"),
        "{methods:?}"
    );
    assert!(hs.timings.discover.is_none());
    s.shutdown().await.unwrap();

    // Another command (other arguments) is not covered by the memory.
    let (mut s, hs) = open(
        &p,
        stand_in(&["--discover", "error", "--tool", "answer"]).probe_memory(memory()),
    )
    .await;
    assert!(matches!(
        hs.discover,
        DiscoverOutcome::ErrorAnswered { code: -32601, .. }
    ));
    s.shutdown().await.unwrap();

    // Past 7 days the memory has expired: the probe is sent again.
    clock.advance(DAY + Duration::from_secs(1));
    let (mut s, hs) = open(
        &p,
        stand_in(&["--discover", "silent"]).probe_memory(memory()),
    )
    .await;
    assert!(
        matches!(hs.discover, DiscoverOutcome::Unanswered { .. }),
        "{:?}",
        hs.discover
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn error_answer_is_not_remembered_and_no_memory_means_a_fresh_home() {
    let p = profile("2.1.300");
    let memory = ProbeMemory::in_process();
    for _ in 0..2 {
        let (mut s, hs) = open(&p, stand_in(&[]).probe_memory(memory.clone())).await;
        assert!(
            matches!(
                hs.discover,
                DiscoverOutcome::ErrorAnswered { code: -32601, .. }
            ),
            "FINDINGS 16: after a -32601 the next start probes again: {:?}",
            hs.discover
        );
        s.shutdown().await.unwrap();
    }
    // Without a probe memory every start is a fresh HOME, even after a silent probe.
    let mut s = MockClaude::spawn(&p, stand_in(&["--discover", "silent"]))
        .await
        .unwrap();
    assert!(matches!(
        s.handshake().await.unwrap().discover,
        DiscoverOutcome::Unanswered { .. }
    ));
    s.shutdown().await.unwrap();
    let (mut s, hs) = open(&p, stand_in(&["--discover", "silent"])).await;
    assert!(matches!(hs.discover, DiscoverOutcome::Unanswered { .. }));
    s.shutdown().await.unwrap();
}

// ── 2. The idle cut of tool calls ───────────────────────────────────────────────────────────

#[tokio::test]
async fn idle_tool_call_is_cut_and_progress_keeps_it_alive() {
    let p = profile("2.1.330");
    // Profile value: 30 minutes, overridable per launch.
    let s = MockClaude::spawn(&p, stand_in(&[])).await.unwrap();
    assert_eq!(s.tool_idle_timeout(), Some(Duration::from_secs(30 * 60)));
    drop(s);

    let idle = Duration::from_millis(600);
    let mut s = MockClaude::spawn(&p, stand_in(&["--tool", "hang"]).tool_idle_timeout(idle))
        .await
        .unwrap();
    s.handshake().await.unwrap();
    match s.call_tool("reply", json!({"text": "hi"})).await {
        Err(Error::ToolCallIdle {
            tool,
            id,
            idle: cut_after,
            version,
        }) => {
            assert_eq!(
                (tool.as_str(), cut_after, version.as_str()),
                ("reply", idle, "2.1.330")
            );
            assert_eq!(id, 2, "tools/call id follows initialize 0 and tools/list 1");
        }
        other => panic!("expected the idle cut, got {other:?}"),
    }
    // Nothing undocumented goes on the wire; the server is still connected.
    let methods = client_methods(&s);
    assert_eq!(
        methods.last().map(String::as_str),
        Some("tools/call"),
        "{methods:?}"
    );
    assert!(s.is_alive());
    s.shutdown().await.unwrap();

    // A call that reports progress more often than the idle limit outlives it.
    let mut s = MockClaude::spawn(
        &p,
        stand_in(&[
            "--tool",
            "progress",
            "--progress-count",
            "5",
            "--progress-ms",
            "300",
        ])
        .tool_idle_timeout(idle),
    )
    .await
    .unwrap();
    s.handshake().await.unwrap();
    let t0 = std::time::Instant::now();
    let r = s.call_tool("reply", json!({"text": "hi"})).await.unwrap();
    assert_eq!(r.text(), "sent after progress");
    assert!(t0.elapsed() > idle, "the call outlived the idle limit");
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn releases_before_2_1_187_have_no_idle_cut() {
    let p = profile("2.1.154");
    assert_eq!(p.tools_call.idle_timeout_ms, None);
    let mut s = MockClaude::spawn(
        &p,
        stand_in(&["--tool", "hang"]).tool_idle_timeout(Duration::from_millis(200)),
    )
    .await
    .unwrap();
    assert_eq!(s.tool_idle_timeout(), None);
    s.call_timeout = Duration::from_secs(2);
    s.handshake().await.unwrap();
    match s.call_tool("reply", json!({"text": "hi"})).await {
        Err(Error::Timeout { .. }) => {}
        other => panic!("expected only the harness's own call timeout, got {other:?}"),
    }
    s.shutdown().await.unwrap();
}

// ── 3. Modern-era results without resultType ────────────────────────────────────────────────

#[tokio::test]
async fn release_2_1_300_fails_to_fetch_tools_without_result_type() {
    let p = profile("2.1.300");
    let (mut s, hs) = open(&p, stand_in(&["--discover", "result"])).await;
    assert_eq!(hs.era, Era::Modern);
    assert!(hs.tools.is_empty(), "{:?}", hs.tools);
    assert_eq!(hs.list_failures.len(), 1, "{:?}", hs.list_failures);
    assert!(
        hs.list_failures[0].starts_with(
            "MCP server \"stand-in\" Failed to fetch tools: Invalid result for tools/list: missing required resultType"
        ),
        "{}",
        hs.list_failures[0]
    );
    // Sent 4 times in all, as recorded from the real 2.1.300; no initialize in the modern era.
    let methods = client_methods(&s);
    assert_eq!(
        methods,
        vec![
            "server/discover",
            "tools/list",
            "tools/list",
            "tools/list",
            "tools/list"
        ]
    );
    // The model never gets the tool; the gate still ran (era reason, FINDINGS 14).
    assert!(matches!(
        s.call_tool("reply", json!({"text": "hi"})).await,
        Err(Error::ToolNotListed { .. })
    ));
    assert!(!hs.gate.registered);
    assert!(
        hs.gate.log_line.contains("modern protocol revision"),
        "{}",
        hs.gate.log_line
    );
    s.shutdown().await.unwrap();

    // The same server with resultType is listed at the first attempt.
    let (mut s, hs) = open(&p, stand_in(&["--discover", "result", "--result-type"])).await;
    assert_eq!(hs.tool_names(), vec!["reply"]);
    assert!(hs.list_failures.is_empty());
    assert_eq!(client_methods(&s), vec!["server/discover", "tools/list"]);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn release_2_1_330_fills_in_a_missing_result_type() {
    let (mut s, hs) = open(&profile("2.1.330"), stand_in(&["--discover", "result"])).await;
    assert_eq!(hs.era, Era::Modern);
    assert_eq!(hs.tool_names(), vec!["reply"]);
    assert!(hs.list_failures.is_empty());
    assert_eq!(client_methods(&s), vec!["server/discover", "tools/list"]);
    s.shutdown().await.unwrap();
}
