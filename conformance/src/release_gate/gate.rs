//! The whole gate for one release: record, check, derive, diff, run our plugin, report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde_json::Value;

use super::derive::{self, Version};
use super::diff;
use super::install::Claude;
use super::plugin_lane;
use super::record;
use super::report::{Check, Report, ScenarioRun};

/// Options of one gate run.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// The `release-gate` binary (it is also the probe).
    pub probe_exe: PathBuf,
    /// Where reports, recordings and the derived profile go (`<out>/…`).
    pub out: PathBuf,
    /// Scratch sandboxes.
    pub work: PathBuf,
    /// Committed profiles and their schema.
    pub profiles: PathBuf,
    pub schema: PathBuf,
    /// `channel-plugin` binary; `None` skips the plugin lanes (reported as skipped).
    pub plugin: Option<PathBuf>,
    /// `mock-claude` binary; `None` skips the fidelity lane (reported as skipped).
    pub mock: Option<PathBuf>,
}

fn reason_of(lines: &[Value], server: &str) -> Option<String> {
    let needle = format!("MCP server \"{server}\": Channel notifications skipped: ");
    lines
        .iter()
        .filter(|e| e["ev"] == "debug")
        .filter_map(|e| e["line"].as_str())
        .find_map(|l| l.split_once(&needle).map(|(_, r)| r.to_owned()))
}

