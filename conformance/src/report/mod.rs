//! Reports written under `--out`: `report.json`, `junit.xml`, `summary.md`,
//! `report.html`, plus the per-scenario transcripts the runner already wrote.

mod html;
mod junit;
mod markdown;

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::outcome::{CheckResult, Status};

pub use html::render as html;
pub use junit::render as junit;
pub use markdown::render as markdown;

/// The whole run, as written to `report.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub harness: Harness,
    pub plugin_command: String,
    pub trigger: String,
    pub profiles: Vec<ProfileRun>,
    pub scenarios: Vec<String>,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    pub results: Vec<CheckResult>,
    pub summary: Summary,
    #[serde(default)]
    pub stale_baseline: Vec<serde_json::Value>,
    pub exit: Exit,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Harness {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProfileRun {
    pub version: String,
    pub requirement_set: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub success: usize,
    pub failure: usize,
    pub warning: usize,
    pub skipped: usize,
    /// Failures of required checks not listed in the baseline.
    pub required_failures: usize,
    pub expected_failures: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Exit {
    pub code: u8,
    pub reason: String,
}

impl Summary {
    pub fn of(results: &[CheckResult]) -> Summary {
        let mut s = Summary::default();
        for r in results {
            match r.status {
                Status::Success => s.success += 1,
                Status::Failure => s.failure += 1,
                Status::Warning => s.warning += 1,
                Status::Skipped => s.skipped += 1,
            }
            if r.status == Status::Failure {
                if r.expected_failure {
                    s.expected_failures += 1;
                } else if r.required {
                    s.required_failures += 1;
                }
            }
        }
        s
    }
}

impl Report {
    /// Profile versions in report order.
    pub fn versions(&self) -> Vec<&str> {
        self.profiles.iter().map(|p| p.version.as_str()).collect()
    }

    pub fn result(&self, id: &str, profile: &str) -> Option<&CheckResult> {
        self.results
            .iter()
            .find(|r| r.id == id && r.profile == profile)
    }

    /// Check ids in catalogue order, only those present in the results.
    pub fn check_ids(&self) -> Vec<&'static crate::catalogue::Check> {
        crate::catalogue::CATALOGUE
            .iter()
            .filter(|c| self.results.iter().any(|r| r.id == c.id))
            .collect()
    }

    /// Writes report.json, junit.xml, summary.md and report.html into `dir`.
    pub fn write_all(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let write = |name: &str, body: String| {
            let path = dir.join(name);
            std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))
        };
        write("report.json", serde_json::to_string_pretty(self)? + "\n")?;
        write("junit.xml", junit(self))?;
        write("summary.md", markdown(self))?;
        write("report.html", html(self))?;
        Ok(())
    }

    /// One line per check × profile, for `--format text`.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for r in &self.results {
            let marker = match (r.status, r.expected_failure) {
                (Status::Failure, true) => "FAILURE (expected, baseline)".to_string(),
                (Status::Failure, false) if !r.required => "FAILURE (recommended)".to_string(),
                (s, _) => s.as_str().to_string(),
            };
            out.push_str(&format!(
                "{:<8} {:<44} {:<28} {}\n",
                r.profile, r.id, marker, r.details
            ));
        }
        let s = &self.summary;
        out.push_str(&format!(
            "\n{} success, {} failure ({} required, {} expected), {} warning, {} skipped in {} ms: exit {} ({})\n",
            s.success,
            s.failure,
            s.required_failures,
            s.expected_failures,
            s.warning,
            s.skipped,
            self.duration_ms,
            self.exit.code,
            self.exit.reason
        ));
        out
    }
}

/// Minimal XML/HTML text escaping (shared by junit and html).
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters even escaped.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' && c != '\r' => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod sample {
    use super::*;

    /// A small report covering every status, for renderer tests.
    pub fn report() -> Report {
        let row =
            |id: &str, profile: &str, status: Status, required: bool, details: &str| CheckResult {
                id: id.into(),
                scenario: id.split('.').next().unwrap().into(),
                profile: profile.into(),
                status,
                required,
                expected_failure: false,
                details: details.into(),
                spec: crate::catalogue::find(id).unwrap().spec.into(),
                transcript: Some(format!(
                    "transcripts/{profile}/{}.ndjson",
                    id.split('.').next().unwrap()
                )),
                excerpt: if status == Status::Failure {
                    vec![
                        r#"{"t_ms":3,"dir":"in","frame":{"jsonrpc":"2.0","id":0,"result":{}}}"#
                            .into(),
                    ]
                } else {
                    vec![]
                },
                duration_ms: 12,
            };
        let results = vec![
            row(
                "handshake.capability-experimental",
                "2.1.80",
                Status::Success,
                true,
                "declared under experimental",
            ),
            row(
                "handshake.capability-experimental",
                "2.1.330",
                Status::Failure,
                true,
                "declared at the <top> level & ignored",
            ),
            row(
                "handshake.instructions-size",
                "2.1.80",
                Status::Warning,
                false,
                "2300 bytes > 2048",
            ),
            row(
                "handshake.instructions-size",
                "2.1.330",
                Status::Success,
                true,
                "812 bytes",
            ),
            row(
                "reply.round-trip",
                "2.1.80",
                Status::Skipped,
                true,
                "no trigger",
            ),
            row(
                "reply.round-trip",
                "2.1.330",
                Status::Skipped,
                true,
                "no trigger",
            ),
        ];
        let summary = Summary::of(&results);
        Report {
            harness: Harness {
                name: "channel-conformance".into(),
                version: "0.1.0".into(),
            },
            plugin_command: "python3 zoo.py".into(),
            trigger: "none".into(),
            profiles: vec![
                ProfileRun {
                    version: "2.1.80".into(),
                    requirement_set: "v1".into(),
                },
                ProfileRun {
                    version: "2.1.330".into(),
                    requirement_set: "v1".into(),
                },
            ],
            scenarios: vec!["handshake".into(), "reply".into()],
            started_at: "2026-11-21T00:00:00Z".into(),
            finished_at: "2026-11-21T00:00:01Z".into(),
            duration_ms: 1000,
            results,
            summary,
            stale_baseline: vec![],
            exit: Exit {
                code: 1,
                reason: "1 required check failed".into(),
            },
        }
    }
}
