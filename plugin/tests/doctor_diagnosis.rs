//! `channel-plugin doctor` on a healthy session (the real plugin binary), a
//! dead plugin, and a session started with the wrong flags. None of these need
//! Claude Code, so they always run.

#[path = "launch_support.rs"]
mod support;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use support::*;

fn doctor(args: &[&str], home: &Path) -> (Output, String) {
    let out = Command::new(plugin_bin())
        .arg("doctor")
        .args(args)
        .env("HOME", home)
        .env_remove("OPZERO_CHANNEL_DIR")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, text)
}

/// The real `channel-plugin http`, driven through the MCP handshake on its
/// stdio the way Claude Code does it.
struct LivePlugin {
    child: Child,
}

impl LivePlugin {
    fn start(sid: &str, disc: &Path) -> Self {
        let mut child = Command::new(plugin_bin())
            .args([
                "http",
                "--session-id",
                sid,
                "--name",
                "channel",
                "--discovery-dir",
            ])
            .arg(disc)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"roots":{"listChanged":true}},"clientInfo":{"name":"claude-code","version":"2.1.330"}}}"#;
        writeln!(stdin, "{init}").unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(
            line.contains("\"id\":0") && line.contains("claude/channel"),
            "{line}"
        );
        writeln!(
            stdin,
            r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
        )
        .unwrap();
        writeln!(
            stdin,
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{}}}}"#
        )
        .unwrap();
        line.clear();
        stdout.read_line(&mut line).unwrap();
        assert!(line.contains("\"id\":1"), "{line}");
        // Keep both pipes open for the plugin's lifetime: stdin closing is its death signal.
        std::mem::forget(stdin);
        std::thread::spawn(move || for _ in stdout.lines() {});
        let file = disc.join(format!("{sid}.json"));
        assert!(
            wait_until(Duration::from_secs(20), || file.is_file()),
            "no discovery file"
        );
        Self { child }
    }
}

impl Drop for LivePlugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn healthy_session_passes() {
    let dir = tempfile::tempdir().unwrap();
    let disc = dir.path().join("channels");
    let sid = uuid::Uuid::new_v4().to_string();
    let plugin = LivePlugin::start(&sid, &disc);
    let log = dir.path().join("debug.txt");
    std::fs::write(
        &log,
        "2026-11-21T20:50:36.138Z [DEBUG] MCP server \"channel\": Connection established with capabilities: {\"hasTools\":true,\"protocolEra\":\"legacy\",\"negotiatedProtocolVersion\":\"2025-11-25\"}\n\
         2026-11-21T20:50:36.146Z [DEBUG] MCP server \"channel\": Channel notifications registered\n",
    )
    .unwrap();
    let (out, report) = doctor(
        &[
            "--skip-claude-check",
            "--discovery-dir",
            disc.to_str().unwrap(),
            "--debug-file",
            log.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        report.contains(&format!("plugin pid {} is running", plugin.child.id())),
        "{report}"
    );
    assert!(
        report.contains("/status ok") && report.contains("finished the MCP handshake"),
        "{report}"
    );
    assert!(
        report.contains("Channel notifications registered"),
        "{report}"
    );
    assert!(report.contains("No problems found"), "{report}");
}

#[test]
fn dead_plugin_is_reported_and_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let disc = dir.path().join("channels");
    std::fs::create_dir_all(&disc).unwrap();
    // A pid that certainly exited: a child we started and reaped.
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let sid = uuid::Uuid::new_v4().to_string();
    let file = disc.join(format!("{sid}.json"));
    std::fs::write(
        &file,
        serde_json::json!({"port": 9, "secret": "s3cr3t", "pid": pid, "sessionId": sid,
            "version": "0.1.0", "createdAt": "2026-11-21T20:00:00Z"})
        .to_string(),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let args = [
        "--skip-claude-check",
        "--discovery-dir",
        disc.to_str().unwrap(),
    ];
    let (out, report) = doctor(&args, dir.path());
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains(&format!("plugin pid {pid} is not running")) && report.contains("stale"),
        "{report}"
    );
    assert!(
        report.contains(&format!("channel-plugin launch --session-id {sid}")),
        "{report}"
    );
    assert!(!report.contains("s3cr3t"), "doctor printed the secret");
    assert!(file.exists(), "removed without --prune");

