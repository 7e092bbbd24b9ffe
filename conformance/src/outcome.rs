//! What a check concluded, before and after the requirement set and the
//! baseline are applied.

use serde::{Deserialize, Serialize};

/// Final status of one check under one profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Success,
    Failure,
    Warning,
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "SUCCESS",
            Status::Failure => "FAILURE",
            Status::Warning => "WARNING",
            Status::Skipped => "SKIPPED",
        }
    }
}

/// What a scenario found for one check, before the requirement set decides
/// whether a failure is fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Pass(String),
    Fail(String),
    /// Works, but with a cost or a doubt worth reading.
    Warn(String),
    /// Not evaluated, with the reason (no trigger, profile lacks the feature,
    /// blocked by an earlier failure).
    Skip(String),
}

impl Finding {
    pub fn pass(s: impl Into<String>) -> Self {
        Finding::Pass(s.into())
    }
    pub fn fail(s: impl Into<String>) -> Self {
        Finding::Fail(s.into())
    }
    pub fn warn(s: impl Into<String>) -> Self {
        Finding::Warn(s.into())
    }
    pub fn skip(s: impl Into<String>) -> Self {
        Finding::Skip(s.into())
    }
    pub fn details(&self) -> &str {
        match self {
            Finding::Pass(s) | Finding::Fail(s) | Finding::Warn(s) | Finding::Skip(s) => s,
        }
    }
}

/// One row of the report: a check under a profile.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckResult {
    pub id: String,
    pub scenario: String,
    pub profile: String,
    pub status: Status,
    /// Required by the profile's pinned requirement set (else recommended).
    pub required: bool,
    /// The failure is listed in the baseline: it does not fail the run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expected_failure: bool,
    pub details: String,
    pub spec: String,
    /// Path of the scenario's NDJSON transcript, relative to `--out`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
    /// The transcript lines that matter for a failure (redacted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excerpt: Vec<String>,
    pub duration_ms: u64,
}
