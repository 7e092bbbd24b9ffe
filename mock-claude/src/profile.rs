//! Profiles: one JSON file per Claude Code release describing everything about how that release
//! drives a channel server. Code interprets; versions differ only in data.
//!
//! Files live in `<fixtures>/profiles/claude-code-<VERSION>.json` and are validated against
//! `<fixtures>/schemas/profile.schema.json` when loaded, so a typo fails loudly at load time
//! instead of silently changing behaviour.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// The fixtures directory: `$MOCK_CLAUDE_FIXTURES` if set, else `<workspace>/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MOCK_CLAUDE_FIXTURES") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("fixtures")
}

/// A loaded, schema-validated profile. Fields mirror the JSON one to one (see the schema's
/// descriptions); [`Profile::raw`] keeps the original document for tools that diff profiles.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    /// Format version of the file (currently 1).
    pub profile_format: u32,
    /// Claude Code release, e.g. `2.1.330`.
    pub version: String,
    /// Provenance of the facts.
    pub source: Source,
    /// `initialize` params.clientInfo, verbatim.
    pub client_info: Value,
    /// `initialize` params.capabilities, verbatim.
    pub client_capabilities: Value,
    /// The `server/discover` probe.
    pub discover: Discover,
    /// The `initialize` request.
    pub initialize: Initialize,
    /// Server `protocolVersion` answers the client accepts.
    pub accepted_protocol_versions: Vec<String>,
    /// Versions at or after this one (date order) are the "modern" era.
    pub modern_era_from: String,
    /// The client's error for an unsupported version; `{version}` is replaced.
    pub unsupported_version_message: String,
    /// `capabilities.experimental.*` must be objects (else initialize fails validation).
    #[serde(default)]
    pub capability_values_must_be_objects: bool,
    /// What the client lists after `notifications/initialized`.
    pub after_initialized: AfterInitialized,
    /// Shape of `tools/call`.
    pub tools_call: ToolsCall,
    /// Env vars given to the server.
    pub env: Vec<EnvVar>,
    /// Env names whose values are secrets (redacted from transcripts, never logged).
    #[serde(default)]
    pub secret_env: Vec<String>,
    /// How stray stdout is treated.
    pub stdout: StdoutRules,
    /// The shutdown sequence.
    pub shutdown: Shutdown,
    /// The channel gate.
    pub gate: GateRules,
    /// The meta key rule.
    pub meta: MetaRules,
    /// How a push becomes a turn.
    pub render: crate::render::RenderRules,
    /// How the model names MCP tools.
    pub tool_names: ToolNames,
    /// The permission relay; `None` before 2.1.81.
    pub permission: Option<PermissionRules>,
    /// Caps on instructions / tool descriptions; `None` when the release had none.
    pub caps: Option<Caps>,
    /// Modern-era results without `resultType`; `None` when not known for the release (or it
    /// cannot reach the modern era).
    #[serde(default)]
    pub modern_result_type: Option<ModernResultType>,
    /// The file this profile was loaded from (empty for profiles built in memory).
    #[serde(skip)]
    pub path: PathBuf,
    /// The original JSON document.
    #[serde(skip)]
    pub raw: Value,
}

/// Where a profile's facts come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Source {
    /// `channels-md`, `recorded-from-binary` or `mixed`.
    pub kind: String,
    /// Free text.
    pub description: String,
    /// When recorded.
    #[serde(default)]
    pub recorded_at: Option<String>,
    /// Identity of the recorded binary.
    #[serde(default)]
    pub binary: Option<Value>,
    /// Caveats (texts that are not verbatim, assumptions...).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// The `server/discover` probe (MCP 2026-07-28).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Discover {
    /// Whether this release sends the probe to stdio servers by default.
    pub enabled: bool,
    /// Method name.
    #[serde(default)]
    pub method: Option<String>,
    /// Request id (a string in 2.1.330).
    #[serde(default)]
    pub id: Option<Value>,
    /// Protocol version announced in `_meta`.
    #[serde(default)]
    pub protocol_version: Option<String>,
    /// `_meta` key names.
    #[serde(default)]
    pub meta_keys: Option<DiscoverMetaKeys>,
    /// How long an unanswered probe is waited for.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Capabilities announced in the probe's `_meta` (and on modern-era requests) per
    /// entrypoint (`cli`, `sdk-cli`) when they differ from `client_capabilities`.
    #[serde(default)]
    pub client_capabilities_by_entrypoint: std::collections::BTreeMap<String, Value>,
    /// Client env var that turns the probe off.
    #[serde(default)]
    pub disable_env: Option<EnvPair>,
    /// How long an unanswered probe is remembered per server command (later starts skip the
    /// probe and go straight to `initialize`; an error answer is not remembered, FINDINGS 16).
    /// Applied when the session has a [`crate::ProbeMemory`]; `None` = no memory.
    #[serde(default)]
    pub remember_unanswered_days: Option<u64>,
}

