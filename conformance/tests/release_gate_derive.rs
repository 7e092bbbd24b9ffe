//! Committed recordings → profiles, offline (no Claude Code binary needed).
//!
//! Every release with a committed recording must derive to a schema-valid profile equal to the
//! committed one (modulo provenance and notes). A failure means a committed profile and the
//! real binary's recording disagree: re-derive (`release-gate derive --version V --out
//! fixtures/profiles/claude-code-V.json`) for derived profiles, or fix the hand-written one.

use std::path::{Path, PathBuf};

use channel_conformance::release_gate::{derive, diff, record};
use serde_json::json;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("fixtures")
}

#[test]
fn every_recorded_release_derives_to_its_committed_profile() {
    let fx = fixtures();
    let profiles = derive::committed_profiles(&fx.join("profiles")).unwrap();
    let (_, base) = profiles.iter().next_back().unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(fx.join("recordings")).unwrap() {
        let dir = entry.unwrap().path();
        let Some(version) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        let Ok(v) = derive::Version::parse(&version) else {
            continue; // FINDINGS.md and friends
        };
        let recs = record::read_dir(&dir).unwrap();
        let derived = derive::derive(&version, &recs, base, None).unwrap();
        derive::validate(&derived, &fx.join("schemas/profile.schema.json"))
            .unwrap_or_else(|e| panic!("{version}: {e:#}"));
        let committed = profiles
            .get(&v)
            .unwrap_or_else(|| panic!("{version} is recorded but has no committed profile"));
        let changes = diff::diff(committed, &derived);
        assert!(
            changes.is_empty(),
            "{version}: committed profile disagrees with the recording:\n{}",
            diff::render_text(&version, &version, &changes)
        );
        checked += 1;
    }
    assert!(
        checked >= 2,
        "expected recordings of at least 2 releases, got {checked}"
    );
}

#[test]
fn observed_facts_of_the_first_and_newest_recorded_releases() {
    let fx = fixtures();
    let old = derive::observe(&record::read_dir(&fx.join("recordings/2.1.80")).unwrap()).unwrap();
    assert!(old.discover.is_none(), "2.1.80 sends no server/discover");
    assert_eq!(
        old.client_info,
        Some(json!({"name": "claude-code", "version": "2.1.80"}))
    );
    assert_eq!(old.client_capabilities, Some(json!({"roots": {}})));
    assert!(
        !old.env_print.contains_key("CLAUDECODE"),
        "CLAUDECODE arrives in 2.1.154"
    );

    let new = derive::observe(&record::read_dir(&fx.join("recordings/2.1.330")).unwrap()).unwrap();
    let d = new.discover.expect("2.1.330 probes");
    assert_eq!(d["id"], "server-discover-probe-1");
    let timeout = new.discover_timeout_ms.unwrap();
    assert!(
        (2900..=3300).contains(&timeout),
        "discover timeout {timeout} ms"
    );
    assert_eq!(new.unanswered_probe_remembered, Some(true));
    assert_eq!(new.discover_disabled_by_env, Some(true));
    assert_eq!(new.env_print["CLAUDECODE"], "=1");
    assert_eq!(new.env_print["CLAUDE_CODE_ENTRYPOINT"], "=sdk-cli");
    assert_eq!(new.env_interactive["CLAUDE_CODE_ENTRYPOINT"], "=cli");
    assert_eq!(
        new.env_print["CLAUDE_CODE_MESSAGING_TOKEN"], "opaque",
        "secret values never recorded"
    );
    let (int_term, term_kill) = new.shutdown_ms.unwrap();
    assert!(
        (80..=200).contains(&int_term),
        "SIGINT→SIGTERM {int_term} ms"
    );
    assert!(
        (350..=500).contains(&term_kill),
        "SIGTERM→death {term_kill} ms"
    );
    assert_eq!(
        new.gate_line.as_deref(),
        Some("MCP server \"probe\": Channel notifications skipped: channels feature is not currently available")
    );
    assert_eq!(
        new.era_reason.as_deref(),
        Some("connection negotiated a modern protocol revision with no unsolicited notification path")
    );
}

#[test]
fn committed_recordings_hold_no_secret_values_or_sandbox_paths() {
    let fx = fixtures();
    for entry in walk(&fx.join("recordings")) {
        let text = std::fs::read_to_string(&entry).unwrap();
        for needle in [
            "sk-ant-",
            "/tmp/",
            "/root/",
            "release-gate-offline-fake-key",
        ] {
            assert!(
                !text.contains(needle),
                "{} contains {needle:?}",
                entry.display()
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "ndjson") {
            out.push(p);
        }
    }
    out
}
