//! Scenarios: each runs one (or two) plugin sessions under one profile and
//! turns what it saw into findings for its checks.

mod handshake;
mod permission;
mod push;
mod reply;
mod robustness;
mod shutdown;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::catalogue::Scenario;
use crate::driver::{Handshake, Launch, Plugin, TranscriptSummary};
use crate::outcome::Finding;
use crate::requirements::Version;
use crate::trigger::{Outside, TriggerSpec};

pub use push::{golden_event, golden_path, GOLDEN_SERVER_NAME};

/// Everything a scenario needs to know about the run.
#[derive(Clone)]
pub struct Ctx {
    pub profile: mock_claude::Profile,
    pub version: Version,
    /// The plugin command as the user gave it (placeholders unfilled).
    pub plugin: String,
    pub trigger: TriggerSpec,
    pub fixtures: PathBuf,
    pub timeouts: Timeouts,
    /// Short random id of this run (keeps concurrent runs' directories apart).
    pub run_id: String,
}

/// How long the suite waits for things. Generous: CI machines are busy.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A turn, a reply at the outside, a verdict.
    pub event: Duration,
    /// The plugin's outside endpoint (discovery file, WebSocket hello).
    pub connect: Duration,
    /// How long the suite lets a plugin start its endpoint before the
    /// handshake, for the early-event check.
    pub early_connect: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            event: Duration::from_secs(10),
            connect: Duration::from_secs(10),
            early_connect: Duration::from_secs(3),
        }
    }
}

impl Ctx {
    /// `<run id>/<version>-<session>`: unique per run and session.
    pub fn label(&self, scenario: &str) -> String {
        format!("{}/{}-{scenario}", self.run_id, self.version)
    }

    /// Prepares the trigger and spawns the plugin for one session.
    pub async fn start(&self, session: &str) -> Result<(Plugin, Outside), SessionError> {
        let prepared = self
            .trigger
            .prepare(&self.label(session))
            .await
            .map_err(|e| {
                SessionError::Harness(format!("preparing trigger {}: {e:#}", self.trigger.kind()))
            })?;
        let launch = Launch {
            command: prepared.command(&self.plugin),
            env: prepared.env.clone(),
            server_name: GOLDEN_SERVER_NAME.to_string(),
        };
        let plugin = Plugin::spawn(&self.profile, launch)
            .await
            .map_err(|e| SessionError::Harness(format!("spawning the plugin: {e:#}")))?;
        Ok((plugin, prepared.outside))
    }
}

/// Why a session could not produce findings.
#[derive(Debug, Clone)]
pub enum SessionError {
    /// The harness could not run (spawn failed, trigger setup failed): exit 3.
    Harness(String),
}

/// A finding plus where to look in the transcript.
#[derive(Debug, Clone)]
pub struct Found {
    pub check: &'static str,
    pub finding: Finding,
    /// Substrings selecting the transcript lines that explain a failure.
    pub excerpt_keys: Vec<&'static str>,
    /// Index into [`ScenarioOutcome::transcripts`].
    pub transcript: usize,
}

/// What one scenario produced.
#[derive(Debug, Default)]
pub struct ScenarioOutcome {
    pub findings: Vec<Found>,
    /// (file stem, NDJSON lines) per session, secrets already redacted.
    pub transcripts: Vec<(String, Vec<String>)>,
    /// Per session: stray stdout, schema violations.
    pub summaries: Vec<(String, TranscriptSummary)>,
    /// Set when the harness could not run this scenario.
    pub harness_error: Option<String>,
    /// The plugin never answered the handshake at all (exit 3 when this
    /// holds for every profile).
    pub no_handshake: bool,
    pub duration: Duration,
}

impl ScenarioOutcome {
    pub fn push(&mut self, check: &'static str, finding: Finding, keys: &[&'static str]) {
        let transcript = self.transcripts.len().saturating_sub(1);
        self.findings.push(Found {
            check,
            finding,
            excerpt_keys: keys.to_vec(),
            transcript,
        });
    }

    /// Every check of `scenario` not yet reported gets `finding`.
    pub fn fill(&mut self, scenario: Scenario, finding: Finding) {
        for c in crate::catalogue::of_scenario(scenario) {
            if !self.findings.iter().any(|f| f.check == c.id) {
                self.push(c.id, finding.clone(), &[]);
            }
        }
    }

    /// Closes a session: records its transcript and summary.
    pub async fn record(&mut self, name: &str, plugin: &mut Plugin, secrets: &[String]) {
        let lines = plugin.transcript_lines(secrets);
        let summary = plugin.summary();
        self.transcripts.push((name.to_string(), lines));
        self.summaries.push((name.to_string(), summary));
    }
}

/// Runs one scenario under one profile.
pub async fn run(ctx: &Ctx, scenario: Scenario) -> ScenarioOutcome {
    let started = Instant::now();
    let mut out = match scenario {
        Scenario::Handshake => handshake::run(ctx).await,
        Scenario::Push => push::run(ctx).await,
        Scenario::Reply => reply::run(ctx).await,
        Scenario::Permission => permission::run(ctx).await,
        Scenario::Robustness => robustness::run(ctx).await,
        Scenario::Shutdown => shutdown::run(ctx).await,
        Scenario::Session => ScenarioOutcome::default(),
    };
    if let Some(err) = &out.harness_error {
        out.fill(
            scenario,
            Finding::skip(format!("the harness could not run: {err}")),
        );
    }
    out.duration = started.elapsed();
    out
}

/// Spawns and handshakes; on failure fills the scenario's checks and returns
/// `None`. Used by every scenario but `handshake`, which reports the details.
pub(crate) async fn start_and_handshake(
    ctx: &Ctx,
    scenario: Scenario,
    out: &mut ScenarioOutcome,
) -> Option<(Plugin, Outside, Handshake)> {
    let (mut plugin, outside) = match ctx.start(scenario.id()).await {
        Ok(x) => x,
        Err(SessionError::Harness(e)) => {
            out.harness_error = Some(e);
            return None;
        }
    };
    let hs = plugin.handshake().await;
    if !hs.completed() {
        out.no_handshake = hs.nothing_received;
        plugin.shutdown().await;
        out.record(scenario.id(), &mut plugin, &outside.secrets())
            .await;
        out.fill(
            scenario,
            Finding::skip(format!(
                "blocked: the handshake did not complete ({})",
                hs.failure_text()
            )),
        );
        return None;
    }
    Some((plugin, outside, hs))
}

/// The skip reason when the gate did not register the server.
pub(crate) fn gate_blocked(hs: &Handshake) -> Option<Finding> {
    (!hs.gate.registered).then(|| {
        Finding::skip(format!(
            "blocked: the gate did not register the server ({}); see handshake.gate-registered",
            hs.gate.reason.as_deref().unwrap_or("no reason")
        ))
    })
}
