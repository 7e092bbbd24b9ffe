//! The whole run behind the binary: resolve profiles and scenarios, run,
//! apply the baseline, decide the exit code, write reports. In the library
//! so tests run the suite in-process.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;

use crate::baseline::Baseline;
use crate::catalogue::Scenario;
use crate::cli::Cli;
use crate::report::{Exit, Harness, ProfileRun, Report, Summary};
use crate::runner::{self, Plan};
use crate::scenario::Timeouts;

/// Exit codes (see `--help`).
pub mod exit {
    pub const PASS: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const STALE_BASELINE: u8 = 2;
    pub const HARNESS: u8 = 3;
    pub const USAGE: u8 = 4;
}

/// Why the run stopped before producing a report.
#[derive(Debug)]
pub struct Aborted {
    pub code: u8,
    pub reason: String,
}

impl Aborted {
    fn usage(reason: impl Into<String>) -> Self {
        Aborted {
            code: exit::USAGE,
            reason: reason.into(),
        }
    }
    /// The one JSON line for stderr.
    pub fn json_line(&self) -> String {
        json!({ "exit": self.code, "reason": self.reason }).to_string()
    }
}

/// Resolves `--profile` values against the fixtures.
pub fn resolve_profiles(
    fixtures: &std::path::Path,
    wanted: &[String],
) -> Result<Vec<mock_claude::Profile>, Aborted> {
    let all = mock_claude::Profile::all(fixtures).map_err(|e| Aborted {
        code: exit::HARNESS,
        reason: format!("loading profiles: {e}"),
    })?;
    if all.is_empty() {
        return Err(Aborted {
            code: exit::HARNESS,
            reason: format!("no profiles in {}/profiles", fixtures.display()),
        });
    }
    if wanted.is_empty() || wanted.iter().any(|w| w == "all") {
        return Ok(all);
    }
    let mut picked = Vec::new();
    for w in wanted {
        match all.iter().find(|p| &p.version == w) {
            Some(p) => picked.push(p.clone()),
            None => {
                return Err(Aborted::usage(format!(
                    "unknown profile {w:?} (available: {}, or all)",
                    all.iter()
                        .map(|p| p.version.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        }
    }
    Ok(picked)
}

pub fn resolve_scenarios(wanted: &[String]) -> Result<Vec<Scenario>, Aborted> {
    if wanted.is_empty() {
        return Ok(Scenario::ALL.to_vec());
    }
    let mut out = Vec::new();
    for w in wanted {
        let s = Scenario::parse(w).ok_or_else(|| {
            Aborted::usage(format!(
                "unknown scenario {w:?} (one of: {})",
                Scenario::ALL
                    .iter()
                    .map(|s| s.id())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

/// Runs the suite as the CLI describes; the report carries the exit code.
pub async fn execute(cli: &Cli) -> Result<Report, Aborted> {
    let plugin = cli
        .plugin
        .clone()
        .ok_or_else(|| Aborted::usage("--plugin is required"))?;
    if plugin.trim().is_empty() {
        return Err(Aborted::usage("--plugin is empty"));
    }
    let fixtures: PathBuf = cli
        .fixtures
        .clone()
        .unwrap_or_else(mock_claude::profile::fixtures_dir);
    let profiles = resolve_profiles(&fixtures, &cli.profile)?;
    let scenarios = resolve_scenarios(&cli.scenario)?;
    let baseline = match &cli.baseline {
        Some(path) => Some(Baseline::load(path).map_err(|e| Aborted::usage(e.to_string()))?),
        None => None,
    };
    if let crate::trigger::TriggerSpec::HttpDiscovery { dir } = &cli.trigger {
        std::fs::create_dir_all(dir).map_err(|e| {
            Aborted::usage(format!(
                "cannot create discovery dir {}: {e}",
                dir.display()
            ))
        })?;
    }
    let started_at = now_rfc3339();
    let clock = Instant::now();
    let plan = Plan {
        plugin: plugin.clone(),
        profiles: profiles.clone(),
        scenarios: scenarios.clone(),
        trigger: cli.trigger.clone(),
        fixtures,
        out: cli.out.clone(),
        timeouts: Timeouts {
            event: std::time::Duration::from_secs(cli.event_timeout.max(1)),
            ..Timeouts::default()
        },
        parallelism: cli.parallel,
    };
    let run = runner::run(&plan).await.map_err(|e| Aborted {
        code: exit::HARNESS,
        reason: format!("{e:#}"),
    })?;
    let mut results = run.results;
    let stale = baseline.map(|b| b.apply(&mut results)).unwrap_or_default();
    let summary = Summary::of(&results);

    let failed: Vec<String> = results
        .iter()
        .filter(|r| {
            r.status == crate::outcome::Status::Failure && r.required && !r.expected_failure
        })
        .map(|r| format!("{}@{}", r.id, r.profile))
        .collect();
    let exit = if !run.harness_errors.is_empty() {
        Exit {
            code: exit::HARNESS,
            reason: format!(
                "the harness could not run: {}",
                run.harness_errors.join("; ")
            ),
        }
    } else if run.no_handshake_anywhere {
        Exit {
            code: exit::HARNESS,
            reason: "the plugin never answered the handshake under any profile (is the command an MCP stdio server?)".into(),
        }
    } else if !failed.is_empty() {
        Exit {
            code: exit::FAILED,
            reason: format!(
                "{} required check(s) failed: {}",
                failed.len(),
                failed.join(", ")
            ),
        }
    } else if !stale.is_empty() {
        Exit {
            code: exit::STALE_BASELINE,
            reason: format!(
                "{} stale baseline entr(y/ies): {}",
                stale.len(),
                stale
                    .iter()
                    .map(|s| format!("{} now {}", s.check, s.now))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }
    } else {
        Exit {
            code: exit::PASS,
            reason: "every required check passed".into(),
        }
    };
    let report = Report {
        harness: Harness {
            name: "channel-conformance".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        plugin_command: plugin,
        trigger: cli.trigger.describe(),
        profiles: profiles
            .iter()
            .map(|p| ProfileRun {
                version: p.version.clone(),
                requirement_set: crate::requirements::Version::parse(&p.version)
                    .map(|v| crate::requirements::pinned(v).id.to_string())
                    .unwrap_or_default(),
            })
            .collect(),
        scenarios: scenarios.iter().map(|s| s.id().to_string()).collect(),
        started_at,
        finished_at: now_rfc3339(),
        duration_ms: clock.elapsed().as_millis() as u64,
        results,
        summary,
        stale_baseline: stale
            .iter()
            .map(|s| serde_json::to_value(s).expect("serialisable"))
            .collect(),
        exit,
    };
    if let Some(out) = &cli.out {
        report.write_all(out).map_err(|e| Aborted {
            code: exit::HARNESS,
            reason: format!("writing reports: {e:#}"),
        })?;
    }
    Ok(report)
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
