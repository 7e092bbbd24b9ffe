//! Recording a release: the probe scenarios, and turning a raw run into a committed,
//! redacted NDJSON recording.
//!
//! A recording file is `fixtures/recordings/<VERSION>/<SCENARIO>.ndjson`: a `header` line (client
//! version, arguments, launch environment names, exit), then every event in time order with
//! `t_ms` relative to the client's spawn, processes named `probe#0`, `probe#1`… instead of pids,
//! then the relevant debug-log lines (`ev: debug`). Redacted: sandbox paths, the probe binary
//! path, UUIDs, loopback ports, debug timestamps. Env values are never there (the probe records
//! shapes only).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use regex::Regex;
use serde_json::{json, Value};

use super::install::Claude;
use super::probe::DiscoverAnswer;
use super::session::{self, Mode, RunOutput, RunSpec, Server};

/// The server name the probe is registered under.
pub const PROBE_NAME: &str = "probe";

/// One recording scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub mode: Mode,
    pub discover: DiscoverAnswer,
    pub extra_env: Vec<(String, String)>,
    pub timeout: Duration,
    /// The probe's `--caps`.
    pub caps: &'static str,
    /// Client runs before the recorded one, in the same HOME.
    pub warm_up_runs: u32,
}

/// The scenarios every release is recorded with, cheapest first.
pub fn scenarios() -> Vec<Scenario> {
    let print = Mode::Print {
        prompt: "Reply to chat 1 with the reply tool.".into(),
    };
    let s = |name, mode: Mode, discover, extra_env: Vec<(String, String)>, secs| Scenario {
        name,
        mode,
        discover,
        extra_env,
        timeout: Duration::from_secs(secs),
        caps: "channel,permission",
        warm_up_runs: 0,
    };
    let interactive = Mode::Interactive {
        dev_channels: vec![PROBE_NAME.into()],
        watch_server: PROBE_NAME.into(),
    };
    vec![
        s(
            "mcp-list.discover-error",
            Mode::McpList,
            DiscoverAnswer::Error,
            vec![],
            60,
        ),
        s(
            "mcp-list.discover-result",
            Mode::McpList,
            DiscoverAnswer::Result,
            vec![],
            60,
        ),
        s(
            "mcp-list.discover-silent",
            Mode::McpList,
            DiscoverAnswer::Silent,
            vec![],
            60,
        ),
        // A second start in the same HOME after -32601: is the refusal remembered too?
        Scenario {
            warm_up_runs: 1,
            ..s(
                "mcp-list.discover-error-second-start",
                Mode::McpList,
                DiscoverAnswer::Error,
                vec![],
                60,
            )
        },
        // The same, started a second time in the same HOME: is the unanswered probe remembered?
        Scenario {
            warm_up_runs: 1,
            ..s(
                "mcp-list.discover-silent-second-start",
                Mode::McpList,
                DiscoverAnswer::Silent,
                vec![],
                60,
            )
        },
        s(
            "mcp-list.negotiation-legacy-env",
            Mode::McpList,
            DiscoverAnswer::Result,
            vec![("MCP_PROTOCOL_NEGOTIATION".into(), "legacy".into())],
            60,
        ),
        s(
            "print.discover-error",
            print.clone(),
            DiscoverAnswer::Error,
            vec![],
            90,
        ),
        s(
            "print.discover-result",
            print,
            DiscoverAnswer::Result,
            vec![],
            90,
        ),
        s(
            "interactive.gate",
            interactive.clone(),
            DiscoverAnswer::Error,
            vec![],
            60,
        ),
        // Negative controls: the gate must name the capability, and (where the client probes)
        // the era, so a passing gate position is not an accident of the offline setup.
        Scenario {
            caps: "channel-toplevel,permission",
            ..s(
                "interactive.gate-toplevel-capability",
                interactive.clone(),
                DiscoverAnswer::Error,
                vec![],
                60,
            )
        },
        s(
            "interactive.gate-discover-result",
            interactive,
            DiscoverAnswer::Result,
            vec![],
            60,
        ),
    ]
}

