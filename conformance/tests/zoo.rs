//! Proves the gate catches what it claims: each deliberately broken zoo
//! plugin fails exactly the checks for its failure class, under the first
//! and the newest Claude Code profile, and everything else passes.

mod common;

use std::collections::BTreeSet;

use channel_conformance::outcome::Status;
use common::*;
use rstest::rstest;

#[rstest]
#[case::correct_zoo(None, &[])]
#[case::capability_top_level(Some("capability-top-level"), &["handshake.capability-experimental", "handshake.gate-registered"])]
#[case::answers_discover(Some("answers-discover"), &["handshake.discover-method-not-found", "handshake.legacy-era", "handshake.gate-registered"])]
#[case::version_2026(Some("version-2026"), &["handshake.protocol-version-accepted"])]
#[case::junk_stdout(Some("junk-stdout"), &["session.stdout-clean"])]
#[case::push_before_initialized(Some("push-before-initialized"), &["push.none-before-lists", "push.none-lost-across-handshake"])]
#[case::non_string_meta(Some("non-string-meta"), &["push.params-valid", "push.none-lost-across-handshake", "push.rendered-turn-golden"])]
#[case::hyphenated_keys(Some("hyphenated-keys"), &["push.params-valid", "push.rendered-turn-golden"])]
#[case::no_reply_tool(Some("no-reply-tool"), &["handshake.reply-tool"])]
#[case::instructions_over_2kb(Some("instructions-over-2kb"), &["handshake.instructions-size"])]
#[case::ignores_sigint(Some("ignores-sigint"), &["shutdown.sigint"])]
#[case::ignores_stdin_eof(Some("ignores-stdin-eof"), &["shutdown.stdin-eof"])]
#[case::crashes_on_malformed_line(Some("crashes-on-malformed-line"), &["robustness.malformed-line-survives"])]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_fails_exactly_its_checks(
    #[case] fault: Option<&str>,
    #[case] expected: &[&str],
) {
    let plugin = zoo(fault);
    let mut args = vec!["--plugin", plugin.as_str(), "--trigger", ZOO_TRIGGER];
    for p in EDGE_PROFILES {
        args.extend(["--profile", p]);
    }
    let report = run(&args).await;
    let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    // Every check is asserted for every case, push.none-lost-across-handshake
    // included: the zoo settles after answering tools/list (as a correct
    // plugin must), so an event held during the handshake survives unless
    // the fault itself loses it.
    let failed = failed_ids(&report);
    assert_eq!(failed, expected, "fault {fault:?}:\n{}", dump(&report));
    if !expected.is_empty() {
        assert_eq!(report.exit.code, 1, "{}", report.exit.reason);
    }
    // Every check ran (or said why not) under both profiles.
    assert_eq!(report.profiles.len(), 2);
    for r in &report.results {
        assert!(
            !r.details.is_empty(),
            "{} under {} has no details",
            r.id,
            r.profile
        );
        if r.status == Status::Failure {
            assert!(
                r.transcript.is_some(),
                "{} failed without a transcript",
                r.id
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_cap_instructions_are_only_recommended_before_2_1_84() {
    let plugin = zoo(Some("instructions-over-2kb"));
    let report = run(&[
        "--plugin",
        &plugin,
        "--scenario",
        "handshake",
        "--profile",
        "2.1.80",
        "--profile",
        "2.1.330",
    ])
    .await;
    let status = |p: &str| {
        report
            .result("handshake.instructions-size", p)
            .map(|r| r.status)
    };
    assert_eq!(status("2.1.80"), Some(Status::Warning), "{}", dump(&report));
    assert_eq!(
        status("2.1.330"),
        Some(Status::Failure),
        "{}",
        dump(&report)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_trigger_delivery_checks_are_skipped_with_the_reason() {
    let plugin = zoo(None);
    let report = run(&[
        "--plugin",
        &plugin,
        "--profile",
        "2.1.330",
        "--scenario",
        "push,reply",
    ])
    .await;
    for id in [
        "push.none-lost-across-handshake",
        "push.rendered-turn-golden",
        "reply.round-trip",
    ] {
        let r = report
            .result(id, "2.1.330")
            .unwrap_or_else(|| panic!("{id} missing"));
        assert_eq!(r.status, Status::Skipped, "{id}: {}", r.details);
        assert!(r.details.contains("--trigger"), "{id}: {}", r.details);
    }
    assert_eq!(report.exit.code, 0, "{}", dump(&report));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_discover_probe_fails_with_its_cost() {
    // The zoo behind a filter that swallows server/discover: the client
    // waits out the probe timeout before falling back.
    let zoo = zoo(None);
    let plugin = format!("grep --line-buffered -v server/discover | {zoo}");
    let report = run(&[
        "--plugin",
        &plugin,
        "--profile",
        "2.1.330",
        "--scenario",
        "handshake",
    ])
    .await;
    let r = report
        .result("handshake.discover-method-not-found", "2.1.330")
        .unwrap();
    assert_eq!(r.status, Status::Failure, "{}", dump(&report));
    assert!(
        r.details.contains("unanswered") && r.details.contains(" ms"),
        "{}",
        r.details
    );
    // The fallback itself works: the rest of the handshake passes.
    let failed = failed_ids(&report);
    assert_eq!(failed.len(), 1, "{}", dump(&report));
}
