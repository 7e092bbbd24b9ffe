//! Every byte that crossed the stdio boundary, in order, with a monotonic timestamp: frames in
//! both directions, stray stdout lines, stderr lines. Serialised as NDJSON and validated against
//! the JSON Schemas in `fixtures/schemas/mcp/`.
//!
//! Schema lookup is data-driven: a frame of kind KIND (`request`, `notification`, `result`,
//! `error`) for METHOD is checked against `jsonrpc-message.schema.json` and, when it exists,
//! `<METHOD with '/' replaced by '_'>.<KIND>.schema.json` (responses take the method of their
//! request; every error response is also checked against `error.schema.json`). Adding a schema
//! file adds checks without code changes.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// Direction / kind of a transcript entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// A frame (or raw line) the client wrote to the server's stdin.
    #[serde(rename = "client->server")]
    ClientToServer,
    /// A JSON frame read from the server's stdout.
    #[serde(rename = "server->client")]
    ServerToClient,
    /// A stdout line that is not a JSON object.
    #[serde(rename = "stdout-junk")]
    StdoutJunk,
    /// A line the server wrote to stderr.
    #[serde(rename = "stderr")]
    Stderr,
}

/// One transcript entry. Exactly one of `frame` / `line` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Milliseconds since the session started (monotonic clock).
    pub t_ms: u64,
    /// Direction.
    pub dir: Direction,
    /// A JSON frame.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub frame: Option<Value>,
    /// A raw line (junk, stderr, or a raw line the client sent with `send_raw_line`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub line: Option<String>,
}

/// A frame that does not match its schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// Index of the entry in [`Transcript::entries`].
    pub index: usize,
    /// Direction of the frame.
    pub dir: Direction,
    /// Schema file name that failed.
    pub schema: String,
    /// What is wrong (JSON pointer and message).
    pub message: String,
}

/// The session's transcript.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Transcript {
    /// Entries in arrival order.
    pub entries: Vec<Entry>,
    /// Bytes of stdout that were not protocol frames (junk lines including their newline).
    pub stray_stdout_bytes: u64,
    /// Values that must never appear in written transcripts.
    #[serde(skip)]
    pub(crate) secrets: Vec<String>,
}

/// Compiled schemas from `fixtures/schemas/mcp/`.
pub struct McpSchemas {
    validators: HashMap<String, jsonschema::Validator>,
}

impl McpSchemas {
    /// Load every `*.json` in `<fixtures>/schemas/mcp`.
    pub fn load(fixtures: &Path) -> Result<McpSchemas> {
        let dir = fixtures.join("schemas").join("mcp");
        let mut validators = HashMap::new();
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if !name.ends_with(".json") {
                continue;
            }
            let path = entry.path();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            let schema: Value = serde_json::from_str(&text).map_err(|e| Error::Profile {
                path: path.clone(),
                message: format!("schema is not JSON: {e}"),
            })?;
            let v = jsonschema::validator_for(&schema).map_err(|e| Error::Profile {
                path: path.clone(),
                message: format!("invalid schema: {e}"),
            })?;
            validators.insert(name, v);
        }
        Ok(McpSchemas { validators })
    }

    /// Names of loaded schema files.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.validators.keys().map(String::as_str).collect();
        v.sort();
        v
    }

    fn check(
        &self,
        name: &str,
        frame: &Value,
        index: usize,
        dir: Direction,
        out: &mut Vec<Violation>,
    ) {
        if let Some(v) = self.validators.get(name) {
            for e in v.iter_errors(frame) {
                out.push(Violation {
                    index,
                    dir,
                    schema: name.to_string(),
                    message: format!("at {:?}: {}", e.instance_path.to_string(), e),
                });
            }
        }
    }
}

/// The JSON-RPC kind of a frame: `request`, `notification`, `result`, `error` or `invalid`.
pub fn frame_kind(frame: &Value) -> &'static str {
    let has = |k: &str| frame.get(k).is_some();
    if has("method") {
        if has("id") {
            "request"
        } else {
            "notification"
        }
    } else if has("id") && has("error") {
        "error"
    } else if has("id") && has("result") {
        "result"
    } else {
        "invalid"
    }
}

/// Key used to match responses to requests (ids may be numbers or strings).
pub fn id_key(id: &Value) -> String {
    id.to_string()
}

const SECRET_KEY_RE: &str =
    r"(?i)^(.*secret.*|.*password.*|authorization|.*api_?key.*|.*_token|token|bearer|cookie)$";
const REDACTED: &str = "[REDACTED]";

fn redact_value(v: &mut Value, key_re: &regex::Regex, secrets: &[String]) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if key_re.is_match(k) && val.is_string() {
                    *val = Value::String(REDACTED.into());
                } else {
                    redact_value(val, key_re, secrets);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| redact_value(i, key_re, secrets)),
        Value::String(s) => *s = redact_line(s, secrets),
        _ => {}
    }
}

