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
    // The bearer secret from the discovery files never reaches a transcript.
    let secrets: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir() && e.file_name() != "out")
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .filter_map(|f| std::fs::read_to_string(f.path()).ok())
        .filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .filter_map(|v| v["secret"].as_str().map(str::to_string))
        .collect();
    let transcripts = out.join("transcripts");
    for version in std::fs::read_dir(&transcripts).unwrap().flatten() {
        for file in std::fs::read_dir(version.path()).unwrap().flatten() {
            let text = std::fs::read_to_string(file.path()).unwrap();
            for s in &secrets {
                assert!(
                    !text.contains(s.as_str()),
                    "secret leaked into {}",
                    file.path().display()
                );
            }
        }
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
