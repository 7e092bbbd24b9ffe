//! `channel-plugin launch`: the claude command it builds, its checks, and a
//! real Claude Code session reaching the channel gate offline.

#[path = "launch_support.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use support::*;

/// A stand-in `claude` that only answers `--version` (for argument-building
/// tests that must run without the real binary).
fn version_only_claude(dir: &std::path::Path, version: &str) -> std::path::PathBuf {
    script(
        &dir.join("claude"),
        &format!("#!/bin/sh\n[ \"$1\" = --version ] && echo '{version} (Claude Code)' && exit 0\necho unexpected >&2; exit 9\n"),
    )
}

#[test]
fn print_command_builds_the_dev_channel_invocation() {
    let dir = tempfile::tempdir().unwrap();
    let claude = version_only_claude(dir.path(), "2.1.330");
    let sid = "8c0c3a5e-3d7e-4f55-9a8e-1f7f2b3c4d5e";
    let out = Command::new(plugin_bin())
        .env("HOME", dir.path())
        .args(["launch", "--print-command", "--claude"])
        .arg(&claude)
        .args(["--cwd"])
        .arg(dir.path())
        .args([
            "--session-id",
            sid,
            "--model",
            "claude-opus-4-5",
            "--discovery-dir",
        ])
        .arg(dir.path().join("disc"))
        .args(["--", "--permission-mode", "acceptEdits"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        format!("--session-id {sid}"),
        "--dangerously-load-development-channels server:opzero-channel".to_owned(),
        "--model claude-opus-4-5".to_owned(),
        format!("--debug-file {}/.claude/debug/{sid}.txt", dir.path().canonicalize().unwrap().display()),
        "--permission-mode acceptEdits".to_owned(),
        format!("\"command\":\"{}\"", plugin_bin().canonicalize().unwrap().display()),
        format!("\"args\":[\"http\",\"--session-id\",\"{sid}\",\"--name\",\"opzero-channel\",\"--discovery-dir\""),
    ] {
        assert!(stdout.contains(&needle), "missing {needle:?} in {stdout}");
    }
    // Passthrough comes last, after our own flags.
    assert!(
        stdout.trim_end().ends_with("--permission-mode acceptEdits"),
        "{stdout}"
    );
}

#[test]
fn ws_bridge_needs_its_url_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let claude = version_only_claude(dir.path(), "2.1.330");
    let out = Command::new(plugin_bin())
        .env_remove("SYNTHESIS_WS_URL")
        .env("HOME", dir.path())
        .args(["launch", "--print-command", "--bridge", "ws", "--claude"])
        .arg(&claude)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--url") && stderr.contains("SYNTHESIS_WS_URL"),
        "{stderr}"
    );

    let out = Command::new(plugin_bin())
        .env("HOME", dir.path())
        .args(["launch", "--print-command", "--bridge", "ws", "--claude"])
        .arg(&claude)
        .args([
            "--url",
            "ws://127.0.0.1:9/bridge",
            "--openclaw-session",
            "dev::x",
            "--session-id",
        ])
        .arg("0b7e2f6a-1c3d-4e5f-8a9b-0c1d2e3f4a5b")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(r#""args":["ws","--url","ws://127.0.0.1:9/bridge","--openclaw-session","dev::x","--claude-session","0b7e2f6a-1c3d-4e5f-8a9b-0c1d2e3f4a5b"]"#), "{stdout}");
    assert!(stdout.contains("server:synthesis"), "{stdout}");
}

#[test]
fn refuses_claude_older_than_channels() {
    let dir = tempfile::tempdir().unwrap();
    let claude = version_only_claude(dir.path(), "2.1.79");
    let out = Command::new(plugin_bin())
        .args(["launch", "--print-command", "--claude"])
        .arg(&claude)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("2.1.79") && stderr.contains("2.1.80"),
        "{stderr}"
    );
}

#[test]
fn missing_claude_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(plugin_bin())
        .env("PATH", dir.path())
        .env_remove("CLAUDE_BIN")
        .args(["launch", "--print-command"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not on PATH")
            && stderr.contains("npm install -g @anthropic-ai/claude-code"),
        "{stderr}"
    );
}

#[test]
fn launch_under_a_pty_reaches_the_availability_gate() {
    let Some(claude) = real_claude("launch_under_a_pty_reaches_the_availability_gate") else {
        return;
    };
    launch_reaches_the_gate(&claude, true);
}