/// `_meta` key names of the probe.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscoverMetaKeys {
    /// e.g. `io.modelcontextprotocol/protocolVersion`.
    pub protocol_version: String,
    /// e.g. `io.modelcontextprotocol/clientInfo`.
    pub client_info: String,
    /// e.g. `io.modelcontextprotocol/clientCapabilities`.
    pub client_capabilities: String,
}

/// A name/value pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvPair {
    /// Variable name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// The `initialize` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Initialize {
    /// Its id; later requests count up from here.
    pub id: u64,
    /// Requested protocol version.
    pub protocol_version: String,
    /// How long the client waits for the answer.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// Lists sent after `notifications/initialized`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AfterInitialized {
    /// `tools/list`, `prompts/list`, `resources/list`, in id order.
    pub lists: Vec<String>,
    /// Only when the server declared the matching capability.
    #[serde(default)]
    pub only_if_declared: bool,
    /// Sent together, answers awaited together.
    #[serde(default)]
    pub concurrent: bool,
}

/// Shape of `tools/call`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolsCall {
    /// `_meta` key carrying the tool-use id (`claudecode/toolUseId`).
    pub tool_use_id_meta_key: String,
    /// Prefix of generated tool-use ids (`toolu_`).
    #[serde(default)]
    pub tool_use_id_prefix: Option<String>,
    /// `request_id`: `_meta.progressToken` equals the request id; `none`: absent.
    pub progress_token: String,
    /// A call with no answer and no progress notification for this long is cut (abandoned;
    /// the model gets [`crate::Error::ToolCallIdle`]). `None`: no idle cut in this release.
    #[serde(default)]
    pub idle_timeout_ms: Option<u64>,
}

/// How a release treats a modern-era (MCP 2026-07-28) result that lacks `resultType`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModernResultType {
    /// `reject` (the request fails and is retried, 2.1.300) or `fill_in` (accepted as
    /// `resultType: "complete"`, 2.1.330).
    pub when_missing: String,
    /// Methods whose results are checked (only those observed).
    pub methods: Vec<String>,
    /// The client's error text for a rejected result (`{method}` replaced).
    #[serde(default)]
    pub reject_message: Option<String>,
    /// How many times the request is sent in all before the client gives up (`reject`).
    #[serde(default)]
    pub attempts: Option<u32>,
    /// Waits between attempts, in order (the last one repeats if there are more attempts).
    #[serde(default)]
    pub retry_gaps_ms: Vec<u64>,
}

/// One env var given to the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    /// How its value is made.
    pub value: EnvValue,
    /// The value is a secret (redacted from transcripts, never logged).
    #[serde(default)]
    pub secret: bool,
    /// Free text (when the client sets it, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// How an env value is made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EnvValue {
    /// A fixed string.
    Literal {
        /// The string.
        value: String,
    },
    /// The session's UUID (fresh per session).
    SessionUuid,
    /// The project directory (the launch cwd).
    ProjectDir,
    /// `cli` interactive, `sdk-cli` in `-p` mode (from [`crate::LaunchOptions::entrypoint`]).
    Entrypoint,
    /// A string with placeholders `{version}` `{major}` `{minor}` `{patch}` `{session_id}`
    /// `{project_dir}`.
    Template {
        /// The template.
        value: String,
    },
    /// A fresh random UUID.
    RandomUuid,
    /// A fresh random opaque token (64 hex digits).
    RandomSecret,
    /// A path in a per-session temporary directory (not created).
    TempPath,
}

/// Stray stdout handling.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StdoutRules {
    /// `ignore` (2.1.110+), `disconnect` (2.1.105-2.1.109), `hang` (earlier).
    pub non_json_line: String,
    /// A line longer than this closes the connection.
    pub max_line_bytes: usize,
}

/// Shutdown sequence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shutdown {
    /// Steps in order; each waits `wait_ms` for the process to exit before the next.
    pub steps: Vec<ShutdownStep>,
    /// Whether a dead server is reconnected automatically.
    #[serde(default)]
    pub reconnect: bool,
}

/// One shutdown step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShutdownStep {
    /// `signal` or `close_stdin`.
    pub action: String,
    /// `SIGINT`, `SIGTERM`, `SIGKILL`, `SIGHUP` for `signal`.
    #[serde(default)]
    pub signal: Option<String>,
    /// Wait for exit after the step.
    pub wait_ms: u64,
}

