//! The append-only NDJSON event log shared by the probe, its watcher, the fake Messages API and
//! the runner.
//!
//! Several processes write the same file (the probe, the watcher that outlives it, the runner), so
//! every event is one `write(2)` of one line to a file opened with `O_APPEND`, and carries an
//! absolute `CLOCK_MONOTONIC` time (`mono_ms`) that is comparable across processes. Relative times
//! are computed later, when a recording is normalised.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use serde_json::{Map, Value};

/// Milliseconds on `CLOCK_MONOTONIC` (the clock `Instant` uses on Linux), as a float with
/// microsecond resolution, so two processes on one machine agree on it.
pub fn mono_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let us = ts.tv_sec * 1_000_000 + ts.tv_nsec / 1_000;
    us as f64 / 1000.0
}

/// One NDJSON event log file, opened for appending.
#[derive(Debug)]
pub struct EventLog {
    file: Mutex<File>,
    source: String,
}

impl EventLog {
    /// Opens (creating) `path` for appending; `source` names the writer in every event
    /// (`probe`, `watch`, `api`, `runner`).
    pub fn open(path: &Path, source: &str) -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening event log {}", path.display()))?;
        Ok(Self {
            file: Mutex::new(file),
            source: source.to_owned(),
        })
    }

    /// Appends `{"mono_ms":…,"src":…,"pid":…,"ev":EV, …fields}` as one line. A failed write is
    /// reported on stderr, never silently dropped; it does not stop the caller (a recording with
    /// a hole is still worth more than a crashed probe, and the hole is visible in stderr).
    pub fn emit(&self, ev: &str, fields: Value) {
        let mut obj = Map::new();
        obj.insert("mono_ms".into(), Value::from(mono_ms()));
        obj.insert("src".into(), Value::from(self.source.clone()));
        obj.insert("pid".into(), Value::from(std::process::id()));
        obj.insert("ev".into(), Value::from(ev));
        if let Value::Object(extra) = fields {
            obj.extend(extra);
        }
        let mut line = Value::Object(obj).to_string();
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(err) = file.write_all(line.as_bytes()) {
            eprintln!("release-gate: could not write event {ev}: {err}");
        }
    }
}

/// Reads an event log back; lines that are not JSON objects are returned as `{"ev":"unparsed"}`
/// so a corrupt line shows up in the recording instead of vanishing.
pub fn read_events(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading event log {}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| serde_json::json!({"ev": "unparsed", "line": l}))
        })
        .collect())
}
