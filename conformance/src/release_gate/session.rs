//! One run of a real Claude Code release in a throw-away sandbox, offline.
//!
//! Every run gets a fresh `HOME` and project folder, a cleared environment (so the environment a
//! server sees minus the one we launched the client with is exactly what the client added), a
//! fake API key and `ANTHROPIC_BASE_URL` pointing at the loopback [`fake_api`](super::fake_api),
//! and the switches that stop non-essential traffic (CHANNELS.md §5). The MCP servers are
//! registered in the seeded `~/.claude.json` (for `claude mcp list`, which has no `--mcp-config`)
//! and through `--mcp-config --strict-mcp-config` for the other modes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};

use super::events::{read_events, EventLog};
use super::fake_api;
use super::install::Claude;
use super::pty;

/// The fake key: shaped like a real one so no client-side format check trips, obviously fake.
pub const FAKE_API_KEY: &str = "sk-ant-api03-release-gate-offline-fake-key-0000000000AA";

/// How the client is run.
#[derive(Debug, Clone)]
pub enum Mode {
    /// `claude mcp list`: connects to every server once (health check) and exits.
    McpList,
    /// `claude -p PROMPT`: one model turn against the fake API.
    Print { prompt: String },
    /// Interactive `claude` under a pseudo-terminal, with
    /// `--dangerously-load-development-channels server:NAME` for every name given; the run ends
    /// when the debug log shows a gate line for `watch_server` (or at the timeout).
    Interactive {
        dev_channels: Vec<String>,
        watch_server: String,
    },
}

/// An MCP server to register.
#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    pub command: PathBuf,
    pub args: Vec<String>,
}

/// Everything about one run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub mode: Mode,
    pub servers: Vec<Server>,
    /// Extra client environment (e.g. `MCP_PROTOCOL_NEGOTIATION=legacy`).
    pub extra_env: Vec<(String, String)>,
    /// Tool the fake model calls, e.g. `mcp__probe__reply`, and its input.
    pub model_tool: String,
    pub model_input: Value,
    /// Whole-run limit; the client is killed after it.
    pub timeout: Duration,
    /// Client runs in the same sandbox (same HOME) before the recorded one, e.g. to see what
    /// the client remembers between starts. Their events are kept in `warmup-events.ndjson`.
    pub warm_up_runs: u32,
}

/// What a run left behind.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The sandbox root (paths in the events start with it).
    pub root: PathBuf,
    /// Every event: runner, probe(s), watcher(s), fake API, in file order.
    pub events: Vec<Value>,
    /// The client's debug log, line by line.
    pub debug: Vec<String>,
    pub stdout: String,
    pub stderr: String,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub elapsed: Duration,
    /// Client arguments as given (absolute sandbox paths included).
    pub args: Vec<String>,
    /// Names of the environment the client was launched with.
    pub launch_env: Vec<String>,
}

impl RunOutput {
    /// The sandbox's event log path (probes must be told to write there).
    pub fn events_path(root: &Path) -> PathBuf {
        root.join("events.ndjson")
    }

    /// Debug lines mentioning `MCP server "NAME"` (the per-server lines).
    pub fn debug_for(&self, name: &str) -> Vec<&str> {
        let needle = format!("MCP server \"{name}\"");
        self.debug
            .iter()
            .filter(|l| l.contains(&needle))
            .map(String::as_str)
            .collect()
    }
}

