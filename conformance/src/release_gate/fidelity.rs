//! Fidelity: does `mock-claude`, given the derived profile, treat the probe the way the real
//! client did?
//!
//! The same probe (same answers) is run under `mock-claude run` (interactive entrypoint, the
//! development-channels flag, handshake only) and compared with the real client's
//! `interactive.gate` recording: the frames the probe received (exactly, key order aside), the
//! env names the client added, and the shutdown (signal order; waits within 60 ms). The mock is
//! run as a binary, the way a plugin author runs it; the harness shares only data with it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use super::events::read_events;
use super::record::PROBE_NAME;
use super::report::Check;

/// `<workspace>/target/debug/mock-claude`, honouring `CARGO_TARGET_DIR`.
pub fn default_mock_path() -> PathBuf {
    super::plugin_lane::default_plugin_path().with_file_name("mock-claude")
}

fn received(lines: &[Value]) -> Vec<Value> {
    lines
        .iter()
        .filter(|e| e["ev"] == "recv")
        .map(|e| e["frame"].clone())
        .collect()
}

fn added_env(lines: &[Value], launch: &BTreeSet<String>) -> BTreeSet<String> {
    lines
        .iter()
        .find(|e| e["ev"] == "start")
        .and_then(|e| e["env"].as_object())
        .map(|env| {
            env.keys()
                .filter(|k| !launch.contains(*k))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// (signal, ms since the previous one) and the ms from the last signal to the probe's death.
fn shutdown(lines: &[Value]) -> (Vec<(String, i64)>, Option<i64>) {
    let t = |e: &Value| {
        e["t_ms"]
            .as_f64()
            .or_else(|| e["mono_ms"].as_f64())
            .unwrap_or(0.0) as i64
    };
    let mut sigs = Vec::new();
    let mut last: Option<i64> = None;
    for e in lines.iter().filter(|e| e["ev"] == "signal") {
        let now = t(e);
        sigs.push((
            e["sig"].as_str().unwrap_or("?").to_owned(),
            last.map(|l| now - l).unwrap_or(0),
        ));
        last = Some(now);
    }
    let gone = lines
        .iter()
        .find(|e| e["ev"] == "probe_gone")
        .map(t)
        .zip(last)
        .map(|(g, l)| g - l);
    (sigs, gone)
}

/// Runs the probe under `mock-claude` with `version`'s profile from `fixtures` (a directory with
/// `profiles/` and `schemas/`) and compares with the real `interactive.gate` recording.
pub async fn check(
    mock: &Path,
    fixtures: &Path,
    version: &str,
    probe_exe: &Path,
    real: &[Value],
    work: &Path,
) -> anyhow::Result<Vec<Check>> {
    let lane = "fidelity";
    let root = work.join(format!("{version}-fidelity"));
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    let home = root.join("home");
    let project = root.join("project");
    std::fs::create_dir_all(&home)?;
    std::fs::create_dir_all(&project)?;
    let log = root.join("events.ndjson");
    let plugin_cmd = format!(
        "{} probe --log {} --discover error --caps channel,permission",
        probe_exe.display(),
        log.display()
    );
    let launch: Vec<(&str, String)> = vec![
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("HOME", home.display().to_string()),
        ("MOCK_CLAUDE_FIXTURES", fixtures.display().to_string()),
    ];
    let mut cmd = tokio::process::Command::new(mock);
    cmd.args(["run", "--plugin", &plugin_cmd, "--profile", version])
        .args(["--server-name", PROBE_NAME])
        .args([
            "--dangerously-load-development-channels",
            &format!("server:{PROBE_NAME}"),
        ])
        .args(["--entrypoint", "cli", "--timeout", "0", "--cwd"])
        .arg(&project)
        .current_dir(&project)
        .env_clear()
        .envs(launch.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .context("mock-claude ran over 60 s")?
        .with_context(|| format!("running {}", mock.display()))?;
    std::fs::write(root.join("mock-stdout.txt"), &out.stdout)?;
    std::fs::write(root.join("mock-stderr.txt"), &out.stderr)?;
    // Wait for the probe's death (the watcher logs it) so the shutdown is complete.
    for _ in 0..50 {
        let done = read_events(&log)
            .map(|e| e.iter().any(|x| x["ev"] == "probe_gone"))
            .unwrap_or(false);
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mock_events = read_events(&log).unwrap_or_default();
    let mut checks = Vec::new();
    if mock_events.is_empty() {
        checks.push(Check::new(
            lane,
            "mock-claude starts the probe",
            false,
            format!(
                "no probe events; mock-claude exit {:?}: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
                    .chars()
                    .take(400)
                    .collect::<String>()
            ),
        ));
        return Ok(checks);
    }

    let real_frames = received(real);
    let mock_frames = received(&mock_events);
    let first_diff = real_frames
        .iter()
        .zip(mock_frames.iter())
        .position(|(a, b)| a != b)
        .or_else(|| {
            (real_frames.len() != mock_frames.len())
                .then(|| real_frames.len().min(mock_frames.len()))
        });
    checks.push(Check::new(
        lane,
        "mock-claude sends the real client's frames (discover, initialize, lists)",
        first_diff.is_none(),
        match first_diff {
            None => format!("{} frames identical", real_frames.len()),
            Some(i) => format!(
                "frame {i}: real {} / mock {}",
                real_frames
                    .get(i)
                    .map(Value::to_string)
                    .unwrap_or_else(|| "(none)".into()),
                mock_frames
                    .get(i)
                    .map(Value::to_string)
                    .unwrap_or_else(|| "(none)".into())
            ),
        },
    ));

    let real_launch: BTreeSet<String> = real
        .first()
        .and_then(|h| h["launch_env"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let mock_launch: BTreeSet<String> = launch.iter().map(|(k, _)| k.to_string()).collect();
    let real_env = added_env(real, &real_launch);
    let mock_env = added_env(&mock_events, &mock_launch);
    checks.push(Check::new(
        lane,
        "mock-claude adds the same env names",
        real_env == mock_env,
        if real_env == mock_env {
            real_env.iter().cloned().collect::<Vec<_>>().join(", ")
        } else {
            format!(
                "only real: {:?}; only mock: {:?}",
                real_env.difference(&mock_env).collect::<Vec<_>>(),
                mock_env.difference(&real_env).collect::<Vec<_>>()
            )
        },
    ));

    let (real_sigs, real_gone) = shutdown(real);
    let (mock_sigs, mock_gone) = shutdown(&mock_events);
    let names = |s: &[(String, i64)]| s.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    let close = |a: i64, b: i64| (a - b).abs() <= 60;
    let timing_ok = names(&real_sigs) == names(&mock_sigs)
        && real_sigs
            .iter()
            .zip(&mock_sigs)
            .skip(1)
            .all(|((_, a), (_, b))| close(*a, *b))
        && match (real_gone, mock_gone) {
            (Some(a), Some(b)) => close(a, b),
            _ => false,
        };
    checks.push(Check::new(
        lane,
        "mock-claude shuts the probe down like the client (signals, waits ±60 ms)",
        timing_ok,
        format!("real {real_sigs:?} then death +{real_gone:?} ms; mock {mock_sigs:?} then death +{mock_gone:?} ms"),
    ));
    Ok(checks)
}

/// A fixtures directory for mock-claude holding the schemas and one extra (derived) profile.
pub fn fixtures_with(
    schemas: &Path,
    profile: &Value,
    version: &str,
    dir: &Path,
) -> anyhow::Result<PathBuf> {
    let profiles = dir.join("profiles");
    std::fs::create_dir_all(&profiles)?;
    let target = dir.join("schemas");
    std::fs::create_dir_all(&target)?;
    copy_dir(schemas, &target)?;
    std::fs::write(
        profiles.join(format!("claude-code-{version}.json")),
        serde_json::to_string_pretty(profile)? + "\n",
    )?;
    Ok(dir.to_owned())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&dest)?;
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}