/// The oldest release with channels (`ci/setup.sh` installs it next to the
/// newest one). Missing → a failure with the install command, unless
/// `CHANNEL_SKIP_REAL_CLAUDE=1` (then a loud skip), like every real-binary test.
#[test]
fn launch_reaches_the_gate_on_the_first_channels_release() {
    let claude = std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
        .join(".cache/claude-code/2.1.80/node_modules/.bin/claude");
    if !claude.is_file() {
        if std::env::var("CHANNEL_SKIP_REAL_CLAUDE").as_deref() == Ok("1") {
            eprintln!(
                "\n!!!!!!!! SKIPPED launch_reaches_the_gate_on_the_first_channels_release: {} not installed (CHANNEL_SKIP_REAL_CLAUDE=1) !!!!!!!!\n",
                claude.display()
            );
            return;
        }
        panic!(
            "{} not installed: run `bash ci/install-claude-code.sh 2.1.80` \
             (or set CHANNEL_SKIP_REAL_CLAUDE=1 to skip the real-binary tests)",
            claude.display()
        );
    }
    launch_reaches_the_gate(&claude, false);
}

/// `reports_era`: releases from 2.1.250 log the negotiated protocol era.
fn launch_reaches_the_gate(claude: &std::path::Path, reports_era: bool) {
    let home = OfflineHome::new();
    let sid = uuid::Uuid::new_v4().to_string();
    let disc = home.path("channels");
    let mut cmd = Command::new("timeout");
    cmd.args(["--foreground", "120"])
        .arg(plugin_bin())
        .args(["launch", "--claude"])
        .arg(claude)
        .arg("--cwd")
        .arg(&home.project)
        .args(["--session-id", &sid, "--discovery-dir"])
        .arg(&disc);
    home.apply(&mut cmd);
    let mut run = PtyRun::start(&mut cmd);
    let debug_log = home.home().join(format!(".claude/debug/{sid}.txt"));

    let gate = wait_for_line(
        &debug_log,
        &availability_gate_line("opzero-channel"),
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}\nscreen:\n{}", run.screen()));
    // Capability (check 1) and era (check 2) were accepted: the legacy handshake ran.
    let connected = wait_for_line(
        &debug_log,
        "MCP server \"opzero-channel\": Connection established",
        Duration::from_secs(5),
    )
    .unwrap();
    // Releases before the era existed (2.1.80) do not report one.
    assert!(
        connected.contains(r#""protocolEra":"legacy""#)
            || (!reports_era && !connected.contains("protocolEra")),
        "{connected}"
    );
    eprintln!("observed gate line: {gate}");

    // The plugin got the session id: its discovery file is named after it.
    let discovery = disc.join(format!("{sid}.json"));
    assert!(
        wait_until(Duration::from_secs(15), || discovery.is_file()),
        "no {}",
        discovery.display()
    );

    // doctor, against the live session, explains the gate.
    let mut doctor = Command::new(plugin_bin());
    doctor
        .args(["doctor", "--claude"])
        .arg(claude)
        .arg("--discovery-dir")
        .arg(&disc);
    home.apply(&mut doctor);
    let out = doctor.output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains(&format!("session {sid}: plugin pid")) && report.contains("is running"),
        "{report}"
    );
    assert!(report.contains("/status ok"), "{report}");
    assert!(report.contains("gate check 4 of 7"), "{report}");
    assert!(report.contains("Anthropic's availability gate"), "{report}");

    run.stop();
    assert!(group_gone(run.pgid));
}

/// Claude Code refuses `--session-id` for an id it already has a transcript for
/// ("Error: Session ID … is already in use."): launch resumes it instead.
#[test]
fn an_existing_session_is_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let claude = version_only_claude(dir.path(), "2.1.330");
    let sid = "0b7e2f6a-1c3d-4e5f-8a9b-0c1d2e3f4a5b";
    let projects = dir.path().join(".claude/projects/-srv-app");
    std::fs::create_dir_all(&projects).unwrap();
    std::fs::write(projects.join(format!("{sid}.jsonl")), "{}\n").unwrap();
    let out = Command::new(plugin_bin())
        .env("HOME", dir.path())
        .args(["launch", "--print-command", "--claude"])
        .arg(&claude)
        .args(["--session-id", sid])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("--resume {sid}")), "{stdout}");
    assert!(!stdout.contains("--session-id 0b7e"), "{stdout}");
    // The plugin still gets the session id for its discovery file.
    assert!(
        stdout.contains(&format!("\"--session-id\",\"{sid}\"")),
        "{stdout}"
    );
}
