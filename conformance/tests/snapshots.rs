//! insta snapshots: the report.json shape (times redacted) and the golden
//! renderings, cross-checked against mock-claude's renderer.

mod common;

use channel_conformance::scenario::{golden_event, golden_path, GOLDEN_SERVER_NAME};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_json_snapshot() {
    let plugin = zoo(Some("capability-top-level"));
    let report = run(&[
        "--plugin",
        &plugin,
        "--profile",
        "2.1.80",
        "--profile",
        "2.1.330",
        "--scenario",
        "handshake,permission,session",
    ])
    .await;
    insta::assert_json_snapshot!("report_capability_top_level", report, {
        ".plugin_command" => "[zoo --fault capability-top-level]",
        ".started_at" => "[time]",
        ".finished_at" => "[time]",
        ".duration_ms" => "[ms]",
        ".results[].duration_ms" => "[ms]",
        ".results[].excerpt" => "[excerpt]",
    });
}

#[test]
fn golden_renderings() {
    let event = golden_event();
    for profile in mock_claude::Profile::all(fixtures()).unwrap() {
        let rendered = mock_claude::render::render_event(
            &profile.render,
            GOLDEN_SERVER_NAME,
            &event.meta,
            &event.content,
        );
        let path = golden_path(&fixtures(), &profile.version);
        let golden =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            golden.strip_suffix('\n').unwrap_or(&golden),
            rendered,
            "{} disagrees with mock-claude's renderer for Claude Code {}",
            path.display(),
            profile.version
        );
        insta::assert_snapshot!(format!("golden_{}", profile.version), golden);
    }
}