/// Runs `scenario` against `claude` with the probe at `probe_exe`, sandboxed under `work`.
pub async fn run_scenario(
    claude: &Claude,
    probe_exe: &Path,
    scenario: &Scenario,
    work: &Path,
) -> anyhow::Result<RunOutput> {
    let root = work.join(format!("{}-{}", claude.version, scenario.name));
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("clearing {}", root.display()))?;
    }
    std::fs::create_dir_all(&root)?;
    let log = RunOutput::events_path(&root);
    let discover = match scenario.discover {
        DiscoverAnswer::Error => "error",
        DiscoverAnswer::Result => "result",
        DiscoverAnswer::Silent => "silent",
    };
    let spec = RunSpec {
        mode: scenario.mode.clone(),
        servers: vec![Server {
            name: PROBE_NAME.into(),
            command: probe_exe.to_owned(),
            args: vec![
                "probe".into(),
                "--log".into(),
                log.display().to_string(),
                "--discover".into(),
                discover.into(),
                "--caps".into(),
                scenario.caps.into(),
            ],
        }],
        extra_env: scenario.extra_env.clone(),
        model_tool: format!("mcp__{PROBE_NAME}__reply"),
        model_input: json!({"chat_id": "1", "text": "hello from the fake model"}),
        timeout: scenario.timeout,
        warm_up_runs: scenario.warm_up_runs,
    };
    session::run(claude, &spec, &root).await
}

/// Replaces run-specific strings (paths, UUIDs, ports, timestamps) with placeholders.
pub struct Redactor {
    subs: Vec<(String, &'static str)>,
    uuid: Regex,
    port: Regex,
    stamp: Regex,
    msg_id: Regex,
}

impl Redactor {
    pub fn new(root: &Path, probe_exe: &Path) -> Self {
        let mut subs = vec![
            (probe_exe.display().to_string(), "<release-gate>"),
            (root.display().to_string(), "<sandbox>"),
        ];
        if let Ok(home) = std::env::var("HOME") {
            subs.push((home, "<home>"));
        }
        Self {
            subs,
            uuid: Regex::new(
                r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
            )
            .expect("static regex"),
            port: Regex::new(r"(127\.0\.0\.1|localhost):\d+").expect("static regex"),
            stamp: Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z").expect("static regex"),
            msg_id: Regex::new(r"\b(in|after) \d+(?:\.\d+)?(ms|s)\b").expect("static regex"),
        }
    }

    pub fn text(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for (from, to) in &self.subs {
            if !from.is_empty() {
                out = out.replace(from.as_str(), to);
            }
        }
        let out = self.uuid.replace_all(&out, "<uuid>");
        let out = self.port.replace_all(&out, "$1:<port>");
        self.stamp.replace_all(&out, "<time>").into_owned()
    }

    /// Like [`text`](Self::text), and also blurs durations (`in 10ms`) that change every run.
    pub fn debug_line(&self, s: &str) -> String {
        let out = self.text(s);
        let out = out.trim_start_matches("<time> ").to_owned();
        self.msg_id.replace_all(&out, "$1 <n>$2").into_owned()
    }

