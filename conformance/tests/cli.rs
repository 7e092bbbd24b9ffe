//! The binary's contract: help that teaches, exit codes 0-4, and one JSON
//! line on stderr whenever the exit code is not 0.

mod common;

use std::process::Command;

use common::*;

fn suite() -> Command {
    Command::new(env!("CARGO_BIN_EXE_channel-conformance"))
}

/// The last stderr line, parsed.
fn verdict(out: &std::process::Output) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("last stderr line is not JSON ({e}): {stderr}"))
}

#[test]
fn help_teaches_with_examples_and_exit_codes() {
    let out = suite().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "EXAMPLES",
        "--trigger",
        "http-discovery:",
        "ws-bridge",
        "EXIT CODES",
        "{dir}",
    ] {
        assert!(text.contains(needle), "--help lacks {needle}:\n{text}");
    }
}

#[test]
fn list_checks_names_every_check_with_its_spec() {
    let out = suite().arg("--list-checks").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for c in channel_conformance::catalogue::CATALOGUE {
        assert!(
            text.contains(c.id) && text.contains(c.spec),
            "{} missing",
            c.id
        );
    }
    assert!(text.contains("requirement sets"));
}

#[test]
fn usage_errors_exit_4_with_a_json_line() {
    for args in [
        vec!["--plugin", "true", "--profile", "9.9.9"],
        vec!["--plugin", "true", "--scenario", "nope"],
        vec!["--plugin", "true", "--trigger", "carrier-pigeon"],
        vec!["--scenario", "handshake"],
    ] {
        let out = suite().args(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(4),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(verdict(&out)["exit"], 4, "{args:?}");
    }
}

#[test]
fn a_command_that_is_not_a_server_exits_3() {
    // Spawns but never speaks MCP.
    let out = suite()
        .args([
            "--plugin",
            "true",
            "--profile",
            "2.1.330",
            "--scenario",
            "handshake",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(verdict(&out)["reason"]
        .as_str()
        .unwrap()
        .contains("handshake"));
    // Cannot even spawn.
    let out = suite()
        .args([
            "--plugin",
            "/nonexistent/plugin-binary",
            "--profile",
            "2.1.330",
            "--scenario",
            "handshake",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(verdict(&out)["reason"].as_str().unwrap().contains("spawn"));
}

#[test]
fn a_failed_required_check_exits_1_and_names_it() {
    let plugin = zoo(Some("no-reply-tool"));
    let out = suite()
        .args([
            "--plugin",
            &plugin,
            "--profile",
            "2.1.330",
            "--scenario",
            "handshake",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = verdict(&out);
    assert_eq!(
        v["failed"],
        serde_json::json!(["handshake.reply-tool@2.1.330"])
    );
}

#[test]
fn baseline_turns_known_failures_green_and_stale_entries_red() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline.json");
    std::fs::write(
        &baseline,
        r#"{"expected_failures":[{"check":"handshake.reply-tool","reason":"no replies yet"}]}"#,
    )
    .unwrap();
    let broken = zoo(Some("no-reply-tool"));
    let args = |plugin: &str| {
        vec![
            "--plugin".to_string(),
            plugin.to_string(),
            "--profile".into(),
            "2.1.330".into(),
            "--scenario".into(),
            "handshake".into(),
            "--baseline".into(),
            baseline.display().to_string(),
        ]
    };
    let out = suite().args(args(&broken)).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The plugin got fixed: the baseline entry is stale.
    let fixed = zoo(None);
    let out = suite().args(args(&fixed)).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = verdict(&out);
    assert_eq!(v["stale_baseline"][0]["check"], "handshake.reply-tool");

    // A baseline naming an unknown check is a usage error.
    std::fs::write(
        &baseline,
        r#"{"expected_failures":[{"check":"handshake.no-such-check"}]}"#,
    )
    .unwrap();
    let out = suite().args(args(&fixed)).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn reports_are_written_and_self_contained() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = zoo(Some("capability-top-level"));
    let out = suite()
        .args([
            "--plugin",
            &plugin,
            "--profile",
            "2.1.330",
            "--scenario",
            "handshake,session",
            "--format",
            "json",
        ])
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("--format json prints the report");
    assert_eq!(stdout["exit"]["code"], 1);
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("<details") && html.contains("handshake.capability-experimental"));
    assert!(
        !html.contains("<script") && !html.contains("<link"),
        "no external resources"
    );
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(
        junit.contains("<failure message=\"declared at the top level"),
        "{junit}"
    );
    let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(
        md.contains("| `handshake.capability-experimental` | ❌ |"),
        "{md}"
    );
    let transcript =
        std::fs::read_to_string(dir.path().join("transcripts/2.1.330/handshake.ndjson")).unwrap();
    for line in transcript.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("NDJSON");
        assert!(v["t_ms"].is_u64() && v["dir"].is_string());
    }
}
