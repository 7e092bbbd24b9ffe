//! The recording probe: a stdio MCP server with configurable answers that logs everything the
//! client does to it.
//!
//! It is what the real Claude Code binary is pointed at. It logs every line it receives (parsed
//! frame, or the raw line when it is not JSON), every frame it sends, the names of the environment
//! variables it was started with (values never, except a short allowlist of non-secret ones; the
//! rest get a *shape* such as `uuid` or `path`), every SIGINT/SIGTERM/SIGHUP and when stdin hits
//! EOF. A small watcher process outlives it to log when it actually died, which is how the SIGKILL
//! step of the client's shutdown becomes visible.

use std::io::Read;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::signal::unix::{signal, SignalKind};

use super::events::EventLog;

/// How the probe answers `server/discover` (the MCP 2026-07-28 probe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiscoverAnswer {
    /// `-32601 Method not found`: what a channel server must answer (keeps the legacy era).
    Error,
    /// A discover result: invites the client into the modern, stateless era.
    Result,
    /// No answer at all: the client falls back after its probe timeout.
    Silent,
}

/// What the probe does on SIGINT/SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnSignal {
    /// Log it and keep running, so the client's whole escalation (SIGINT, SIGTERM, SIGKILL) shows.
    Record,
    /// Log it and exit 0, like a well-behaved server.
    Exit,
}

/// Options of `release-gate probe`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// NDJSON event log to append to (shared with the watcher and the runner).
    #[arg(long)]
    pub log: PathBuf,
    /// How to answer `server/discover`.
    #[arg(long, value_enum, default_value_t = DiscoverAnswer::Error)]
    pub discover: DiscoverAnswer,
    /// Capabilities to declare under `capabilities.experimental`, comma-separated:
    /// `channel`, `permission`; `channel-toplevel` declares `claude/channel` at the top level of
    /// `capabilities` instead (the classic mistake). Empty: none.
    #[arg(long, value_delimiter = ',', default_value = "channel,permission")]
    pub caps: Vec<String>,
    /// Offer no tools at all (no `reply`).
    #[arg(long)]
    pub no_reply_tool: bool,
    /// The `protocolVersion` to answer `initialize` with; default: echo the client's.
    #[arg(long)]
    pub protocol_version: Option<String>,
    /// What to do on SIGINT/SIGTERM.
    #[arg(long, value_enum, default_value_t = OnSignal::Record)]
    pub on_signal: OnSignal,
    /// After answering `tools/list`, push one `notifications/claude/channel` with this content.
    #[arg(long)]
    pub push_after_list: Option<String>,
    /// Do not start the death watcher (tests that count processes).
    #[arg(long)]
    pub no_watch: bool,
}

/// Env vars whose values are known not to be secret and are recorded verbatim.
const VERBATIM_ENV: &[&str] = &[
    "CLAUDECODE",
    "CLAUDE_CODE_ENTRYPOINT",
    "MCP_PROTOCOL_NEGOTIATION",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
    "DISABLE_AUTOUPDATER",
    "NODE_ENV",
    "TERM",
    "LANG",
    "AI_AGENT",
    "COREPACK_ENABLE_AUTO_PIN",
    "NoDefaultCurrentDirectoryInExePath",
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
    "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL",
];

/// Describes a value without revealing it: `uuid`, `cwd`, `path`, `empty`, `number`, `opaque`,
/// or the literal value for [`VERBATIM_ENV`] names.
pub fn env_shape(name: &str, value: &str, cwd: &str) -> String {
    if VERBATIM_ENV.contains(&name) {
        return format!("={value}");
    }
    if value.is_empty() {
        "empty".into()
    } else if uuid::Uuid::parse_str(value).is_ok() && value.len() == 36 {
        "uuid".into()
    } else if value == cwd {
        "cwd".into()
    } else if value.starts_with('/') && !value.contains(':') {
        "path".into()
    } else if value.chars().all(|c| c.is_ascii_digit()) {
        "number".into()
    } else {
        "opaque".into()
    }
}

