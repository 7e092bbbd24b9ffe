//! The real-Claude-Code lane: the whole release gate against the newest release that has a
//! committed profile, with our plugin (HTTP and WebSocket bridges) and mock-claude (fidelity).
//!
//! Explicitly gated: it runs only with `RELEASE_GATE_REAL=1`, which `.ci/run` sets after
//! installing the release (`ci/install-claude-code.sh <VERSION>`). With the variable set, a
//! missing release or plugin binary FAILS the test with the command that fixes it: it never
//! passes without having run. Without the variable it says on stderr that it did not run.
//! Bounded: the gate is killed after 6 minutes (it takes ~30 s here).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use channel_conformance::release_gate::{fidelity, gate, install, plugin_lane};

const GATE: &str = env!("CARGO_BIN_EXE_release-gate");
const LIMIT: Duration = Duration::from_secs(360);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

#[test]
fn real_release_gate_newest_committed_version() {
    if std::env::var("RELEASE_GATE_REAL").as_deref() != Ok("1") {
        eprintln!(
            "release_gate_real: NOT RUN (set RELEASE_GATE_REAL=1 after installing the release; \
             .ci/run does both)"
        );
        return;
    }
    let ws = workspace();
    let profiles = ws.join("fixtures/profiles");
    let version = gate::newest_committed(&profiles).unwrap();
    let root = install::cache_root();
    assert!(
        install::locate(&root, &version).is_some(),
        "Claude Code {version} is not installed; run: {}",
        install::install_command(&root, &version)
    );
    let plugin = plugin_lane::default_plugin_path();
    assert!(
        plugin.is_file(),
        "{} is missing; run: cargo build -p channel-plugin",
        plugin.display()
    );

    let mock = fidelity::default_mock_path();
    assert!(
        mock.is_file(),
        "{} is missing; run: cargo build -p mock-claude",
        mock.display()
    );

    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(GATE)
        .current_dir(&ws)
        .args(["gate", "--version", &version, "--out"])
        .arg(out.path())
        .arg("--work")
        .arg(out.path().join("work"))
        .arg("--plugin")
        .arg(&plugin)
        .arg("--mock")
        .arg(&mock)
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("the release gate for {version} ran over {LIMIT:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("report.json")).expect("report.json written"),
    )
    .unwrap();
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] != true)
        .collect();
    assert!(failed.is_empty(), "failed checks: {failed:#?}");
    let lanes: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["lane"].as_str())
        .collect();
    for lane in [
        "probe",
        "profile",
        "fidelity",
        "plugin-http",
        "plugin-ws",
        "plugin-gate",
    ] {
        assert!(lanes.contains(&lane), "lane {lane} did not run: {lanes:?}");
    }
    assert_eq!(
        report["drift"],
        serde_json::json!([]),
        "Claude Code {version} drifted from its committed profile"
    );
    assert_eq!(status.code(), Some(0), "gate exit status");
}
