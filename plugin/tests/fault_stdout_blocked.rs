//! Claude Code stops reading the plugin's stdout (a hung client, a full
//! pipe). The plugin must push back instead of growing or dropping:
//! `/inject` answers 503 with `Retry-After`, memory (VmRSS) stays bounded,
//! and once the client reads again every accepted event arrives, in order.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::http::HttpPlugin;

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status")
}

#[tokio::test]
async fn blocked_stdout_gives_503_with_retry_after_bounded_memory_and_loses_nothing() {
    let mut plugin = HttpPlugin::start(&[]).await;
    plugin.mcp.handshake().await;
    let pid = plugin.mcp.pid();
    let content = "x".repeat(1024);
    // Warm up (allocator, connection pool), then take the baseline.
    for i in 0..20 {
        plugin
            .inject_ok(json!({"content": format!("warm {i}")}))
            .await;
        plugin
            .mcp
            .expect_notification("notifications/claude/channel")
            .await;
    }
    let baseline = vm_rss_kib(pid);

    // From here on the test does not read the plugin's stdout.
    let start = Instant::now();
    let mut accepted = 0u64;
    let first_503 = loop {
        let response = plugin
            .inject(json!({"content": content, "chat_id": format!("n{accepted}")}))
            .await;
        match response.status().as_u16() {
            202 => accepted += 1,
            503 => break response,
            other => panic!("unexpected {other}: {}", response.text().await.unwrap()),
        }
        assert!(accepted < 1_000_000, "never pushed back");
    };
    let retry_after = first_503
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body: serde_json::Value = first_503.json().await.unwrap();
    assert!(
        retry_after
            .as_deref()
            .is_some_and(|v| v.parse::<u64>().is_ok()),
        "503 without a Retry-After in seconds"
    );
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("full")),
        "{body}"
    );
    let at_first_503 = vm_rss_kib(pid);

    // Keep pushing: every one refused, memory flat.
    for _ in 0..2000 {
        let response = plugin.inject(json!({"content": content})).await;
        assert_eq!(response.status(), 503);
        assert!(response.headers().contains_key("retry-after"));
    }
    let after_refusals = vm_rss_kib(pid);
    println!(
        "FAULT-FIGURE stdout-blocked accepted_before_503={accepted} rss_baseline_kib={baseline} rss_at_first_503_kib={at_first_503} \
         rss_after_2000_refusals_kib={after_refusals} retry_after={} elapsed_ms={}",
        retry_after.unwrap(),
        start.elapsed().as_millis()
    );
    assert!(
        after_refusals < at_first_503 + 16 * 1024,
        "memory grew by {} KiB while every inject was refused",
        after_refusals.saturating_sub(at_first_503)
    );
    // 1 KiB events: the queue cap (in events) bounds growth to a few MiB.
    assert!(
        at_first_503 < baseline + 64 * 1024,
        "{} KiB of growth before pushing back",
        at_first_503 - baseline
    );

    // The client reads again: every accepted event, in order, then 202 again.
    for i in 0..accepted {
        let n = plugin
            .mcp
            .expect_notification("notifications/claude/channel")
            .await;
        assert_eq!(
            n["params"]["meta"]["chat_id"],
            format!("n{i}"),
            "lost or reordered at {i}"
        );
    }
    let deadline = Instant::now() + support::TIMEOUT;
    loop {
        let response = plugin.inject(json!({"content": "after"})).await;
        if response.status() == 202 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still refusing after the client caught up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let n = plugin
        .mcp
        .expect_notification("notifications/claude/channel")
        .await;
    assert_eq!(n["params"]["content"], "after");
}

/// Large events: the backlog must be bounded in bytes, not only in events
/// (4096 events of up to 1 MiB would be 4 GiB). This test injects 256 KiB
/// events into a blocked stdout and expects the plugin to push back before
/// holding 64 MiB (the core caps the backlog at 32 MiB). It stops on its own
/// once 160 MiB are held, so a failure costs the machine little. (Found by
/// this suite: the first version of the core capped events only.)
#[tokio::test]
async fn blocked_stdout_memory_is_bounded_in_bytes_for_large_events() {
    let mut plugin = HttpPlugin::start(&[]).await;
    plugin.mcp.handshake().await;
    let pid = plugin.mcp.pid();
    plugin.inject_ok(json!({"content": "warm"})).await;
    plugin
        .mcp
        .expect_notification("notifications/claude/channel")
        .await;
    let baseline = vm_rss_kib(pid);
    let content = "y".repeat(256 * 1024);
    let mut accepted = 0u64;
    let mut grown = 0;
    let pushed_back = loop {
        let response = plugin.inject(json!({"content": content})).await;
        match response.status().as_u16() {
            202 => accepted += 1,
            503 => break true,
            other => panic!("unexpected {other}"),
        }
        grown = vm_rss_kib(pid).saturating_sub(baseline);
        if grown > 160 * 1024 {
            break false;
        }
    };
    println!(
        "FAULT-FIGURE stdout-blocked-large-events event_kib=256 accepted={accepted} rss_growth_kib={grown} pushed_back={pushed_back}"
    );
    assert!(
        pushed_back && grown < 64 * 1024,
        "no push-back after {accepted} events of 256 KiB ({grown} KiB held): the stdout queue needs a byte cap"
    );
}