fn capabilities(args: &ProbeArgs) -> Value {
    let mut experimental = serde_json::Map::new();
    let mut caps = serde_json::Map::new();
    for cap in &args.caps {
        match cap.trim() {
            "channel" => {
                experimental.insert("claude/channel".into(), json!({}));
            }
            "permission" => {
                experimental.insert("claude/channel/permission".into(), json!({}));
            }
            "channel-toplevel" => {
                caps.insert("claude/channel".into(), json!({}));
            }
            "" => {}
            other => eprintln!("release-gate probe: unknown capability {other:?} ignored"),
        }
    }
    if !experimental.is_empty() {
        caps.insert("experimental".into(), Value::Object(experimental));
    }
    if !args.no_reply_tool {
        caps.insert("tools".into(), json!({}));
    }
    Value::Object(caps)
}

fn server_info() -> Value {
    json!({"name": "release-gate-probe", "version": env!("CARGO_PKG_VERSION")})
}

const INSTRUCTIONS: &str = "Recording probe of the channel release gate. Events arrive as \
<channel source=\"probe\" chat_id=\"…\">text</channel>; answer with the reply tool, passing chat_id.";

fn reply_tool() -> Value {
    json!({
        "name": "reply",
        "description": "Send a reply back to the chat the channel event came from.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "chat_id": {"type": "string", "description": "chat_id attribute of the event"},
                "text": {"type": "string", "description": "the reply"}
            },
            "required": ["text"]
        }
    })
}

/// The answer to one request, or `None` when the probe stays silent.
fn answer(args: &ProbeArgs, method: &str, id: &Value, params: &Value) -> Option<Value> {
    let ok = |result: Value| Some(json!({"jsonrpc": "2.0", "id": id, "result": result}));
    let err = |code: i64, message: &str| {
        Some(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}))
    };
    match method {
        "server/discover" => match args.discover {
            DiscoverAnswer::Error => err(-32601, "Method not found: server/discover"),
            DiscoverAnswer::Silent => None,
            DiscoverAnswer::Result => ok(json!({
                "supportedVersions": ["2026-07-28", "2025-11-25"],
                "protocolVersion": "2026-07-28",
                "capabilities": capabilities(args),
                "serverInfo": server_info(),
                "instructions": INSTRUCTIONS,
            })),
        },
        "initialize" => {
            let version = args.protocol_version.clone().unwrap_or_else(|| {
                params["protocolVersion"]
                    .as_str()
                    .unwrap_or("2025-11-25")
                    .to_owned()
            });
            ok(json!({
                "protocolVersion": version,
                "capabilities": capabilities(args),
                "serverInfo": server_info(),
                "instructions": INSTRUCTIONS,
            }))
        }
        "ping" => ok(json!({})),
        "tools/list" => {
            if args.no_reply_tool {
                ok(json!({"tools": []}))
            } else {
                ok(json!({"tools": [reply_tool()]}))
            }
        }
        "tools/call" if params["name"] == "reply" && !args.no_reply_tool => {
            let text = params["arguments"]["text"].as_str().unwrap_or("");
            ok(json!({"content": [{"type": "text", "text": format!("sent: {text}")}]}))
        }
        "tools/call" => err(-32602, "Unknown tool"),
        "prompts/list" => ok(json!({"prompts": []})),
        "resources/list" => ok(json!({"resources": []})),
        "resources/templates/list" => ok(json!({"resourceTemplates": []})),
        _ => err(-32601, &format!("Method not found: {method}")),
    }
}

