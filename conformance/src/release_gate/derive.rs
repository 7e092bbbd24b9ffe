//! Deriving a `fixtures/profiles/claude-code-<VERSION>.json` profile from a release's recordings.
//!
//! A recording shows the client's wire behaviour (identity, capabilities, the discover probe and
//! its timeout, ids, the `tools/call` `_meta`, the env it adds, shutdown timing, the gate's reason
//! text and log format). It cannot show what needs a logged-in account or a delivered event
//! (rendering, meta-key handling, permission relay, caps). Those fields start from the newest
//! committed profile and are rolled back along the CHANNELS.md §6 timeline for older releases;
//! every such field is named in `source.notes`, so a reader knows which facts are observed.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use regex::Regex;
use serde_json::{json, Value};

/// A release number `major.minor.patch`, ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let parts: Vec<u32> = s
            .split('.')
            .map(|p| p.parse::<u32>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("version {s:?} is not major.minor.patch"))?;
        match parts[..] {
            [a, b, c] => Ok(Self(a, b, c)),
            _ => bail!("version {s:?} is not major.minor.patch"),
        }
    }
    fn at_least(self, s: &str) -> bool {
        self >= Self::parse(s).expect("static version")
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// Committed profiles in `dir`: version → JSON.
pub fn committed_profiles(dir: &Path) -> anyhow::Result<BTreeMap<Version, Value>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(v) = name
            .strip_prefix("claude-code-")
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        let Ok(version) = Version::parse(v) else {
            continue;
        };
        let text = std::fs::read_to_string(&path)?;
        let value: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        out.insert(version, value);
    }
    Ok(out)
}

/// Facts read off the recordings of one release.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub client_info: Option<Value>,
    pub client_capabilities: Option<Value>,
    pub initialize_id: Option<i64>,
    pub initialize_protocol_version: Option<String>,
    pub connect_timeout_ms: Option<i64>,
    /// `None`: no probe seen; `Some(frame)`: the discover request.
    pub discover: Option<Value>,
    /// The discover probe's `_meta` capabilities per entrypoint (`sdk-cli` from `-p`, `cli`
    /// from the interactive run).
    pub discover_caps_by_entrypoint: BTreeMap<String, Value>,
    pub discover_timeout_ms: Option<i64>,
    /// Whether a second start in the same HOME skipped the probe after it went unanswered.
    pub unanswered_probe_remembered: Option<bool>,
    /// Whether `MCP_PROTOCOL_NEGOTIATION=legacy` suppressed the probe.
    pub discover_disabled_by_env: Option<bool>,
    pub tools_call: Option<Value>,
    /// name → shape, for variables the client added, per entrypoint mode.
    pub env_print: BTreeMap<String, String>,
    pub env_interactive: BTreeMap<String, String>,
    pub env_list: BTreeMap<String, String>,
    /// (SIGINT→SIGTERM, SIGTERM→death) in ms.
    pub shutdown_ms: Option<(i64, i64)>,
    pub gate_line: Option<String>,
    /// Reasons seen in the negative controls: top-level capability, discover result.
    pub capability_reason: Option<String>,
    pub era_reason: Option<String>,
    pub era_in_debug: bool,
    pub modern_era_on_discover_result: Option<bool>,
    /// How a modern-era result without `resultType` was treated (`-p` and interactive runs with
    /// a discover result): the profile's `modern_result_type`, or `None` when not seen.
    pub modern_result_type: Option<Value>,
}

fn recvs(lines: &[Value]) -> impl Iterator<Item = (&Value, i64)> {
    lines
        .iter()
        .filter(|e| e["ev"] == "recv")
        .map(|e| (&e["frame"], e["t_ms"].as_i64().unwrap_or(0)))
}