    let (out, report) = doctor(&[&args[..], &["--prune"]].concat(), dir.path());
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("stale file removed"), "{report}");
    assert!(!file.exists());
}

#[test]
fn wrong_flags_get_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("debug.txt");
    // What Claude Code logs when the server is configured but the session was
    // started without naming it (gate check 6).
    std::fs::write(
        &log,
        "2026-11-21T20:50:36.146Z [DEBUG] MCP server \"opzero-channel\": Channel notifications skipped: server opzero-channel not in --channels list for this session\n",
    )
    .unwrap();
    let (out, report) = doctor(
        &[
            "--skip-claude-check",
            "--discovery-dir",
            dir.path().join("none").to_str().unwrap(),
            "--debug-file",
            log.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("gate check 6 of 7"), "{report}");
    assert!(
        report.contains("--dangerously-load-development-channels server:opzero-channel"),
        "{report}"
    );
    assert!(report.contains("channel-plugin launch"), "{report}");
}

#[test]
fn every_gate_reason_is_explained() {
    let reasons = [
        ("server did not declare claude/channel capability", "experimental"),
        ("connection negotiated a modern protocol revision with no unsolicited notification path", "-32601"),
        ("channels are not available on third-party providers", "CLAUDE_CODE_USE_BEDROCK"),
        ("channels feature is not currently available", "Log in"),
        ("channels not enabled by org policy (set channelsEnabled: true in managed settings)", "channelsEnabled: true"),
        ("server chan not in --channels list for this session", "--dangerously-load-development-channels server:chan"),
        ("chan is not on the approved channels allowlist (use --dangerously-load-development-channels for local dev)", "--accept-development-channels-warning"),
    ];
    for (i, (reason, fix_word)) in reasons.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("debug.txt");
        std::fs::write(&log, format!("2026-11-21T20:50:36Z [DEBUG] MCP server \"chan\": Channel notifications skipped: {reason}\n")).unwrap();
        let (out, report) = doctor(
            &[
                "--skip-claude-check",
                "--debug-file",
                log.to_str().unwrap(),
                "--name",
                "chan",
            ],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(1), "{report}");
        assert!(
            report.contains(&format!("gate check {} of 7", i + 1)),
            "{report}"
        );
        assert!(
            report.contains("means:") && report.contains(fix_word),
            "{fix_word:?} missing:\n{report}"
        );
    }
}

#[test]
fn nothing_to_check_is_a_problem_not_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = doctor(
        &[
            "--skip-claude-check",
            "--discovery-dir",
            dir.path().to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("no channel sessions found") && report.contains("channel-plugin launch"),
        "{report}"
    );
}

#[test]
fn missing_claude_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("debug.txt");
    std::fs::write(
        &log,
        "x MCP server \"c\": Channel notifications registered\n",
    )
    .unwrap();
    let out = Command::new(plugin_bin())
        .args(["doctor", "--debug-file", log.to_str().unwrap()])
        .env("PATH", dir.path())
        .env("HOME", dir.path())
        .env_remove("CLAUDE_BIN")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("✘ claude: `claude` is not on PATH"),
        "{report}"
    );
}

#[test]
fn a_session_with_nothing_to_read_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let sid = "0b7e2f6a-1c3d-4e5f-8a9b-0c1d2e3f4a5b";
    let args = [
        "--skip-claude-check",
        "--discovery-dir",
        dir.path().to_str().unwrap(),
        "--session-id",
        sid,
    ];
    let (out, report) = doctor(&args, dir.path());
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains(&format!("session {sid}: no discovery file")),
        "{report}"
    );

    // A spawn/ws session: no discovery file, but claude's debug log at the default place.
    let debug = dir.path().join(".claude/debug");
    std::fs::create_dir_all(&debug).unwrap();
    std::fs::write(
        debug.join(format!("{sid}.txt")),
        "2026-11-21T20:55:52.246Z [DEBUG] MCP server \"synthesis\": Channel notifications registered\n",
    )
    .unwrap();
    let (out, report) = doctor(&args, dir.path());
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        report.contains("gate for server \"synthesis\": Channel notifications registered"),
        "{report}"
    );
}