fn seed_claude_json(home: &Path, project: &Path, servers: Option<&[Server]>) -> anyhow::Result<()> {
    let key_tail = &FAKE_API_KEY[FAKE_API_KEY.len() - 20..];
    let mut doc = json!({
        "hasCompletedOnboarding": true,
        "lastOnboardingVersion": "9.9.9",
        "numStartups": 5,
        "hasSeenTasksHint": true,
        "bypassPermissionsModeAccepted": false,
        "customApiKeyResponses": {"approved": [key_tail], "rejected": []},
        "projects": {
            project.display().to_string(): {
                "hasTrustDialogAccepted": true,
                "hasCompletedProjectOnboarding": true,
                "allowedTools": [],
            }
        },
    });
    if let Some(servers) = servers {
        doc["mcpServers"] = mcp_servers(servers);
    }
    let path = home.join(".claude.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&doc)?)
        .with_context(|| format!("writing {}", path.display()))
}

fn mcp_servers(servers: &[Server]) -> Value {
    let mut map = serde_json::Map::new();
    for s in servers {
        map.insert(
            s.name.clone(),
            json!({"type": "stdio", "command": s.command, "args": s.args, "env": {}}),
        );
    }
    Value::Object(map)
}

/// Runs the client once as `spec` says, in a fresh sandbox under `root` (created; must not exist
/// or be empty).
pub async fn run(claude: &Claude, spec: &RunSpec, root: &Path) -> anyhow::Result<RunOutput> {
    let home = root.join("home");
    let project = root.join("project");
    std::fs::create_dir_all(&home)?;
    std::fs::create_dir_all(&project)?;
    let events_path = RunOutput::events_path(root);
    let debug_path = root.join("debug.log");
    let runner_log = EventLog::open(&events_path, "runner")?;
    let api = fake_api::start(
        fake_api::Script {
            tool: spec.model_tool.clone(),
            input: spec.model_input.clone(),
        },
        EventLog::open(&events_path, "api")?,
    )
    .await?;

    let is_list = matches!(spec.mode, Mode::McpList);
    seed_claude_json(&home, &project, is_list.then_some(spec.servers.as_slice()))?;
    let mcp_config = root.join("mcp.json");
    std::fs::write(
        &mcp_config,
        serde_json::to_vec_pretty(&json!({"mcpServers": mcp_servers(&spec.servers)}))?,
    )?;

    let mut env: BTreeMap<String, String> = BTreeMap::new();
    // PATH is needed for `node` (cli.js releases); nothing else of ours leaks in.
    env.insert(
        "PATH".into(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
    );
    env.insert("HOME".into(), home.display().to_string());
    env.insert("TERM".into(), "xterm-256color".into());
    env.insert("LANG".into(), "C.UTF-8".into());
    env.insert("ANTHROPIC_API_KEY".into(), FAKE_API_KEY.into());
    env.insert("ANTHROPIC_BASE_URL".into(), api.base_url());
    env.insert(
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(),
        "1".into(),
    );
    env.insert("DISABLE_AUTOUPDATER".into(), "1".into());
    env.insert(
        "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL".into(),
        "1".into(),
    );
    for (k, v) in &spec.extra_env {
        env.insert(k.clone(), v.clone());
    }

    let mut args: Vec<String> = Vec::new();
    args.push("--debug-file".into());
    args.push(debug_path.display().to_string());
    match &spec.mode {
        Mode::McpList => {
            args.push("mcp".into());
            args.push("list".into());
        }
        Mode::Print { prompt } => {
            args.extend([
                "-p".into(),
                prompt.clone(),
                "--mcp-config".into(),
                mcp_config.display().to_string(),
                "--strict-mcp-config".into(),
                "--allowedTools".into(),
                spec.model_tool.clone(),
                "--output-format".into(),
                "json".into(),
            ]);
        }
        Mode::Interactive { dev_channels, .. } => {
            args.extend([
                "--mcp-config".into(),
                mcp_config.display().to_string(),
                "--strict-mcp-config".into(),
            ]);
            if !dev_channels.is_empty() {
                args.push("--dangerously-load-development-channels".into());
                args.extend(dev_channels.iter().map(|n| format!("server:{n}")));
            }
        }
    }

    let make_cmd = || {
        let mut cmd = claude.command();
        cmd.args(&args).current_dir(&project).env_clear().envs(&env);
        cmd
    };
    for n in 0..spec.warm_up_runs {
        runner_log.emit("warm_up_spawn", json!({"run": n}));
        let mut warm = make_cmd();
        warm.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = tokio::process::Command::from(warm)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", claude.program.display()))?;
        let _ = tokio::time::timeout(spec.timeout, child.wait_with_output()).await;
        wait_for_probes(&events_path, Duration::from_secs(5)).await;
    }
    if spec.warm_up_runs > 0 {
        // Keep the warm-up events aside; the writers append, so truncation is safe.
        std::fs::copy(&events_path, root.join("warmup-events.ndjson"))?;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&events_path)?
            .set_len(0)?;
        let _ = std::fs::rename(&debug_path, root.join("warmup-debug.log"));
    }
    let mut cmd = make_cmd();
    runner_log.emit(
        "client_spawn",
        json!({"version": claude.version, "mode": mode_name(&spec.mode)}),
    );
    let started = Instant::now();
    let (exit_code, timed_out, stdout, stderr) = match &spec.mode {
        Mode::Interactive { watch_server, .. } => {
            let out = pty::run_interactive(cmd, &debug_path, watch_server, spec.timeout).await?;
            let _ = std::fs::write(root.join("screen.txt"), &out.screen);
            (out.exit_code, out.timed_out, out.screen, String::new())
        }
        _ => {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let child = tokio::process::Command::from(cmd)
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("spawning {}", claude.program.display()))?;
            match tokio::time::timeout(spec.timeout, child.wait_with_output()).await {
                Ok(out) => {
                    let out = out?;
                    (
                        out.status.code(),
                        false,
                        String::from_utf8_lossy(&out.stdout).into_owned(),
                        String::from_utf8_lossy(&out.stderr).into_owned(),
                    )
                }
                Err(_) => (None, true, String::new(), String::new()),
            }
        }
    };
    let elapsed = started.elapsed();
    runner_log.emit(
        "client_exit",
        json!({"code": exit_code, "timed_out": timed_out}),
    );
    // The client may return before its servers are gone (SIGKILL comes ~500 ms after SIGINT);
    // wait for every probe to be reported dead so the shutdown is in the recording.
    wait_for_probes(&events_path, Duration::from_secs(5)).await;

    let events = read_events(&events_path)?;
    let debug = std::fs::read_to_string(&debug_path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    Ok(RunOutput {
        root: root.to_owned(),
        events,
        debug,
        stdout,
        stderr,
        exit_code,
        timed_out,
        elapsed,
        args,
        launch_env: env.keys().cloned().collect(),
    })
}

async fn wait_for_probes(events_path: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let events = read_events(events_path).unwrap_or_default();
        let started = events
            .iter()
            .filter(|e| e["src"] == "probe" && e["ev"] == "start")
            .count();
        let gone = events.iter().filter(|e| e["ev"] == "probe_gone").count();
        if gone >= started || Instant::now() >= deadline {
            if gone < started {
                tracing::warn!(
                    started,
                    gone,
                    "some probes were still alive after the client exited"
                );
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn mode_name(mode: &Mode) -> &'static str {
    match mode {
        Mode::McpList => "mcp-list",
        Mode::Print { .. } => "print",
        Mode::Interactive { .. } => "interactive",
    }
}