/// The channel gate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateRules {
    /// `MCP server "{name}": Channel notifications skipped: {reason}`.
    pub log_skipped: String,
    /// `MCP server "{name}": Channel notifications registered`.
    pub log_registered: String,
    /// Ordered checks; the first failure wins.
    pub checks: Vec<GateCheckRule>,
    /// Providers counted as first party.
    pub first_party_providers: Vec<String>,
    /// Plugins on Anthropic's approved channels allowlist (`plugin@marketplace`).
    #[serde(default)]
    pub approved_channel_plugins: Vec<String>,
    /// Whether the org `allowedChannelPlugins` setting is honoured.
    #[serde(default)]
    pub org_allowlist_supported: bool,
    /// The availability check is repeated for each push at delivery time (2.1.290+).
    #[serde(default)]
    pub recheck_feature_at_delivery: bool,
}

/// One gate check and its reason text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateCheckRule {
    /// Which check.
    pub check: crate::gate::GateCheck,
    /// The client's reason text (`{name}`, `{entry}` replaced).
    pub reason: String,
}

/// The meta key rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetaRules {
    /// Keys must match this regex.
    pub key_pattern: String,
    /// Warning for a dropped key (`{name}`, `{key}`, `{pattern}`); `None` = silent.
    #[serde(default)]
    pub dropped_key_warning: Option<String>,
    /// `drop_event_silently` or `drop_event_with_warning`.
    pub non_string_value: String,
}

/// MCP tool naming as the model sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolNames {
    /// `mcp__`.
    pub prefix: String,
    /// `__`.
    pub separator: String,
    /// Characters matching this are replaced.
    pub invalid_char_pattern: String,
    /// Replacement for each invalid character.
    pub replacement: String,
}

/// The permission relay.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PermissionRules {
    /// `claude/channel/permission` under `experimental`.
    pub capability: String,
    /// Client -> server method.
    pub request_method: String,
    /// Server -> client method.
    pub verdict_method: String,
    /// How request ids are made.
    pub id: PermissionIdRules,
    /// Params always sent.
    pub request_params: Vec<String>,
    /// Params a release may add.
    #[serde(default)]
    pub extra_request_params: Vec<String>,
    /// `input_preview` is cut to this many characters.
    pub input_preview_max_chars: usize,
    /// Accepted `behavior` values.
    pub behaviors: Vec<String>,
    /// Requests go only to registered channel servers.
    pub requires_registered: bool,
    /// First verdict wins (always true so far).
    #[serde(default = "yes")]
    pub first_answer_wins: bool,
    /// Unknown ids are ignored silently.
    #[serde(default = "yes")]
    pub ignore_unknown_ids: bool,
}

fn yes() -> bool {
    true
}

/// Permission request id rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PermissionIdRules {
    /// Letters ids are made of.
    pub alphabet: String,
    /// Id length.
    pub length: usize,
    /// `random` or `hash_of_tool_use_id`.
    pub generation: String,
    /// Verdict ids are matched case-insensitively.
    #[serde(default)]
    pub case_insensitive: bool,
}

/// Caps on server-provided text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Caps {
    /// Instructions are cut to this many characters.
    pub instructions_max_chars: usize,
    /// Tool descriptions are cut to this many characters.
    pub tool_description_max_chars: usize,
    /// What plugins should stay under (2 KB).
    pub recommended_max_bytes: usize,
}

/// The profile JSON Schema, validated once per load.
fn schema_validator(fixtures: &Path) -> Result<jsonschema::Validator> {
    let path = fixtures.join("schemas").join("profile.schema.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let schema: Value = serde_json::from_str(&text).map_err(|e| Error::Profile {
        path: path.clone(),
        message: format!("schema is not JSON: {e}"),
    })?;
    jsonschema::validator_for(&schema).map_err(|e| Error::Profile {
        path,
        message: format!("invalid schema: {e}"),
    })
}

/// Compare dotted versions numerically (`2.1.80` < `2.1.330`).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let parse = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a).cmp(&parse(b))
}

