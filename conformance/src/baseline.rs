//! Baselines: failures a plugin author knows about and accepts for now.
//!
//! ```json
//! { "expected_failures": [
//!     { "check": "shutdown.sigint", "profile": "2.1.80", "reason": "tracked in #12" },
//!     { "check": "handshake.instructions-size" } ] }
//! ```
//! An entry without `profile` covers every profile. A listed failure keeps
//! its FAILURE status in the report but does not fail the run; an entry whose
//! check now passes everywhere it covers is *stale* and fails the run (exit
//! 2), so a baseline only ever shrinks.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::outcome::{CheckResult, Status};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub expected_failures: Vec<ExpectedFailure>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFailure {
    pub check: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("cannot read baseline {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("baseline {path} is not valid: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("baseline {path} names unknown check id {check:?} (see --list-checks)")]
    UnknownCheck { path: String, check: String },
}

/// A baseline entry that no longer matches a failure.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StaleEntry {
    pub check: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    pub now: String,
}

impl Baseline {
    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Read {
            path: shown.clone(),
            source,
        })?;
        let baseline: Baseline =
            serde_json::from_str(&text).map_err(|source| BaselineError::Parse {
                path: shown.clone(),
                source,
            })?;
        for e in &baseline.expected_failures {
            if crate::catalogue::find(&e.check).is_none() {
                return Err(BaselineError::UnknownCheck {
                    path: shown,
                    check: e.check.clone(),
                });
            }
        }
        Ok(baseline)
    }

    fn covers(entry: &ExpectedFailure, r: &CheckResult) -> bool {
        entry.check == r.id && entry.profile.as_deref().is_none_or(|p| p == r.profile)
    }

    /// Marks listed failures as expected and returns the stale entries.
    /// Entries whose check or profile did not run (filtered out) are not stale:
    /// nothing was learnt about them.
    pub fn apply(&self, results: &mut [CheckResult]) -> Vec<StaleEntry> {
        let mut stale = Vec::new();
        for entry in &self.expected_failures {
            let mut ran = Vec::new();
            for r in results.iter_mut().filter(|r| Self::covers(entry, r)) {
                if r.status == Status::Failure {
                    r.expected_failure = true;
                }
                ran.push((r.profile.clone(), r.status));
            }
            let evaluated: Vec<_> = ran.iter().filter(|(_, s)| *s != Status::Skipped).collect();
            if !evaluated.is_empty() && evaluated.iter().all(|(_, s)| *s != Status::Failure) {
                let now = evaluated
                    .iter()
                    .map(|(p, s)| format!("{} under {p}", s.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ");
                stale.push(StaleEntry {
                    check: entry.check.clone(),
                    profile: entry.profile.clone(),
                    now,
                });
            }
        }
        stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str, profile: &str, status: Status) -> CheckResult {
        CheckResult {
            id: id.into(),
            scenario: "handshake".into(),
            profile: profile.into(),
            status,
            required: true,
            expected_failure: false,
            details: String::new(),
            spec: String::new(),
            transcript: None,
            excerpt: vec![],
            duration_ms: 0,
        }
    }

    #[test]
    fn listed_failure_is_expected_and_a_passing_entry_is_stale() {
        let baseline = Baseline {
            expected_failures: vec![
                ExpectedFailure {
                    check: "handshake.reply-tool".into(),
                    profile: None,
                    reason: None,
                },
                ExpectedFailure {
                    check: "shutdown.sigint".into(),
                    profile: Some("2.1.80".into()),
                    reason: None,
                },
                // Did not run: neither expected nor stale.
                ExpectedFailure {
                    check: "reply.round-trip".into(),
                    profile: None,
                    reason: None,
                },
            ],
        };
        let mut results = vec![
            result("handshake.reply-tool", "2.1.80", Status::Failure),
            result("handshake.reply-tool", "2.1.330", Status::Failure),
            result("shutdown.sigint", "2.1.80", Status::Success),
            result("shutdown.sigint", "2.1.330", Status::Failure),
        ];
        let stale = baseline.apply(&mut results);
        assert!(results[0].expected_failure && results[1].expected_failure);
        assert!(
            !results[3].expected_failure,
            "entry is pinned to 2.1.80 only"
        );
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].check, "shutdown.sigint");
        assert_eq!(stale[0].now, "SUCCESS under 2.1.80");
    }

    #[test]
    fn unknown_check_ids_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.json");
        std::fs::write(
            &path,
            r#"{"expected_failures":[{"check":"no.such-check"}]}"#,
        )
        .unwrap();
        let err = Baseline::load(&path).unwrap_err();
        assert!(matches!(err, BaselineError::UnknownCheck { .. }), "{err}");
    }
}