/// Runs the probe until stdin closes (plus a short linger for late signals) or, with
/// `--on-signal exit`, until the first SIGINT/SIGTERM.
pub async fn run(args: ProbeArgs) -> anyhow::Result<()> {
    // Handlers first: the client may signal within a millisecond of the handshake, and an
    // unhandled SIGINT would kill the probe before the recording sees the escalation.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let log = EventLog::open(&args.log, "probe")?;
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut env: Vec<(String, String)> = std::env::vars_os()
        .map(|(k, v)| {
            let k = k.to_string_lossy().into_owned();
            let shape = env_shape(&k, &v.to_string_lossy(), &cwd);
            (k, shape)
        })
        .collect();
    env.sort();
    log.emit(
        "start",
        json!({
            "ppid": nix::unistd::getppid().as_raw(),
            "args": std::env::args().skip(1).collect::<Vec<_>>(),
            "env": env.into_iter().map(|(k, v)| (k, Value::from(v))).collect::<serde_json::Map<_, _>>(),
        }),
    );

    // The watcher holds the read end of a pipe whose write end only this process has: when this
    // process dies (even by SIGKILL) the watcher sees EOF and logs the time of death.
    let _watch = if args.no_watch {
        None
    } else {
        spawn_watcher(&args)
            .map_err(|e| eprintln!("release-gate probe: no watcher: {e:#}"))
            .ok()
    };

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    let mut stdin_open = true;
    let linger = tokio::time::sleep(Duration::from_secs(86_400));
    tokio::pin!(linger);

    loop {
        tokio::select! {
            line = lines.next_line(), if stdin_open => {
                match line {
                    Ok(Some(line)) => {
                        let Ok(frame) = serde_json::from_str::<Value>(&line) else {
                            log.emit("recv_raw", json!({"line": line}));
                            continue;
                        };
                        log.emit("recv", json!({"frame": frame}));
                        let Some(method) = frame["method"].as_str() else { continue };
                        let Some(id) = frame.get("id") else { continue };
                        let Some(reply) = answer(&args, method, id, &frame["params"]) else {
                            log.emit("silent", json!({"method": method, "id": id}));
                            continue;
                        };
                        send(&log, &mut stdout, &reply).await?;
                        if method == "tools/list" {
                            if let Some(content) = &args.push_after_list {
                                let push = json!({"jsonrpc": "2.0", "method": "notifications/claude/channel",
                                    "params": {"content": content, "meta": {"chat_id": "1"}}});
                                send(&log, &mut stdout, &push).await?;
                            }
                        }
                    }
                    Ok(None) => {
                        log.emit("stdin_eof", json!({}));
                        stdin_open = false;
                        // Stay a moment to see whether signals follow the close.
                        linger.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(2));
                    }
                    Err(err) => {
                        log.emit("stdin_error", json!({"error": err.to_string()}));
                        stdin_open = false;
                        linger.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(2));
                    }
                }
            }
            _ = sigint.recv() => {
                log.emit("signal", json!({"sig": "SIGINT"}));
                if args.on_signal == OnSignal::Exit { break; }
            }
            _ = sigterm.recv() => {
                log.emit("signal", json!({"sig": "SIGTERM"}));
                if args.on_signal == OnSignal::Exit { break; }
            }
            _ = sighup.recv() => {
                log.emit("signal", json!({"sig": "SIGHUP"}));
            }
            _ = &mut linger => break,
        }
    }
    log.emit("exit", json!({}));
    Ok(())
}

async fn send(log: &EventLog, stdout: &mut tokio::io::Stdout, frame: &Value) -> anyhow::Result<()> {
    let mut line = frame.to_string();
    line.push('\n');
    log.emit("send", json!({"frame": frame}));
    stdout
        .write_all(line.as_bytes())
        .await
        .context("writing stdout")?;
    stdout.flush().await.context("flushing stdout")?;
    Ok(())
}

fn spawn_watcher(args: &ProbeArgs) -> anyhow::Result<std::process::ChildStdin> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    let mut child = std::process::Command::new(exe)
        .arg("probe-watch")
        .arg("--log")
        .arg(&args.log)
        .arg("--pid")
        .arg(std::process::id().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Own process group: a Ctrl-C in the client's terminal must not reach the watcher.
        .process_group(0)
        .spawn()
        .context("spawning probe-watch")?;
    child.stdin.take().context("watcher stdin")
}

/// Options of the hidden `release-gate probe-watch`.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    #[arg(long)]
    pub log: PathBuf,
    /// The probe's pid (for the log line).
    #[arg(long)]
    pub pid: u32,
}

/// Blocks until stdin (a pipe only the probe holds) closes, then logs that the probe is gone.
pub fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let log = EventLog::open(&args.log, "watch")?;
    let mut buf = [0u8; 64];
    let mut stdin = std::io::stdin();
    while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
    log.emit("probe_gone", json!({"probe_pid": args.pid}));
    Ok(())
}
