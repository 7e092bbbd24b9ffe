//! Runs the selected scenarios under the selected profiles (in parallel,
//! bounded), applies requirement sets, writes transcripts, and returns the
//! report rows.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Semaphore;

use crate::catalogue::{self, Scenario};
use crate::outcome::{CheckResult, Finding, Status};
use crate::requirements::{self, Version};
use crate::scenario::{self, Ctx, ScenarioOutcome, Timeouts};
use crate::trigger::TriggerSpec;

/// Shutdown sessions running at once (see [`run`]).
pub const SHUTDOWN_PARALLELISM: usize = 2;

/// What to run.
#[derive(Clone)]
pub struct Plan {
    pub plugin: String,
    pub profiles: Vec<mock_claude::Profile>,
    pub scenarios: Vec<Scenario>,
    pub trigger: TriggerSpec,
    pub fixtures: PathBuf,
    /// Where transcripts go (`<out>/transcripts/<version>/<session>.ndjson`).
    pub out: Option<PathBuf>,
    pub timeouts: Timeouts,
    /// Sessions running at once.
    pub parallelism: usize,
}

/// The rows plus what the exit code needs.
pub struct RunResult {
    pub results: Vec<CheckResult>,
    /// Harness failures (spawn, trigger setup), one line each.
    pub harness_errors: Vec<String>,
    /// The plugin produced no handshake under any profile.
    pub no_handshake_anywhere: bool,
}

pub async fn run(plan: &Plan) -> anyhow::Result<RunResult> {
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let mut ctxs = Vec::new();
    for profile in &plan.profiles {
        let version = Version::parse(&profile.version).with_context(|| {
            format!(
                "profile version {:?} is not MAJOR.MINOR.PATCH",
                profile.version
            )
        })?;
        ctxs.push(Ctx {
            profile: profile.clone(),
            version,
            plugin: plan.plugin.clone(),
            trigger: plan.trigger.clone(),
            fixtures: plan.fixtures.clone(),
            timeouts: plan.timeouts,
            run_id: run_id.clone(),
        });
    }
    // Two phases. Timing-sensitive shutdown sessions run last and with at
    // most SHUTDOWN_PARALLELISM at once, so fewer plugins compete for the CPU
    // while the client counts the 100 ms after SIGINT.
    let mut outcomes = Vec::new();
    let phases: [(Vec<Scenario>, usize); 2] = [
        (
            plan.scenarios
                .iter()
                .copied()
                .filter(|s| !matches!(s, Scenario::Session | Scenario::Shutdown))
                .collect(),
            plan.parallelism.max(1),
        ),
        (
            plan.scenarios
                .iter()
                .copied()
                .filter(|s| *s == Scenario::Shutdown)
                .collect(),
            plan.parallelism.clamp(1, SHUTDOWN_PARALLELISM),
        ),
    ];
    for (scenarios, parallelism) in phases {
        let limit = Arc::new(Semaphore::new(parallelism));
        let mut tasks = tokio::task::JoinSet::new();
        for &s in &scenarios {
            for ctx in &ctxs {
                let ctx = ctx.clone();
                let limit = limit.clone();
                tasks.spawn(async move {
                    let _permit = limit.acquire_owned().await.expect("semaphore never closes");
                    let outcome = scenario::run(&ctx, s).await;
                    (ctx.profile.version.clone(), ctx.version, s, outcome)
                });
            }
        }
        while let Some(joined) = tasks.join_next().await {
            outcomes.push(joined.context("a scenario task panicked")?);
        }
    }

    crate::trigger::cleanup(&plan.trigger, &run_id);

    let mut results = Vec::new();
    let mut harness_errors = Vec::new();
    let mut handshake_seen = false;
    let mut any_session = false;
    for profile in &plan.profiles {
        let version = Version::parse(&profile.version).expect("checked above");
        let mut mine: Vec<&(String, Version, Scenario, ScenarioOutcome)> =
            outcomes.iter().filter(|o| o.0 == profile.version).collect();
        mine.sort_by_key(|o| o.2);
        let mut session_inputs = Vec::new();
        for (v, _, s, outcome) in mine {
            if let Some(e) = &outcome.harness_error {
                harness_errors.push(format!("{v} {s}: {e}"));
            }
            any_session |= !outcome.transcripts.is_empty();
            handshake_seen |= !outcome.no_handshake && outcome.harness_error.is_none();
            let paths = write_transcripts(plan.out.as_deref(), v, &outcome.transcripts)?;
            let per_check_ms =
                outcome.duration.as_millis() as u64 / outcome.findings.len().max(1) as u64;
            for found in &outcome.findings {
                let lines = outcome
                    .transcripts
                    .get(found.transcript)
                    .map(|t| t.1.as_slice())
                    .unwrap_or(&[]);
                results.push(row(
                    found.check,
                    v,
                    version,
                    &found.finding,
                    paths.get(found.transcript).cloned(),
                    excerpt(lines, &found.finding, &found.excerpt_keys),
                    per_check_ms,
                ));
            }
            for ((name, summary), path) in outcome.summaries.iter().zip(paths.iter()) {
                session_inputs.push((name.clone(), summary.clone(), path.clone()));
            }
        }
        if plan.scenarios.contains(&Scenario::Session) {
            results.extend(session_checks(&profile.version, version, &session_inputs));
        }
    }
    // Catalogue order, then profile order: stable reports and snapshots.
    let order = |r: &CheckResult| {
        (
            catalogue::CATALOGUE
                .iter()
                .position(|c| c.id == r.id)
                .unwrap_or(usize::MAX),
            plan.profiles
                .iter()
                .position(|p| p.version == r.profile)
                .unwrap_or(usize::MAX),
        )
    };
    results.sort_by_key(order);
    Ok(RunResult {
        results,
        harness_errors,
        no_handshake_anywhere: any_session && !handshake_seen,
    })
}