fn added_env(lines: &[Value]) -> BTreeMap<String, String> {
    let launch: Vec<&str> = lines
        .first()
        .and_then(|h| h["launch_env"].as_array())
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let Some(start) = lines.iter().find(|e| e["ev"] == "start") else {
        return BTreeMap::new();
    };
    start["env"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !launch.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
        .collect()
}

/// Reads the facts out of a release's recordings (scenario name → lines).
pub fn observe(recs: &BTreeMap<String, Vec<Value>>) -> anyhow::Result<Observed> {
    let mut o = Observed::default();
    let print = recs
        .get("print.discover-error")
        .context("recording print.discover-error is missing")?;
    for (frame, _) in recvs(print) {
        match frame["method"].as_str() {
            Some("initialize") => {
                o.client_info = Some(frame["params"]["clientInfo"].clone());
                o.client_capabilities = Some(frame["params"]["capabilities"].clone());
                o.initialize_id = frame["id"].as_i64();
                o.initialize_protocol_version = frame["params"]["protocolVersion"]
                    .as_str()
                    .map(str::to_owned);
            }
            Some("server/discover") => o.discover = Some(frame.clone()),
            Some("tools/call") if o.tools_call.is_none() => o.tools_call = Some(frame.clone()),
            _ => {}
        }
    }
    let timeout_re = Regex::new(r"Starting connection with timeout of (\d+)ms").expect("static");
    for l in print.iter().filter(|e| e["ev"] == "debug") {
        let line = l["line"].as_str().unwrap_or("");
        if let Some(c) = timeout_re.captures(line) {
            o.connect_timeout_ms = c[1].parse().ok();
        }
        if line.contains("\"protocolEra\"") {
            o.era_in_debug = true;
        }
    }
    o.env_print = added_env(print);
    // Shutdown: SIGINT → SIGTERM → death of the probe, from the -p run.
    let at = |ev: &str, sig: Option<&str>| {
        print
            .iter()
            .find(|e| e["ev"] == ev && sig.is_none_or(|s| e["sig"] == s))
            .and_then(|e| e["t_ms"].as_i64())
    };
    if let (Some(int), Some(term), Some(gone)) = (
        at("signal", Some("SIGINT")),
        at("signal", Some("SIGTERM")),
        at("probe_gone", None),
    ) {
        o.shutdown_ms = Some((term - int, gone - term));
    }
    if let Some(list) = recs.get("mcp-list.discover-error") {
        o.env_list = added_env(list);
    }
    if let Some(silent) = recs.get("mcp-list.discover-silent") {
        let mut disc = None;
        let mut init = None;
        for (frame, t) in recvs(silent) {
            match frame["method"].as_str() {
                Some("server/discover") if disc.is_none() => disc = Some(t),
                Some("initialize") if init.is_none() => init = Some(t),
                _ => {}
            }
        }
        if let (Some(d), Some(i)) = (disc, init) {
            o.discover_timeout_ms = Some(i - d);
        }
    }
    if let Some(second) = recs.get("mcp-list.discover-silent-second-start") {
        o.unanswered_probe_remembered =
            Some(!recvs(second).any(|(f, _)| f["method"] == "server/discover"));
    }
    if let Some(env) = recs.get("mcp-list.negotiation-legacy-env") {
        let probed = recvs(env).any(|(f, _)| f["method"] == "server/discover");
        o.discover_disabled_by_env = Some(!probed);
    }
    if let Some(result) = recs.get("mcp-list.discover-result") {
        let initialized = recvs(result).any(|(f, _)| f["method"] == "initialize");
        let probed = recvs(result).any(|(f, _)| f["method"] == "server/discover");
        o.modern_era_on_discover_result = probed.then_some(!initialized);
    }
    for (scenario, entrypoint) in [
        ("print.discover-error", "sdk-cli"),
        ("interactive.gate", "cli"),
    ] {
        let caps = recs.get(scenario).and_then(|lines| {
            recvs(lines)
                .find(|(f, _)| f["method"] == "server/discover")
                .map(|(f, _)| {
                    f["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"].clone()
                })
        });
        if let Some(caps) = caps.filter(|c| !c.is_null()) {
            o.discover_caps_by_entrypoint
                .insert(entrypoint.into(), caps);
        }
    }
    let reason = |name: &str| -> Option<String> {
        recs.get(name)?
            .iter()
            .filter(|e| e["ev"] == "debug")
            .filter_map(|e| e["line"].as_str())
            .find_map(|l| {
                l.split_once("Channel notifications skipped: ")
                    .map(|(_, r)| r.to_owned())
            })
    };
    o.modern_result_type = observe_modern_result_type(recs);
    o.capability_reason = reason("interactive.gate-toplevel-capability");
    o.era_reason = reason("interactive.gate-discover-result");
    if let Some(inter) = recs.get("interactive.gate") {
        o.env_interactive = added_env(inter);
        o.gate_line = inter
            .iter()
            .filter(|e| e["ev"] == "debug")
            .filter_map(|e| e["line"].as_str())
            .find(|l| l.contains("Channel notifications"))
            .map(|l| {
                l.split_once("] ")
                    .map(|(_, rest)| rest)
                    .unwrap_or(l)
                    .to_owned()
            });
    }
    Ok(o)
}

/// `modern_result_type` from the discover-result runs: 2.1.300 logs `tools/list failed (Invalid
/// result for tools/list: missing required resultType …); retrying` and re-sends the request;
/// 2.1.330 logs `… result omits required fields … filled in resultType="complete"`.
fn observe_modern_result_type(recs: &BTreeMap<String, Vec<Value>>) -> Option<Value> {
    let scenarios = ["print.discover-result", "interactive.gate-discover-result"];
    let debug = |name: &str| -> Vec<String> {
        recs.get(name)
            .into_iter()
            .flatten()
            .filter(|e| e["ev"] == "debug")
            .filter_map(|e| e["line"].as_str().map(str::to_owned))
            .collect()
    };
    let reject_re = Regex::new(
        r#"MCP server "[^"]+": (\S+) failed \((Invalid result for \S+: missing required resultType.*)\); retrying in"#,
    )
    .expect("static");
    let fill_re = Regex::new(
        r#"MCP server "[^"]+": (\S+) result omits required fields although the server negotiated"#,
    )
    .expect("static");
    let print = debug(scenarios[0]);
    if let Some(c) = print.iter().find_map(|l| reject_re.captures(l)) {
        let method = c[1].to_owned();
        let message = c[2].replace(&format!("for {method}:"), "for {method}:");
        let times = |name: &str| -> Vec<i64> {
            recvs(recs.get(name).map(Vec::as_slice).unwrap_or_default())
                .filter(|(f, _)| f["method"] == method.as_str())
                .map(|(_, t)| t)
                .collect()
        };
        let attempts = times(scenarios[0]).len();
        // The debug log redacts the delay: take the smallest gap seen at each step across
        // the runs, rounded to 50 ms.
        let mut gaps: Vec<i64> = Vec::new();
        for name in scenarios {
            let t = times(name);
            for (i, w) in t.windows(2).enumerate() {
                let g = w[1] - w[0];
                match gaps.get_mut(i) {
                    Some(x) => *x = (*x).min(g),
                    None => gaps.push(g),
                }
            }
        }
        let gaps: Vec<i64> = gaps
            .into_iter()
            .take(attempts.saturating_sub(1))
            .map(|g| round_to(g, 50))
            .collect();
        return Some(json!({
            "when_missing": "reject",
            "methods": [method],
            "reject_message": message,
            "attempts": attempts,
            "retry_gaps_ms": gaps,
        }));
    }
    let mut methods: Vec<String> = Vec::new();
    for name in scenarios {
        for l in debug(name) {
            if let Some(c) = fill_re.captures(&l) {
                if !methods.contains(&c[1].to_owned()) {
                    methods.push(c[1].to_owned());
                }
            }
        }
    }
    (!methods.is_empty()).then(|| json!({"when_missing": "fill_in", "methods": methods}))
}

fn round_to(ms: i64, step: i64) -> i64 {
    ((ms + step / 2) / step) * step
}

/// Rolls `p` (a copy of a newer profile) back to what CHANNELS.md §6 says `v` had, for fields a
/// recording cannot show. Returns the notes naming what was set this way.
fn apply_timeline(p: &mut Value, v: Version) -> Vec<String> {
    let mut notes = Vec::new();
    let mut note = |s: &str| {
        notes.push(format!(
            "from the CHANNELS.md §6 timeline, not observed: {s}"
        ))
    };

    if !v.at_least("2.1.81") {
        p["permission"] = Value::Null;
        note("permission = null (relay arrives in 2.1.81)");
    } else if p["permission"].is_object() {
        if !v.at_least("2.1.290") {
            p["permission"]["id"]["generation"] = json!("hash_of_tool_use_id");
            note("permission.id.generation = hash_of_tool_use_id (random from 2.1.290)");
        }
        if !v.at_least("2.1.330") {
            p["permission"]["extra_request_params"] = json!([]);
            note("permission.extra_request_params = [] (2.1.330 may add tool_kind, mcp_server, mcp_skill)");
        }
        if !v.at_least("2.1.234") {
            p["permission"]["requires_registered"] = json!(false);
            note("permission.requires_registered = false (only admitted servers from 2.1.234)");
        }
    }
    if !v.at_least("2.1.84") {
        p["caps"] = Value::Null;
        note("caps = null (2 KB caps arrive in 2.1.84)");
    } else if !v.at_least("2.1.330") {
        p["caps"] = json!({"instructions_max_chars": 2048, "tool_description_max_chars": 2048,
            "recommended_max_bytes": 2048});
        note("caps = 2048 (the 2.1.84 notes say 2 KB; 4,096 characters is only known for 2.1.330)");
    }
    let stdout = if !v.at_least("2.1.105") {
        "hang"
    } else if !v.at_least("2.1.110") {
        "disconnect"
    } else {
        "ignore"
    };
    p["stdout"]["non_json_line"] = json!(stdout);
    note(&format!("stdout.non_json_line = {stdout}"));
    if !v.at_least("2.1.113") {
        p["meta"]["dropped_key_warning"] = Value::Null;
        note("meta.dropped_key_warning = null (warning from 2.1.113)");
    }
    if !v.at_least("2.1.169") {
        p["render"]["neutralise"] = Value::Null;
        note("render.neutralise = null (closing-tag neutralisation from 2.1.169)");
    } else if p["render"]["neutralise"].is_object() {
        let n = &mut p["render"]["neutralise"];
        if !v.at_least("2.1.195") {
            n["terminators"] = json!(["gt", "whitespace", "slash"]);
            note("render.neutralise.terminators without end (end of string from 2.1.195)");
        }
        if !v.at_least("2.1.232") {
            n["openers"] = json!(["<"]);
            n["slashes"] = json!(["/"]);
            n["filler_whitespace"] = json!(false);
            n["filler_chars"] = json!([]);
            n["ignorable_in_name"] = json!([]);
            note("render.neutralise: no look-alikes, fillers or zero-width (from 2.1.232)");
        }
        if !v.at_least("2.1.281") {
            n["tags"] = json!([{"name": "channel", "closing": true, "opening": false}]);
            note("render.neutralise.tags = channel only (more tags from 2.1.281)");
        }
    }
    if let Some(checks) = p["gate"]["checks"].as_array_mut() {
        if !v.at_least("2.1.250") {
            checks.retain(|c| c["check"] != "era");
            note("gate.checks without era (era check from 2.1.250)");
        }
    }
    if !v.at_least("2.1.290") {
        if let Some(gate) = p["gate"].as_object_mut() {
            if gate.remove("recheck_feature_at_delivery").is_some() {
                note("gate.recheck_feature_at_delivery absent (delivery-time availability check from 2.1.290)");
            }
        }
    }
    if !v.at_least("2.1.128") {
        p["gate"]["first_party_providers"] = json!(["anthropic"]);
        note("gate.first_party_providers = anthropic (Console API keys from 2.1.128)");
    }
    if !v.at_least("2.1.84") {
        p["gate"]["org_allowlist_supported"] = json!(false);
        note("gate.org_allowlist_supported = false (allowedChannelPlugins from 2.1.84)");
    }
    if !v.at_least("2.1.187") {
        p["tools_call"]["idle_timeout_ms"] = Value::Null;
        note("tools_call.idle_timeout_ms = null (30 min idle cut from 2.1.187)");
    }
    notes
}

fn is_secret_name(name: &str) -> bool {
    name.contains("TOKEN") || name.contains("SECRET") || name.ends_with("_KEY")
}

/// The profile's env entry for a variable the client added, from the value shape the probe saw.
fn env_entry(name: &str, shape: &str, v: Version, notes: &mut Vec<String>) -> Option<Value> {
    let dotted = v.to_string();
    let dashed = format!("{}-{}-{}", v.0, v.1, v.2);
    let value = match (name, shape) {
        ("CLAUDE_CODE_ENTRYPOINT", _) => json!({"kind": "entrypoint"}),
        ("CLAUDE_CODE_SESSION_ID", "uuid") => json!({"kind": "session_uuid"}),
        (n, _) if is_secret_name(n) => {
            return Some(json!({"name": name, "value": {"kind": "random_secret"}, "secret": true}))
        }
        (_, "cwd") => json!({"kind": "project_dir"}),
        (_, "uuid") => json!({"kind": "random_uuid"}),
        (_, "path") => json!({"kind": "temp_path"}),
        (_, s) if s.starts_with('=') => {
            let lit = &s[1..];
            if lit.contains(&dashed) {
                json!({"kind": "template", "value": lit.replace(&dashed, "{major}-{minor}-{patch}")})
            } else if lit.contains(&dotted) {
                json!({"kind": "template", "value": lit.replace(&dotted, "{version}")})
            } else {
                json!({"kind": "literal", "value": lit})
            }
        }
        _ => {
            notes.push(format!(
                "env {name} (value shape: {shape}) is added by the client but its value kind is unknown; left out"
            ));
            return None;
        }
    };
    Some(json!({"name": name, "value": value}))
}

/// Information about the recorded binary for `source.binary`.
pub fn binary_identity(claude: &super::install::Claude) -> Value {
    let file = claude
        .pre_args
        .first()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| claude.program.clone());
    let size = std::fs::metadata(&file).map(|m| m.len()).ok();
    let sha256 = std::process::Command::new("sha256sum")
        .arg(&file)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()
                .map(str::to_owned)
        });
    json!({
        "package": "@anthropic-ai/claude-code",
        "version": claude.version,
        "platform": if claude.kind == "native" { "linux-x64 (native)" } else { "cli.js (node)" },
        "file": file.file_name().map(|n| n.to_string_lossy().into_owned()),
        "size": size,
        "sha256": sha256,
    })
}

