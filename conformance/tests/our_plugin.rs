//! Our own plugin (`channel-plugin http` and `channel-plugin ws`) passes
//! every required check under every profile. Needs the plugin binary
//! (`cargo build --workspace --bins` first, as CI does).

mod common;

use channel_conformance::outcome::Status;
use common::*;

fn plugin_bin() -> String {
    let bin = workspace_bin("channel-plugin");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the tests",
        bin.display()
    );
    bin.display().to_string()
}

/// Skips we accept: features a profile does not have.
fn acceptable_skip(id: &str, details: &str) -> bool {
    (id == "handshake.discover-method-not-found"
        && details.contains("does not send server/discover"))
        || (id.starts_with("permission.") && details.contains("has no permission relay"))
}

fn assert_all_pass(report: &channel_conformance::report::Report) {
    let bad: Vec<_> = report
        .results
        .iter()
        .filter(|r| match r.status {
            Status::Success => false,
            Status::Skipped => !acceptable_skip(&r.id, &r.details),
            Status::Failure | Status::Warning => true,
        })
        .collect();
    assert!(bad.is_empty(), "not everything passed:\n{}", dump(report));
    assert_eq!(report.exit.code, 0, "{}", report.exit.reason);
    let all = mock_claude::Profile::all(fixtures()).unwrap();
    assert_eq!(report.profiles.len(), all.len(), "every profile ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_plugin_http_passes_everything_under_every_profile() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = format!(
        "{} http --permission-relay --discovery-dir {{dir}}",
        plugin_bin()
    );
    let trigger = format!("http-discovery:{}", dir.path().display());
    let out = dir.path().join("out");
    let report = run(&[
        "--plugin",
        &plugin,
        "--trigger",
        &trigger,
        "--out",
        out.to_str().unwrap(),
    ])
    .await;
    assert_all_pass(&report);
    // The permission relay really ran under a profile that has it.
    let r = report.result("permission.round-trip", "2.1.330").unwrap();
    assert_eq!(r.status, Status::Success, "{}", r.details);
    for f in [
        "report.json",
        "junit.xml",
        "summary.md",
        "report.html",
        "transcripts/2.1.330/push.ndjson",
    ] {
        assert!(out.join(f).exists(), "{f} not written");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_secrets_never_reach_transcripts() {
    // A wrapper that prints the discovery file (bearer secret included) to
    // stderr, as a careless plugin might: the transcript must redact it.
    let dir = tempfile::tempdir().unwrap();
    let plugin = format!(
        "sh -c '(i=0; while [ $i -lt 500 ]; do cat {{dir}}/*.json >&2 2>/dev/null && break; i=$((i+1)); sleep 0.01; done) & exec {} http --discovery-dir {{dir}}'",
        plugin_bin()
    );
    let trigger = format!("http-discovery:{}", dir.path().display());
    let out = dir.path().join("out");
    let report = run(&[
        "--plugin",
        &plugin,
        "--trigger",
        &trigger,
        "--profile",
        "2.1.330",
        "--scenario",
        "push",
        "--out",
        out.to_str().unwrap(),
    ])
    .await;
    assert_eq!(report.exit.code, 0, "{}", dump(&report));
    let transcript = std::fs::read_to_string(out.join("transcripts/2.1.330/push.ndjson")).unwrap();
    let secret_lines: Vec<&str> = transcript
        .lines()
        .filter(|l| l.contains("\\\"secret\\\""))
        .collect();
    assert!(
        !secret_lines.is_empty(),
        "the wrapper's discovery dump is not in the transcript:\n{transcript}"
    );
    for line in secret_lines {
        assert!(line.contains("[REDACTED]"), "secret not redacted: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_plugin_ws_passes_everything_under_every_profile() {
    let plugin = format!("{} ws --permission-relay", plugin_bin());
    let report = run(&["--plugin", &plugin, "--trigger", "ws-bridge"]).await;
    assert_all_pass(&report);
    let r = report.result("reply.round-trip", "2.1.330").unwrap();
    assert_eq!(r.status, Status::Success, "{}", r.details);
}