/// Redact secrets from a free-text line: known secret values, `Bearer <token>`, and
/// `secret=...` / `"token": "..."` shapes.
pub fn redact_line(line: &str, secrets: &[String]) -> String {
    let mut out = line.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s.as_str(), REDACTED);
    }
    let bearer = regex::Regex::new(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+").expect("static regex");
    out = bearer.replace_all(&out, "${1}[REDACTED]").to_string();
    let kv =
        regex::Regex::new(r#"(?i)("?(?:secret|token|password|api_?key)"?\s*[:=]\s*"?)[^"\s,}&]+"#)
            .expect("static regex");
    kv.replace_all(&out, "${1}[REDACTED]").to_string()
}

impl Transcript {
    /// Entries that are JSON frames, with their indices.
    pub fn frames(&self) -> impl Iterator<Item = (usize, &Entry)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.frame.is_some())
    }

    /// Frames in one direction.
    pub fn frames_from(&self, dir: Direction) -> Vec<&Value> {
        self.entries
            .iter()
            .filter(|e| e.dir == dir)
            .filter_map(|e| e.frame.as_ref())
            .collect()
    }

    /// Stray stdout lines.
    pub fn junk_lines(&self) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| e.dir == Direction::StdoutJunk)
            .filter_map(|e| e.line.as_deref())
            .collect()
    }

    /// stderr lines.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| e.dir == Direction::Stderr)
            .filter_map(|e| e.line.as_deref())
            .collect()
    }

    /// Secret values this transcript redacts (for tests that prove redaction).
    pub fn secrets_for_test(&self) -> &[String] {
        &self.secrets
    }

    /// Bytes of stdout that were not protocol frames.
    pub fn stray_stdout_bytes(&self) -> u64 {
        self.stray_stdout_bytes
    }

    /// Entries with secrets redacted.
    pub fn redacted_entries(&self) -> Vec<Entry> {
        let key_re = regex::Regex::new(SECRET_KEY_RE).expect("static regex");
        self.entries
            .iter()
            .map(|e| {
                let mut e = e.clone();
                if let Some(f) = e.frame.as_mut() {
                    redact_value(f, &key_re, &self.secrets);
                }
                if let Some(l) = e.line.as_mut() {
                    *l = redact_line(l, &self.secrets);
                }
                e
            })
            .collect()
    }

    /// NDJSON text, one entry per line.
    pub fn to_ndjson(&self, redact: bool) -> String {
        let entries = if redact {
            self.redacted_entries()
        } else {
            self.entries.clone()
        };
        let mut out = String::new();
        for e in entries {
            out.push_str(&serde_json::to_string(&e).expect("entries serialise"));
            out.push('\n');
        }
        out
    }

    /// Write the NDJSON transcript to `path` (creating parent dirs).
    pub fn write_ndjson(&self, path: impl AsRef<Path>, redact: bool) -> Result<()> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        std::fs::write(path, self.to_ndjson(redact))
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    /// Read a transcript written by [`Transcript::write_ndjson`].
    pub fn read_ndjson(path: impl AsRef<Path>) -> Result<Transcript> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let mut t = Transcript::default();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let e: Entry = serde_json::from_str(line).map_err(|e| {
                Error::Protocol(format!(
                    "{}:{}: not a transcript entry: {e}",
                    path.display(),
                    n + 1
                ))
            })?;
            if e.dir == Direction::StdoutJunk {
                t.stray_stdout_bytes += e.line.as_ref().map_or(0, |l| l.len() as u64 + 1);
            }
            t.entries.push(e);
        }
        Ok(t)
    }

    /// Schema violations, using the schemas in [`crate::fixtures_dir`].
    pub fn violations(&self) -> Vec<Violation> {
        match McpSchemas::load(&crate::fixtures_dir()) {
            Ok(s) => self.violations_with(&s),
            Err(e) => vec![Violation {
                index: 0,
                dir: Direction::ClientToServer,
                schema: "(none)".into(),
                message: format!("cannot load schemas: {e}"),
            }],
        }
    }

    /// Schema violations against the given schemas. Every frame is checked; junk and stderr
    /// lines are not frames and are reported elsewhere (`junk_lines`, `stray_stdout_bytes`).
    pub fn violations_with(&self, schemas: &McpSchemas) -> Vec<Violation> {
        let mut out = Vec::new();
        // Methods of requests, per direction of the request, to classify responses.
        let mut methods: HashMap<(bool, String), String> = HashMap::new();
        for (index, entry) in self.frames() {
            let frame = entry.frame.as_ref().expect("frames() yields frames");
            schemas.check(
                "jsonrpc-message.schema.json",
                frame,
                index,
                entry.dir,
                &mut out,
            );
            let from_client = entry.dir == Direction::ClientToServer;
            let kind = frame_kind(frame);
            let method = match kind {
                "request" | "notification" => {
                    let m = frame["method"].as_str().unwrap_or_default().to_string();
                    if kind == "request" {
                        methods.insert((from_client, id_key(&frame["id"])), m.clone());
                    }
                    Some(m)
                }
                "result" | "error" => methods.get(&(!from_client, id_key(&frame["id"]))).cloned(),
                _ => None,
            };
            if kind == "error" {
                schemas.check("error.schema.json", frame, index, entry.dir, &mut out);
            }
            if let Some(m) = method {
                let name = format!("{}.{}.schema.json", m.replace('/', "_"), kind);
                schemas.check(&name, frame, index, entry.dir, &mut out);
            }
        }
        out
    }
}