/// Builds the profile of `version` from its recordings, starting from `base` (the newest
/// committed profile) for what recordings cannot show.
pub fn derive(
    version: &str,
    recs: &BTreeMap<String, Vec<Value>>,
    base: &Value,
    binary: Option<Value>,
) -> anyhow::Result<Value> {
    let v = Version::parse(version)?;
    let o = observe(recs)?;
    let mut p = base.clone();
    let mut notes = apply_timeline(&mut p, v);
    let mut observed: Vec<&str> = Vec::new();

    p["version"] = json!(version);
    if let Some(ci) = &o.client_info {
        p["client_info"] = ci.clone();
        observed.push("client_info");
    }
    if let Some(caps) = &o.client_capabilities {
        p["client_capabilities"] = caps.clone();
        observed.push("client_capabilities");
    }
    if let Some(id) = o.initialize_id {
        p["initialize"]["id"] = json!(id);
    }
    if let Some(pv) = &o.initialize_protocol_version {
        p["initialize"]["protocol_version"] = json!(pv);
    }
    if let Some(t) = o.connect_timeout_ms {
        p["initialize"]["timeout_ms"] = json!(t);
    }
    observed.push("initialize");

    match &o.discover {
        None => {
            p["discover"] = json!({"enabled": false});
        }
        Some(frame) => {
            let meta = frame["params"]["_meta"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let key = |suffix: &str| {
                meta.keys()
                    .find(|k| k.ends_with(suffix))
                    .cloned()
                    .unwrap_or_default()
            };
            let pv = meta
                .iter()
                .find(|(k, _)| k.ends_with("/protocolVersion"))
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Null);
            let mut d = json!({
                "enabled": true,
                "method": frame["method"],
                "id": frame["id"],
                "protocol_version": pv,
                "meta_keys": {
                    "protocol_version": key("/protocolVersion"),
                    "client_info": key("/clientInfo"),
                    "client_capabilities": key("/clientCapabilities"),
                },
                "timeout_ms": o.discover_timeout_ms.map(|t| round_to(t, 100)).unwrap_or(3000),
                "disable_env": if o.discover_disabled_by_env == Some(true) {
                    json!({"name": "MCP_PROTOCOL_NEGOTIATION", "value": "legacy"})
                } else {
                    Value::Null
                },
                "remember_unanswered_days": base["discover"]["remember_unanswered_days"],
            });
            // Capabilities announced in the probe that differ from initialize's, by entrypoint.
            let differing: serde_json::Map<String, Value> = o
                .discover_caps_by_entrypoint
                .iter()
                .filter(|(_, caps)| Some(*caps) != o.client_capabilities.as_ref())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !differing.is_empty() {
                d["client_capabilities_by_entrypoint"] = Value::Object(differing);
            }
            if o.discover_timeout_ms.is_none() {
                notes.push(
                    "discover.timeout_ms not measured (no silent-discover recording); 3000 assumed"
                        .into(),
                );
            }
            notes.push(
                "discover.remember_unanswered_days: from the base profile, not observed".into(),
            );
            if o.modern_era_on_discover_result == Some(false) {
                notes.push(
                    "a discover result did NOT lead to the modern era in this release".into(),
                );
                d["enabled"] = json!(true);
            }
            p["discover"] = d;
        }
    }
    observed.push("discover");

    match &o.modern_result_type {
        Some(rule) => {
            p["modern_result_type"] = rule.clone();
            observed.push("modern_result_type (a modern-era tools/list result without resultType)");
            if rule["when_missing"] == "reject" {
                notes.push(
                    "modern_result_type.retry_gaps_ms: the debug log redacts the delay; the smallest \
                     gap between re-sent requests across the -p and interactive runs, rounded to 50 ms"
                        .into(),
                );
            }
        }
        None => {
            p["modern_result_type"] = Value::Null;
            notes.push(
                "modern_result_type = null: no modern-era result was seen in this release's recordings"
                    .into(),
            );
        }
    }

    if let Some(call) = &o.tools_call {
        let meta = call["params"]["_meta"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let key = meta
            .iter()
            .find(|(_, v)| v.as_str().is_some_and(|s| s.starts_with("toolu_")))
            .map(|(k, _)| k.clone());
        if let Some(key) = key {
            p["tools_call"]["tool_use_id_meta_key"] = json!(key);
        }
        p["tools_call"]["progress_token"] = if meta.get("progressToken") == Some(&call["id"]) {
            json!("request_id")
        } else {
            json!("none")
        };
        observed.push("tools_call (meta key, progress token)");
    } else {
        notes.push("no tools/call was recorded: tools_call from the base profile".into());
    }

    // Env: what the client added (union of -p and interactive; the entrypoint differs by mode).
    let mut env = Vec::new();
    let mut names: BTreeMap<&String, &String> = o.env_print.iter().collect();
    for (k, v) in &o.env_interactive {
        names.entry(k).or_insert(v);
    }
    let mut secrets: Vec<String> = p["secret_env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    for (name, shape) in names {
        if is_secret_name(name) && !secrets.contains(name) {
            secrets.push(name.clone());
        }
        if let Some(mut e) = env_entry(name, shape, v, &mut notes) {
            if !o.env_list.is_empty() && !o.env_list.contains_key(name) {
                e["note"] = json!("present in -p and interactive, not in `claude mcp list`");
            }
            env.push(e);
        }
    }
    p["env"] = Value::Array(env);
    p["secret_env"] = json!(secrets);
    observed.push("env");

    if let Some((int_term, term_kill)) = o.shutdown_ms {
        p["shutdown"]["steps"] = json!([
            {"action": "signal", "signal": "SIGINT", "wait_ms": round_to(int_term, 100)},
            {"action": "signal", "signal": "SIGTERM", "wait_ms": round_to(term_kill, 100)},
            {"action": "signal", "signal": "SIGKILL", "wait_ms": 0},
            {"action": "close_stdin", "wait_ms": 0},
        ]);
        observed.push("shutdown (signals and waits; stdin close after SIGKILL is not observable)");
    }

    if let Some(line) = &o.gate_line {
        let re = Regex::new(r#"^MCP server "([^"]+)": Channel notifications skipped: (.*)$"#)
            .expect("static");
        if let Some(c) = re.captures(line) {
            let reason = c[2].to_owned();
            p["gate"]["log_skipped"] =
                json!("MCP server \"{name}\": Channel notifications skipped: {reason}");
            if let Some(checks) = p["gate"]["checks"].as_array_mut() {
                if let Some(feature) = checks.iter_mut().find(|c| c["check"] == "feature") {
                    if feature["reason"] != reason.as_str() {
                        notes.push(format!(
                            "gate feature reason differs from the base profile: observed {reason:?}"
                        ));
                        feature["reason"] = json!(reason);
                    }
                }
            }
            observed.push("gate.log_skipped and the feature (availability) reason");
            let checks = p["gate"]["checks"].as_array_mut();
            let checks = checks.map(|c| c.as_mut_slice()).unwrap_or_default();
            if let Some(r) = &o.capability_reason {
                if let Some(c) = checks.iter_mut().find(|c| c["check"] == "capability") {
                    if c["reason"] != r.as_str() {
                        notes.push(format!(
                            "gate capability reason differs from the base: observed {r:?}"
                        ));
                        c["reason"] = json!(r);
                    }
                    observed.push("gate capability reason (top-level claude/channel)");
                }
            }
            if let Some(r) = &o.era_reason {
                match checks.iter_mut().find(|c| c["check"] == "era") {
                    Some(c) if r != &reason => {
                        if c["reason"] != r.as_str() {
                            notes.push(format!("gate era reason differs from the base: observed {r:?}"));
                            c["reason"] = json!(r);
                        }
                        observed.push("gate era reason (discover answered with a result)");
                    }
                    None if r != &reason => notes.push(format!(
                        "a discover result produced gate reason {r:?} but the profile has no era check"
                    )),
                    _ => {}
                }
            }
        } else {
            notes.push(format!("unexpected gate line: {line}"));
        }
    } else {
        notes.push("no gate line recorded (interactive run missing or failed)".into());
    }

    let mut all_notes = vec![format!("observed on the wire: {}", observed.join("; "))];
    all_notes.extend(notes);
    all_notes.push(format!(
        "every other field: from the base profile {} (not observable offline)",
        base["version"].as_str().unwrap_or("?")
    ));
    p["source"] = json!({
        "kind": "mixed",
        "description": format!(
            "Derived by `release-gate derive` from fixtures/recordings/{version}/ (real Claude Code {version}, \
             offline, loopback fake API, recording probe). Fields not observable offline come from the \
             newest committed profile rolled back along the CHANNELS.md timeline; see notes."
        ),
        "recorded_at": time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .ok(),
        "binary": binary.unwrap_or(Value::Null),
        "notes": all_notes,
    });
    Ok(p)
}

/// Validates `profile` against the JSON Schema at `schema_path`; errors name the failing paths.
pub fn validate(profile: &Value, schema_path: &Path) -> anyhow::Result<()> {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(schema_path)
            .with_context(|| format!("reading {}", schema_path.display()))?,
    )?;
    let validator = jsonschema::validator_for(&schema)
        .map_err(|e| anyhow::anyhow!("profile schema does not compile: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(profile)
        .map(|e| format!("{}: {}", e.instance_path, e))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        bail!(
            "profile violates {}:\n  {}",
            schema_path.display(),
            errors.join("\n  ")
        )
    }
}
