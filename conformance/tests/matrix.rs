//! rstest over profiles × scenarios: the correct zoo plugin, one scenario
//! under one profile at a time, produces a result for every check of the
//! scenario and no failure.

mod common;

use channel_conformance::catalogue::{self, Scenario};
use channel_conformance::outcome::Status;
use common::*;
use rstest::rstest;

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_under_profile(
    #[values("2.1.80", "2.1.154", "2.1.330")] profile: &str,
    #[values("handshake", "push", "permission", "robustness", "shutdown")] scenario: &str,
) {
    let plugin = zoo(None);
    let report = run(&[
        "--plugin",
        &plugin,
        "--trigger",
        ZOO_TRIGGER,
        "--profile",
        profile,
        "--scenario",
        scenario,
    ])
    .await;
    let s = Scenario::parse(scenario).unwrap();
    for check in catalogue::of_scenario(s) {
        let r = report
            .result(check.id, profile)
            .unwrap_or_else(|| panic!("{} has no result under {profile}", check.id));
        let racy = check.id == "push.none-lost-across-handshake"; // see tests/zoo.rs
        assert!(
            r.status != Status::Failure || racy,
            "{}: {}\n{}",
            check.id,
            r.details,
            dump(&report)
        );
    }
    assert_eq!(
        report.results.len(),
        catalogue::of_scenario(s).count(),
        "only the selected scenario ran"
    );
}