    pub fn value(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.value(x)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| (self.text(k), self.value(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Is this debug line about MCP servers, channels or the gate (what a recording keeps)?
pub fn relevant_debug_line(line: &str) -> bool {
    let l = line.to_lowercase();
    l.contains("mcp server \"")
        || l.contains("[mcp]")
        || l.contains("channel")
        || l.contains("mcp runtime")
        || l.contains("protocol")
}

/// Normalises a run into recording lines.
pub fn normalise(claude: &Claude, scenario: &str, run: &RunOutput, probe_exe: &Path) -> Vec<Value> {
    let red = Redactor::new(&run.root, probe_exe);
    let t0 = run
        .events
        .iter()
        .find(|e| e["ev"] == "client_spawn")
        .and_then(|e| e["mono_ms"].as_f64())
        .unwrap_or(0.0);
    // Name processes by first appearance: probe#0, probe#1 (watchers carry the probe's pid).
    let mut names: BTreeMap<u64, String> = BTreeMap::new();
    for e in &run.events {
        if e["src"] == "probe" && e["ev"] == "start" {
            let pid = e["pid"].as_u64().unwrap_or(0);
            let n = names.len();
            names.entry(pid).or_insert_with(|| format!("probe#{n}"));
        }
    }
    let mut lines = vec![json!({
        "ev": "header",
        "client_version": claude.version,
        "client_kind": claude.kind,
        "scenario": scenario,
        "args": run.args.iter().map(|a| red.text(a)).collect::<Vec<_>>(),
        "launch_env": run.launch_env,
        "exit_code": run.exit_code,
        "timed_out": run.timed_out,
    })];
    let mut events: Vec<&Value> = run.events.iter().collect();
    events.sort_by(|a, b| {
        a["mono_ms"]
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&b["mono_ms"].as_f64().unwrap_or(0.0))
    });
    for e in events {
        let mut out = serde_json::Map::new();
        let t = e["mono_ms"].as_f64().unwrap_or(t0) - t0;
        out.insert("t_ms".into(), json!(t.round() as i64));
        let src = e["src"].as_str().unwrap_or("?");
        let who = match src {
            "probe" => names
                .get(&e["pid"].as_u64().unwrap_or(0))
                .cloned()
                .unwrap_or_else(|| "probe#?".into()),
            "watch" => names
                .get(&e["probe_pid"].as_u64().unwrap_or(0))
                .cloned()
                .unwrap_or_else(|| "probe#?".into()),
            other => other.to_owned(),
        };
        out.insert("who".into(), json!(who));
        for (k, v) in e.as_object().into_iter().flatten() {
            if matches!(k.as_str(), "mono_ms" | "src" | "pid" | "ppid" | "probe_pid") {
                continue;
            }
            if k == "args" && src == "probe" {
                continue; // our own argv: sandbox paths, no information
            }
            out.insert(k.clone(), red.value(v));
        }
        lines.push(Value::Object(out));
    }
    for l in run.debug.iter().filter(|l| relevant_debug_line(l)) {
        lines.push(json!({"ev": "debug", "line": red.debug_line(l)}));
    }
    lines
}

/// Writes recording lines as NDJSON to `path`.
pub fn write_ndjson(path: &Path, lines: &[Value]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut text = String::new();
    for l in lines {
        text.push_str(&serde_json::to_string(l)?);
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Reads a recording directory: scenario name → lines.
pub fn read_dir(dir: &Path) -> anyhow::Result<BTreeMap<String, Vec<Value>>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path: PathBuf = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("ndjson") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let lines = super::events::read_events(&path)?;
        out.insert(name, lines);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_blanks_run_specific_strings_and_keeps_facts() {
        let red = Redactor::new(Path::new("/tmp/sbx"), Path::new("/opt/bin/release-gate"));
        assert_eq!(
            red.text(
                "/opt/bin/release-gate probe --log /tmp/sbx/events.ndjson \
                 6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f http://127.0.0.1:4567/v1"
            ),
            "<release-gate> probe --log <sandbox>/events.ndjson <uuid> http://127.0.0.1:<port>/v1"
        );
        assert_eq!(
            red.debug_line(
                "2026-11-21T20:44:53.780Z [DEBUG] MCP server \"probe\": Successfully connected \
                 (transport: stdio) in 10ms"
            ),
            "[DEBUG] MCP server \"probe\": Successfully connected (transport: stdio) in <n>ms"
        );
        // A fact (the connection timeout) is not a per-run duration.
        assert!(red
            .debug_line("[DEBUG] MCP server \"p\": Starting connection with timeout of 30000ms")
            .ends_with("timeout of 30000ms"));
        let v = red.value(&json!({"/tmp/sbx/k": ["/tmp/sbx/a", 1, {"x": "2026-01-02T03:04:05Z"}]}));
        assert_eq!(
            v,
            json!({"<sandbox>/k": ["<sandbox>/a", 1, {"x": "<time>"}]})
        );
    }

    #[test]
    fn relevant_debug_lines_are_about_mcp_channels_or_protocol() {
        assert!(relevant_debug_line(
            "[DEBUG] MCP server \"a\": Channel notifications skipped: x"
        ));
        assert!(relevant_debug_line("[DEBUG] [MCP] Server \"a\" connected"));
        assert!(!relevant_debug_line(
            "[DEBUG] Writing to temp file: /x/.claude.json.tmp"
        ));
    }
}
