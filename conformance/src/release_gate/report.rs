//! The gate's report: JSON for machines, Markdown for people (CI uploads both).

use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use super::diff::{self, Change};

/// One pass/fail statement about the real client.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `probe` (recordings), `plugin-http` (our plugin under the real client), `profile`.
    pub lane: String,
    pub name: String,
    pub passed: bool,
    /// What was seen (the evidence), or why it failed.
    pub detail: String,
}

impl Check {
    pub fn new(lane: &str, name: &str, passed: bool, detail: impl Into<String>) -> Self {
        Self {
            lane: lane.into(),
            name: name.into(),
            passed,
            detail: detail.into(),
        }
    }
}

/// One recorded scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioRun {
    pub name: String,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub seconds: f64,
    pub lines: usize,
}

/// Overall outcome, in increasing severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Drift,
    Fail,
}

impl Verdict {
    /// Process exit code: 0 pass, 3 drift ([`diff::DRIFT_EXIT_CODE`]), 2 failed checks.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Pass => 0,
            Verdict::Drift => diff::DRIFT_EXIT_CODE,
            Verdict::Fail => 2,
        }
    }
}

/// Everything the gate found for one release.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: String,
    pub client_kind: String,
    pub started_at: String,
    pub seconds: f64,
    pub verdict: Verdict,
    pub scenarios: Vec<ScenarioRun>,
    pub checks: Vec<Check>,
    /// Version of the committed profile the derived one was compared with.
    pub compared_with: Option<String>,
    pub drift: Vec<Change>,
    /// Where the derived profile was written.
    pub derived_profile: Option<String>,
    /// Lanes that did not run, and why (never silently).
    pub skipped: Vec<String>,
}

impl Report {
    pub fn verdict_of(checks: &[Check], drift: &[Change]) -> Verdict {
        if checks.iter().any(|c| !c.passed) {
            Verdict::Fail
        } else if !drift.is_empty() {
            Verdict::Drift
        } else {
            Verdict::Pass
        }
    }

    pub fn markdown(&self) -> String {
        let mut s = format!(
            "# Release gate: Claude Code {} — **{}**\n\n{} ({}), {:.1} s, started {}.\n\n",
            self.version,
            match self.verdict {
                Verdict::Pass => "PASS",
                Verdict::Drift => "DRIFT",
                Verdict::Fail => "FAIL",
            },
            self.version,
            self.client_kind,
            self.seconds,
            self.started_at
        );
        s.push_str("## Checks\n\n| lane | check | result | evidence |\n|---|---|---|---|\n");
        for c in &self.checks {
            s.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                c.lane,
                c.name,
                if c.passed { "pass" } else { "**FAIL**" },
                c.detail.replace('|', "\\|").replace('\n', " ")
            ));
        }
        s.push_str("\n## Profile drift\n\n");
        match &self.compared_with {
            Some(v) => s.push_str(&diff::render_markdown(v, &self.version, &self.drift)),
            None => s.push_str("No committed profile to compare with.\n"),
        }
        if let Some(p) = &self.derived_profile {
            s.push_str(&format!("\nDerived profile: `{p}`\n"));
        }
        s.push_str(
            "\n## Recorded scenarios\n\n| scenario | exit | seconds | lines |\n|---|---|---|---|\n",
        );
        for r in &self.scenarios {
            s.push_str(&format!(
                "| {} | {}{} | {:.1} | {} |\n",
                r.name,
                r.exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
                if r.timed_out { " (timed out)" } else { "" },
                r.seconds,
                r.lines
            ));
        }
        if !self.skipped.is_empty() {
            s.push_str("\n## Not run\n\n");
            for k in &self.skipped {
                s.push_str(&format!("- {k}\n"));
            }
        }
        s
    }

    /// Writes `report.json` and `report.md` into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json: Value = serde_json::to_value(self)?;
        std::fs::write(
            dir.join("report.json"),
            serde_json::to_string_pretty(&json)? + "\n",
        )
        .with_context(|| format!("writing {}/report.json", dir.display()))?;
        std::fs::write(dir.join("report.md"), self.markdown())
            .with_context(|| format!("writing {}/report.md", dir.display()))?;
        Ok(())
    }
}