fn gate_reason(profile: &Value, check: &str) -> String {
    profile["gate"]["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["check"] == check)
        .and_then(|c| c["reason"].as_str())
        .unwrap_or("")
        .to_owned()
}

/// Statements about the client checked on the probe recordings.
pub fn probe_checks(recs: &BTreeMap<String, Vec<Value>>, profile: &Value) -> Vec<Check> {
    let lane = "probe";
    let mut out = Vec::new();
    let methods = |name: &str| -> Vec<String> {
        recs.get(name)
            .into_iter()
            .flatten()
            .filter(|e| e["ev"] == "recv")
            .filter_map(|e| e["frame"]["method"].as_str().map(str::to_owned))
            .collect()
    };
    let print = methods("print.discover-error");
    out.push(Check::new(
        lane,
        "-32601 to server/discover keeps the classic handshake",
        print.iter().any(|m| m == "initialize") && print.iter().any(|m| m == "tools/call"),
        format!("methods: {}", print.join(", ")),
    ));
    let call = recs
        .get("print.discover-error")
        .into_iter()
        .flatten()
        .find(|e| e["ev"] == "recv" && e["frame"]["method"] == "tools/call")
        .map(|e| e["frame"].clone());
    let shape_ok = call.as_ref().is_some_and(|c| {
        c["params"]["name"] == "reply"
            && c["params"]["_meta"]["claudecode/toolUseId"]
                .as_str()
                .is_some_and(|s| s.starts_with("toolu_"))
            && c["params"]["_meta"]["progressToken"] == c["id"]
    });
    out.push(Check::new(
        lane,
        "tools/call carries claudecode/toolUseId and progressToken = id",
        shape_ok,
        call.map(|c| c["params"]["_meta"].to_string())
            .unwrap_or_else(|| "no tools/call recorded".into()),
    ));
    let feature = gate_reason(profile, "feature");
    let gate = recs
        .get("interactive.gate")
        .and_then(|l| reason_of(l, record::PROBE_NAME));
    out.push(Check::new(
        lane,
        "gate position: availability check (checks 1-3 pass)",
        gate.as_deref() == Some(feature.as_str()),
        gate.unwrap_or_else(|| "no gate line".into()),
    ));
    let cap = gate_reason(profile, "capability");
    let top = recs
        .get("interactive.gate-toplevel-capability")
        .and_then(|l| reason_of(l, record::PROBE_NAME));
    out.push(Check::new(
        lane,
        "negative control: top-level claude/channel fails the capability check",
        top.as_deref() == Some(cap.as_str()),
        top.unwrap_or_else(|| "no gate line".into()),
    ));
    let discover_sent = methods("interactive.gate-discover-result")
        .iter()
        .any(|m| m == "server/discover");
    let modern = recs
        .get("interactive.gate-discover-result")
        .and_then(|l| reason_of(l, record::PROBE_NAME));
    let era = gate_reason(profile, "era");
    out.push(if discover_sent {
        Check::new(
            lane,
            "negative control: a discover result fails the era check",
            modern.as_deref() == Some(era.as_str()),
            modern.unwrap_or_else(|| "no gate line".into()),
        )
    } else {
        Check::new(
            lane,
            "no discover probe in this release: a discover answer cannot change the era",
            modern.as_deref() == Some(feature.as_str()),
            modern.unwrap_or_else(|| "no gate line".into()),
        )
    });
    out
}

/// Runs the gate for `claude`; the report is also written to `<out>/report.{json,md}`.
pub async fn run(claude: &Claude, opts: &GateOptions) -> anyhow::Result<Report> {
    let started = Instant::now();
    let started_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let rec_dir = opts.out.join("recordings").join(&claude.version);
    let mut scenarios = Vec::new();
    let mut skipped = Vec::new();
    for sc in record::scenarios() {
        let t = Instant::now();
        let run = record::run_scenario(claude, &opts.probe_exe, &sc, &opts.work).await?;
        let lines = record::normalise(claude, sc.name, &run, &opts.probe_exe);
        record::write_ndjson(&rec_dir.join(format!("{}.ndjson", sc.name)), &lines)?;
        scenarios.push(ScenarioRun {
            name: sc.name.into(),
            exit_code: run.exit_code,
            timed_out: run.timed_out,
            seconds: t.elapsed().as_secs_f64(),
            lines: lines.len(),
        });
        tracing::info!(scenario = sc.name, "recorded");
    }
    let recs = record::read_dir(&rec_dir)?;

    // Derive and compare.
    let committed = derive::committed_profiles(&opts.profiles)?;
    let (_, base) = committed
        .iter()
        .next_back()
        .context("no committed profile to derive from")?;
    let profile = derive::derive(
        &claude.version,
        &recs,
        base,
        Some(derive::binary_identity(claude)),
    )?;
    let mut checks = Vec::new();
    checks.push(match derive::validate(&profile, &opts.schema) {
        Ok(()) => Check::new(
            "profile",
            "derived profile matches the schema",
            true,
            "valid",
        ),
        Err(e) => Check::new(
            "profile",
            "derived profile matches the schema",
            false,
            format!("{e:#}"),
        ),
    });
    let derived_path = opts
        .out
        .join(format!("claude-code-{}.json", claude.version));
    std::fs::write(
        &derived_path,
        serde_json::to_string_pretty(&profile)? + "\n",
    )?;
    let version = Version::parse(&claude.version)?;
    let against = committed
        .get_key_value(&version)
        .or_else(|| committed.range(..version).next_back())
        .or_else(|| committed.iter().next_back());
    let (compared_with, drift) = match against {
        Some((v, old)) => (Some(v.to_string()), diff::diff(old, &profile)),
        None => (None, vec![]),
    };

    checks.extend(probe_checks(&recs, &profile));

    match &opts.mock {
        Some(mock) if mock.is_file() => {
            let schemas = opts
                .schema
                .parent()
                .context("the schema path has no directory")?;
            let fixtures = super::fidelity::fixtures_with(
                schemas,
                &profile,
                &claude.version,
                &opts.out.join("mock-fixtures"),
            )?;
            let real = recs
                .get("interactive.gate")
                .context("interactive.gate recording missing")?;
            checks.extend(
                super::fidelity::check(
                    mock,
                    &fixtures,
                    &claude.version,
                    &opts.probe_exe,
                    real,
                    &opts.work,
                )
                .await?,
            );
        }
        Some(mock) => checks.push(Check::new(
            "fidelity",
            "mock-claude binary present",
            false,
            format!(
                "{} does not exist (build it: cargo build -p mock-claude)",
                mock.display()
            ),
        )),
        None => skipped.push("fidelity lane: no --mock given".into()),
    }

    match &opts.plugin {
        Some(plugin) if plugin.is_file() => {
            checks.extend(plugin_lane::http_lane(claude, plugin, &opts.work).await?);
            checks.extend(plugin_lane::ws_lane(claude, plugin, &opts.work).await?);
            let feature = gate_reason(&profile, "feature");
            checks.extend(plugin_lane::gate_lane(claude, plugin, &opts.work, &feature).await?);
        }
        Some(plugin) => {
            let msg = format!(
                "plugin lanes: {} does not exist (build it: cargo build -p channel-plugin)",
                plugin.display()
            );
            checks.push(Check::new(
                "plugin-http",
                "plugin binary present",
                false,
                msg,
            ));
        }
        None => skipped.push("plugin lanes: no --plugin given".into()),
    }

    let verdict = Report::verdict_of(&checks, &drift);
    let report = Report {
        version: claude.version.clone(),
        client_kind: claude.kind.into(),
        started_at,
        seconds: started.elapsed().as_secs_f64(),
        verdict,
        scenarios,
        checks,
        compared_with,
        drift,
        derived_profile: Some(derived_path.display().to_string()),
        skipped,
    };
    report.write(&opts.out)?;
    Ok(report)
}

/// The newest committed profile's version (what `.ci/run` gates on).
pub fn newest_committed(profiles: &Path) -> anyhow::Result<String> {
    derive::committed_profiles(profiles)?
        .keys()
        .next_back()
        .map(|v| v.to_string())
        .context("no committed profiles")
}