impl Profile {
    /// Load and validate one profile file. The schema is looked up in the `schemas/` sibling of
    /// the file's `profiles/` directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Profile> {
        let path = path.as_ref();
        let fixtures = path
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_else(fixtures_dir);
        let fixtures = if fixtures
            .join("schemas")
            .join("profile.schema.json")
            .exists()
        {
            fixtures
        } else {
            fixtures_dir()
        };
        let validator = schema_validator(&fixtures)?;
        Self::load_with(&validator, path)
    }

    fn load_with(validator: &jsonschema::Validator, path: &Path) -> Result<Profile> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading profile {}", path.display()), e))?;
        let raw: Value = serde_json::from_str(&text).map_err(|e| Error::Profile {
            path: path.into(),
            message: format!("not JSON: {e}"),
        })?;
        Self::from_value_with(validator, raw, path)
    }

    /// Build a profile from a JSON document (validated against the schema in [`fixtures_dir`]).
    /// Handy for tests that tweak one field of a shipped profile.
    pub fn from_value(raw: Value) -> Result<Profile> {
        let validator = schema_validator(&fixtures_dir())?;
        Self::from_value_with(&validator, raw, Path::new(""))
    }

    fn from_value_with(
        validator: &jsonschema::Validator,
        raw: Value,
        path: &Path,
    ) -> Result<Profile> {
        let problems: Vec<String> = validator
            .iter_errors(&raw)
            .map(|e| format!("at {}: {}", e.instance_path, e))
            .collect();
        if !problems.is_empty() {
            return Err(Error::Profile {
                path: path.into(),
                message: problems.join("\n"),
            });
        }
        let mut profile: Profile =
            serde_json::from_value(raw.clone()).map_err(|e| Error::Profile {
                path: path.into(),
                message: e.to_string(),
            })?;
        regex::Regex::new(&profile.meta.key_pattern).map_err(|e| Error::Profile {
            path: path.into(),
            message: format!("meta.key_pattern: {e}"),
        })?;
        regex::Regex::new(&profile.tool_names.invalid_char_pattern).map_err(|e| {
            Error::Profile {
                path: path.into(),
                message: format!("tool_names.invalid_char_pattern: {e}"),
            }
        })?;
        profile.path = path.to_path_buf();
        profile.raw = raw;
        Ok(profile)
    }

    /// Load `<fixtures>/profiles/claude-code-<version>.json`.
    pub fn by_version(fixtures: impl AsRef<Path>, version: &str) -> Result<Profile> {
        let fixtures = fixtures.as_ref();
        let path = fixtures
            .join("profiles")
            .join(format!("claude-code-{version}.json"));
        if !path.exists() {
            let available = Self::all(fixtures)
                .map(|all| {
                    all.iter()
                        .map(|p| p.version.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            return Err(Error::ProfileNotFound {
                version: version.to_string(),
                dir: fixtures.join("profiles"),
                available,
            });
        }
        let validator = schema_validator(fixtures)?;
        Self::load_with(&validator, &path)
    }

    /// The newest profile in `<fixtures>/profiles`.
    pub fn latest(fixtures: impl AsRef<Path>) -> Result<Profile> {
        let fixtures = fixtures.as_ref();
        Self::all(fixtures)?
            .pop()
            .ok_or_else(|| Error::ProfileNotFound {
                version: "latest".into(),
                dir: fixtures.join("profiles"),
                available: String::new(),
            })
    }

    /// Every `claude-code-*.json` profile in `<fixtures>/profiles`, sorted by version (oldest
    /// first). Any invalid profile is an error: a broken fixture must not be skipped silently.
    pub fn all(fixtures: impl AsRef<Path>) -> Result<Vec<Profile>> {
        let fixtures = fixtures.as_ref();
        let dir = fixtures.join("profiles");
        let validator = schema_validator(fixtures)?;
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with("claude-code-") && name.ends_with(".json") {
                out.push(Self::load_with(&validator, &entry.path())?);
            }
        }
        out.sort_by(|a, b| compare_versions(&a.version, &b.version));
        Ok(out)
    }

    /// The Claude Code release this profile describes.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether `version` (a server's `protocolVersion` answer) is accepted by this client.
    pub fn accepts_protocol_version(&self, version: &str) -> bool {
        self.accepted_protocol_versions.iter().any(|v| v == version)
    }

    /// The era a negotiated version puts the connection in (ISO dates compare as strings).
    pub fn era_of(&self, negotiated: &str) -> crate::Era {
        if negotiated >= self.modern_era_from.as_str() {
            crate::Era::Modern
        } else {
            crate::Era::Legacy
        }
    }

    /// The client's message for an unsupported protocol version.
    pub fn unsupported_version_text(&self, version: &str) -> String {
        crate::render::fill_template(&self.unsupported_version_message, &[("version", version)])
    }

    /// The name the model sees for `tool` of server `server`: `mcp__<norm(server)>__<norm(tool)>`.
    pub fn model_tool_name(&self, server: &str, tool: &str) -> String {
        let re =
            regex::Regex::new(&self.tool_names.invalid_char_pattern).expect("validated at load");
        let norm = |s: &str| {
            re.replace_all(s, self.tool_names.replacement.as_str())
                .to_string()
        };
        format!(
            "{}{}{}{}",
            self.tool_names.prefix,
            norm(server),
            self.tool_names.separator,
            norm(tool)
        )
    }

    /// Whether a meta key passes the profile's key rule.
    pub fn meta_key_ok(&self, key: &str) -> bool {
        regex::Regex::new(&self.meta.key_pattern)
            .expect("validated at load")
            .is_match(key)
    }
}