fn row(
    id: &'static str,
    profile: &str,
    version: Version,
    finding: &Finding,
    transcript: Option<String>,
    excerpt: Vec<String>,
    duration_ms: u64,
) -> CheckResult {
    let check = catalogue::find(id).expect("scenarios only report catalogued checks");
    let required = requirements::is_required(id, version);
    let status = match finding {
        Finding::Pass(_) => Status::Success,
        Finding::Fail(_) if required => Status::Failure,
        // A failed recommendation is reported, never fatal.
        Finding::Fail(_) => Status::Warning,
        Finding::Warn(_) => Status::Warning,
        Finding::Skip(_) => Status::Skipped,
    };
    let details = match finding {
        Finding::Fail(d) if !required => format!("recommended for Claude Code {profile}: {d}"),
        other => other.details().to_string(),
    };
    CheckResult {
        id: id.to_string(),
        scenario: check.scenario.id().to_string(),
        profile: profile.to_string(),
        status,
        required,
        expected_failure: false,
        details,
        spec: check.spec.to_string(),
        transcript,
        excerpt: if status == Status::Failure || status == Status::Warning {
            excerpt
        } else {
            vec![]
        },
        duration_ms,
    }
}

/// `session.*`: aggregated over every session the profile ran.
fn session_checks(
    profile: &str,
    version: Version,
    sessions: &[(String, crate::driver::TranscriptSummary, String)],
) -> Vec<CheckResult> {
    let skip_all = sessions.is_empty();
    let mut stray = Vec::new();
    let mut violations = Vec::new();
    for (name, summary, _) in sessions {
        stray.extend(summary.stray_stdout.iter().map(|l| format!("[{name}] {l}")));
        violations.extend(summary.violations.iter().map(|v| format!("[{name}] {v}")));
    }
    let first_path = |pred: &dyn Fn(&crate::driver::TranscriptSummary) -> bool| {
        sessions
            .iter()
            .find(|(_, s, _)| pred(s))
            .map(|(_, _, p)| p.clone())
    };
    let stdout = if skip_all {
        Finding::skip("no session ran")
    } else if stray.is_empty() {
        Finding::pass(format!(
            "{} session(s), stdout carried only JSON-RPC frames",
            sessions.len()
        ))
    } else {
        Finding::fail(format!(
            "{} non-protocol stdout line(s); first: {}",
            stray.len(),
            stray[0]
        ))
    };
    let frames = if skip_all {
        Finding::skip("no session ran")
    } else if violations.is_empty() {
        Finding::pass("every frame matched its schema")
    } else {
        Finding::fail(format!(
            "{} schema violation(s); first: {}",
            violations.len(),
            violations[0]
        ))
    };
    vec![
        row(
            "session.stdout-clean",
            profile,
            version,
            &stdout,
            first_path(&|s| !s.stray_stdout.is_empty()),
            stray.iter().take(10).cloned().collect(),
            0,
        ),
        row(
            "session.frames-valid",
            profile,
            version,
            &frames,
            first_path(&|s| !s.violations.is_empty()),
            violations.iter().take(10).cloned().collect(),
            0,
        ),
    ]
}

/// Writes each session's NDJSON; returns paths relative to `out`.
fn write_transcripts(
    out: Option<&Path>,
    version: &str,
    transcripts: &[(String, Vec<String>)],
) -> anyhow::Result<Vec<String>> {
    let mut paths = Vec::new();
    for (name, lines) in transcripts {
        let rel = format!("transcripts/{version}/{name}.ndjson");
        if let Some(out) = out {
            let path = out.join(&rel);
            std::fs::create_dir_all(path.parent().expect("has a parent"))
                .with_context(|| format!("creating {}", path.display()))?;
            let mut body = lines.join("\n");
            if !body.is_empty() {
                body.push('\n');
            }
            std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))?;
        }
        paths.push(rel);
    }
    Ok(paths)
}

/// The transcript lines that explain a finding: those matching its keys,
/// else the tail. Long lines are cut.
fn excerpt(lines: &[String], finding: &Finding, keys: &[&str]) -> Vec<String> {
    if matches!(finding, Finding::Pass(_) | Finding::Skip(_)) {
        return vec![];
    }
    const MAX_LINES: usize = 12;
    const MAX_CHARS: usize = 400;
    let mut picked: Vec<&String> = lines
        .iter()
        .filter(|l| keys.iter().any(|k| l.contains(k)))
        .collect();
    if picked.is_empty() {
        picked = lines.iter().collect();
    }
    let start = picked.len().saturating_sub(MAX_LINES);
    picked[start..]
        .iter()
        .map(|l| {
            if l.chars().count() > MAX_CHARS {
                format!("{}…", l.chars().take(MAX_CHARS).collect::<String>())
            } else {
                l.to_string()
            }
        })
        .collect()
}
