//! Shared helpers for the conformance integration tests: run the suite
//! in-process (the same code path as the binary) and summarise results.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use channel_conformance::app;
use channel_conformance::cli::Cli;
use channel_conformance::outcome::Status;
use channel_conformance::report::Report;
use clap::Parser;

/// The two ends of the supported range: the first channels release and the newest.
pub const EDGE_PROFILES: [&str; 2] = ["2.1.80", "2.1.330"];

/// Appends the event (one JSON line) to the zoo's trigger file in the session dir.
pub const ZOO_TRIGGER: &str = "command:printf '%s\\n' {json} >> {dir}/trigger";

pub fn fixtures() -> PathBuf {
    mock_claude::fixtures_dir()
}

/// The zoo plugin command, with an optional fault.
pub fn zoo(fault: Option<&str>) -> String {
    let script = fixtures().join("zoo").join("zoo_plugin.py");
    let fault = fault.map(|f| format!(" --fault {f}")).unwrap_or_default();
    format!(
        "python3 {}{fault} --trigger-file {{dir}}/trigger",
        script.display()
    )
}

/// `<workspace>/target/debug/<bin>` (or `$CARGO_TARGET_DIR/debug/<bin>`).
pub fn workspace_bin(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        });
    target.join("debug").join(name)
}

/// Runs the suite with these CLI arguments (without the program name).
pub async fn run(args: &[&str]) -> Report {
    let mut argv = vec!["channel-conformance"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).expect("valid arguments");
    match app::execute(&cli).await {
        Ok(report) => report,
        Err(aborted) => panic!(
            "the suite aborted: exit {} {}",
            aborted.code, aborted.reason
        ),
    }
}

/// Ids with a FAILURE status under any profile.
pub fn failed_ids(report: &Report) -> BTreeSet<String> {
    report
        .results
        .iter()
        .filter(|r| r.status == Status::Failure)
        .map(|r| r.id.clone())
        .collect()
}

/// A readable dump of everything not SUCCESS, for assertion messages.
pub fn dump(report: &Report) -> String {
    report
        .results
        .iter()
        .filter(|r| r.status != Status::Success)
        .map(|r| {
            format!(
                "{:<8} {:<42} {:?}: {}",
                r.profile, r.id, r.status, r.details
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
