//! `mock-claude`: drive a channel plugin exactly as a given Claude Code release would.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use mock_claude::{
    fixtures_dir, ChannelSpec, Entrypoint, LaunchOptions, MockClaude, PluginSource, Profile,
    Provider, Script, Session, Turn,
};
use tokio::io::AsyncBufReadExt;

const ABOUT: &str = "Stand in for Claude Code in front of a channel plugin (an MCP stdio server that pushes \
notifications/claude/channel): spawn it with a release's env, run that release's handshake and channel gate, \
print every turn the model would see, and call tools like the model does. No account, no network.";

const RUN_EXAMPLES: &str = "Examples:
  # Our HTTP bridge under the newest profile, echo every event back through `reply`, 5 turns max:
  mock-claude run --plugin 'target/debug/channel-plugin http --discovery-dir /tmp/disc' \\
      --server-name bridge --echo --turns 5 --timeout 120 --transcript /tmp/bridge.ndjson
  #   then, in another terminal:  curl -H \"Authorization: Bearer $SECRET\" \\
  #       -d '{\"content\":\"hi\",\"chat_id\":\"1\"}' http://127.0.0.1:$PORT/inject

  # A zoo plugin under the first channels release, with a custom script:
  mock-claude run --plugin 'python3 fixtures/zoo/zoo_plugin.py --push-on-ready hello' \\
      --profile 2.1.80 --server-name zoo --script my-script.json

  # A second run within 7 days skips the probe if the first one went unanswered (2.1.300+):
  mock-claude run --plugin './my-plugin' --probe-memory-dir ~/.cache/mock-claude-home --timeout 0

  # What a user who only passed --channels (no dev flag) would get:
  mock-claude run --plugin 'python3 fixtures/zoo/zoo_plugin.py' --server-name zoo --channels server:zoo

Script file (placeholders {content}, {source}, {meta.KEY}):
  {\"rules\":[{\"when\":{\"content_matches\":\".\"},\"call\":\"reply\",
              \"arguments\":{\"text\":\"echo: {content}\",\"chat_id\":\"{meta.chat_id}\"}}]}

Without --channels or --dangerously-load-development-channels, the server is loaded with
--dangerously-load-development-channels server:NAME (the usual local-development launch).
Exit status: 0 handshake done (whatever the gate said), 1 the connection failed, 2 usage error.";

const CHAT_EXAMPLES: &str = "Example:
  mock-claude chat --plugin 'python3 fixtures/zoo/zoo_plugin.py --trigger-file /tmp/t' --server-name zoo
  #   echo 'hello' >> /tmp/t      (in another terminal: an outside event)

At the prompt:
  any text            call `reply` with {text, chat_id} (chat_id of the last turn that had one)
  /call TOOL {json}   call any tool with JSON arguments
  /perm TOOL DESC     send a permission request (prints the channel's verdict when it comes)
  y ID | n ID         answer a permission request in the local dialog (first answer wins)
  /transcript FILE    write the transcript so far (redacted)
  /quit               shut the plugin down the way Claude Code does and exit";

#[derive(Parser)]
#[command(name = "mock-claude", version, about = ABOUT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a plugin through a release's lifecycle and print gate, turns and tool calls.
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Play the model yourself at a terminal.
    #[command(after_help = CHAT_EXAMPLES)]
    Chat(LaunchArgs),
    /// List the Claude Code profiles in the fixtures directory.
    #[command(
        after_help = "Example:\n  mock-claude profiles\n  MOCK_CLAUDE_FIXTURES=/path/to/fixtures mock-claude profiles"
    )]
    Profiles,
}

#[derive(Args, Clone)]
struct LaunchArgs {
    /// The plugin command line (split like a shell would; shell syntax runs under `sh -c`).
    #[arg(long)]
    plugin: String,
    /// Claude Code release to behave like (default: the newest profile).
    #[arg(long, value_name = "VERSION")]
    profile: Option<String>,
    /// The server's name in the MCP config (the `source` of rendered turns).
    #[arg(long, default_value = "channel")]
    server_name: String,
    /// `--channels` entries: `server:NAME` or `plugin:NAME@MARKETPLACE` (repeatable, or space-separated).
    #[arg(long, value_name = "ENTRY")]
    channels: Vec<String>,
    /// `--dangerously-load-development-channels` entries (repeatable, or space-separated).
    #[arg(long = "dangerously-load-development-channels", value_name = "ENTRY")]
    dev_channels: Vec<String>,
    /// The server comes from plugin PLUGIN@MARKETPLACE (its name becomes plugin:PLUGIN:NAME).
    #[arg(long, value_name = "PLUGIN@MARKETPLACE")]
    plugin_source: Option<String>,
    /// Model provider: anthropic, console, bedrock, vertex, foundry.
    #[arg(long, default_value = "anthropic")]
    provider: String,
    /// Pretend the account has no channels feature (gate check 4 fails).
    #[arg(long)]
    feature_unavailable: bool,
    /// Org managed setting channelsEnabled.
    #[arg(long, value_name = "BOOL")]
    org_channels_enabled: Option<bool>,
    /// Org managed setting allowedChannelPlugins (comma-separated plugin@marketplace).
    #[arg(long, value_name = "LIST")]
    org_allowed_plugins: Option<String>,
    /// CLAUDE_CODE_ENTRYPOINT: cli (interactive) or sdk-cli (-p).
    #[arg(long, default_value = "cli")]
    entrypoint: String,
    /// Extra env for the plugin, NAME=VALUE (repeatable). MCP_PROTOCOL_NEGOTIATION=legacy turns the probe off.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// Working / project directory for the plugin.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Write the NDJSON transcript here at the end (secrets redacted unless --no-redact).
    #[arg(long, value_name = "FILE")]
    transcript: Option<PathBuf>,
    /// Keep secrets in the transcript.
    #[arg(long)]
    no_redact: bool,
    /// Claude Code's memory of unanswered server/discover probes, kept in DIR (like its HOME):
    /// a server whose probe went unanswered is not probed again for the profile's
    /// remember_unanswered_days (7 in 2.1.300+). Without it every run is a fresh HOME.
    #[arg(long, value_name = "DIR")]
    probe_memory_dir: Option<PathBuf>,
    /// Cut a tool call with no answer and no progress after MS milliseconds instead of the
    /// profile's idle limit (30 min from 2.1.187; no effect on older profiles).
    #[arg(long, value_name = "MS")]
    tool_idle_timeout_ms: Option<u64>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    launch: LaunchArgs,
    /// Scripted model (JSON rules); tool calls it makes are printed.
    #[arg(long, value_name = "FILE", conflicts_with = "echo")]
    script: Option<PathBuf>,
    /// Use the built-in echo script: reply {text: "echo: {content}", chat_id: "{meta.chat_id}"}.
    #[arg(long)]
    echo: bool,
    /// Stop after N turns.
    #[arg(long, value_name = "N")]
    turns: Option<usize>,
    /// Stop after this many seconds in total (default 30; 0 = only the handshake).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
    /// Print one JSON object per event instead of text.
    #[arg(long)]
    json: bool,
}

fn options(a: &LaunchArgs) -> Result<LaunchOptions> {
    let mut o = LaunchOptions::from_shell(&a.plugin);
    if o.command.is_empty() {
        bail!("--plugin is empty");
    }
    o.server_name = a.server_name.clone();
    o.cwd = a.cwd.clone();
    for c in &a.channels {
        o.channels.extend(ChannelSpec::parse_list(c)?);
    }
    for c in &a.dev_channels {
        o.dev_channels.extend(ChannelSpec::parse_list(c)?);
    }
    if let Some(src) = &a.plugin_source {
        let (plugin, marketplace) = src
            .split_once('@')
            .with_context(|| format!("--plugin-source {src:?} must be PLUGIN@MARKETPLACE"))?;
        o.plugin_source = Some(PluginSource {
            plugin: plugin.into(),
            marketplace: marketplace.into(),
        });
    }
    if o.channels.is_empty() && o.dev_channels.is_empty() {
        o.dev_channels.push(match &o.plugin_source {
            Some(p) => ChannelSpec::Plugin {
                name: p.plugin.clone(),
                marketplace: p.marketplace.clone(),
            },
            None => ChannelSpec::server(&a.server_name),
        });
    }
    o.provider = a.provider.parse::<Provider>()?;
    o.feature_available = !a.feature_unavailable;
    o.org_policy.channels_enabled = a.org_channels_enabled;
    o.org_policy.allowed_channel_plugins = a.org_allowed_plugins.as_ref().map(|l| {
        l.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    });
    o.entrypoint = match a.entrypoint.as_str() {
        "cli" => Entrypoint::Cli,
        "sdk-cli" => Entrypoint::SdkCli,
        other => bail!("--entrypoint {other:?} must be cli or sdk-cli"),
    };
    for kv in &a.env {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--env {kv:?} must be NAME=VALUE"))?;
        o.extra_env.push((k.into(), v.into()));
    }
    o.probe_memory = a
        .probe_memory_dir
        .as_ref()
        .map(mock_claude::ProbeMemory::in_dir);
    o.tool_idle_timeout = a.tool_idle_timeout_ms.map(Duration::from_millis);
    Ok(o)
}

fn load_profile(version: &Option<String>) -> Result<Profile> {
    let dir = fixtures_dir();
    Ok(match version {
        Some(v) => Profile::by_version(&dir, v)?,
        None => Profile::latest(&dir)?,
    })
}

fn print_turn(turn: &Turn, n: usize, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({ "event": "turn", "n": n, "batched": turn.batched, "text": turn.text })
        );
    } else {
        println!(
            "── turn {n}{} ──\n{}",
            if turn.batched {
                " (batched while busy)"
            } else {
                ""
            },
            turn.text
        );
    }
}

async fn start(a: &LaunchArgs, json: bool) -> Result<(Session, bool)> {
    let profile = load_profile(&a.profile)?;
    let o = options(a)?;
    let mut session = MockClaude::spawn(&profile, o).await?;
    let hs = session.handshake().await;
    let ok = hs.is_ok();
    match hs {
        Ok(hs) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "event": "handshake", "profile": profile.version, "handshake": hs })
                );
            } else {
                println!("Claude Code {} ({})", profile.version, profile.source.kind);
                println!("discover: {:?}", hs.discover);
                if let Some(why) = &hs.discover_skipped {
                    println!("discover probe skipped: {why}");
                }
                for f in &hs.list_failures {
                    println!("{f}");
                }
                println!(
                    "protocol {} ({:?} era); tools: {}",
                    hs.protocol_version,
                    hs.era,
                    hs.tool_names().join(", ")
                );
                for w in &hs.cap_warnings {
                    println!("warning: {w}");
                }
                println!("gate: {}", hs.gate.log_line);
            }
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "event": "connection_failed", "error": e.to_string() })
                );
            } else {
                println!("{e}");
                println!("gate: {}", session.gate().log_line);
            }
        }
    }
    Ok((session, ok))
}

async fn finish(mut session: Session, a: &LaunchArgs, json: bool) -> Result<()> {
    let report = session.shutdown().await?;
    let t = session.transcript();
    let violations = t.violations();
    let orphans = session.orphans();
    if json {
        println!(
            "{}",
            serde_json::json!({ "event": "end", "shutdown": report, "drops": session.drops(),
                "violations": violations, "stray_stdout_bytes": t.stray_stdout_bytes(), "orphans": orphans })
        );
    } else {
        println!(
            "shutdown: exited={} via={:?} after {:?} ({})",
            report.exited,
            report.via,
            report.elapsed,
            report.status.as_deref().unwrap_or("still running")
        );
        for d in session.drops() {
            println!(
                "dropped: {} (client: {})",
                d.reason,
                d.client_warning.as_deref().unwrap_or("silent")
            );
        }
        if t.stray_stdout_bytes() > 0 {
            println!(
                "stray stdout: {} bytes in {} lines",
                t.stray_stdout_bytes(),
                t.junk_lines().len()
            );
        }
        for v in &violations {
            println!(
                "schema violation at frame {} ({}): {}",
                v.index, v.schema, v.message
            );
        }
        for o in &orphans {
            println!("orphan left running: pid {} {}", o.pid, o.cmdline);
        }
    }
    session.kill_orphans();
    if let Some(path) = &a.transcript {
        t.write_ndjson(path, !a.no_redact)?;
        if !json {
            println!("transcript: {}", path.display());
        }
    }
    Ok(())
}

async fn run(args: RunArgs) -> Result<i32> {
    let script = match (&args.script, args.echo) {
        (Some(p), _) => Some(Script::load(p)?),
        (None, true) => Some(Script::echo_reply()),
        _ => None,
    };
    let (session, ok) = start(&args.launch, args.json).await?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut n = 0;
    while ok && session.gate().registered && args.turns.is_none_or(|max| n < max) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let turn = match session.next_turn(left).await {
            Ok(t) => t,
            Err(mock_claude::Error::Timeout { .. }) => break,
            Err(e) => {
                println!("no more turns: {e}");
                break;
            }
        };
        n += 1;
        print_turn(&turn, n, args.json);
        if let Some(script) = &script {
            for call in session.run_script_turn(script, &turn).await? {
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({ "event": "tool_call", "call": call })
                    );
                } else {
                    let outcome = match &call.result {
                        Ok(r) => format!(
                            "{}{}{}",
                            if r.is_error { "isError: " } else { "" },
                            r.text(),
                            if r.problems.is_empty() {
                                String::new()
                            } else {
                                format!(" (problems: {})", r.problems.join("; "))
                            }
                        ),
                        Err(e) => format!("error: {e}"),
                    };
                    println!(
                        "tool call {} {} → {}",
                        call.model_name, call.arguments, outcome
                    );
                }
            }
        }
    }
    finish(session, &args.launch, args.json).await?;
    Ok(if ok { 0 } else { 1 })
}

async fn chat(a: LaunchArgs) -> Result<i32> {
    let (session, ok) = start(&a, false).await?;
    if !ok {
        finish(session, &a, false).await?;
        return Ok(1);
    }
    let session = Arc::new(session);
    let last_chat = Arc::new(std::sync::Mutex::new(None::<String>));
    let watcher = {
        let s = session.clone();
        let last = last_chat.clone();
        tokio::spawn(async move {
            let mut n = 0;
            loop {
                match s.next_turn(Duration::from_secs(3600)).await {
                    Ok(t) => {
                        n += 1;
                        if let Some(c) = t.events.iter().rev().find_map(|e| e.meta("chat_id")) {
                            *last.lock().unwrap() = Some(c.to_string());
                        }
                        print_turn(&t, n, false);
                    }
                    Err(mock_claude::Error::Timeout { .. }) => continue,
                    Err(e) => {
                        println!("(no more turns: {e})");
                        break;
                    }
                }
            }
        })
    };
    println!("Type a reply (becomes a `reply` call), /perm TOOL DESC, y ID / n ID, /call TOOL JSON, /quit.");
    // The official plugins' verdict convention, reused for the local dialog.
    let verdict_re =
        regex::Regex::new(r"(?i)^\s*(y|yes|n|no)\s+([a-km-z]{5})\s*$").expect("static regex");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "/quit" {
            break;
        }
        if let Some(c) = verdict_re.captures(line) {
            let id = c[2].to_ascii_lowercase();
            let won = session.answer_locally(&id);
            println!(
                "local {} for {id}: {}",
                &c[1],
                if won {
                    "accepted (first answer)"
                } else {
                    "ignored (already answered or unknown)"
                }
            );
        } else if let Some(rest) = line.strip_prefix("/perm ") {
            let (tool, desc) = rest.split_once(' ').unwrap_or((rest, ""));
            match session.send_permission_request(tool, desc, "{}").await {
                Ok(id) => {
                    println!("permission request {id} sent for {tool}");
                    let s = session.clone();
                    tokio::spawn(async move {
                        if let Ok(v) = s.wait_verdict(&id, Duration::from_secs(600)).await {
                            println!("verdict for {id}: {v:?}");
                        }
                    });
                }
                Err(e) => println!("cannot send: {e}"),
            }
        } else if let Some(rest) = line.strip_prefix("/call ") {
            let (tool, args) = rest.split_once(' ').unwrap_or((rest, "{}"));
            match serde_json::from_str(args) {
                Ok(v) => match session.call_tool(tool, v).await {
                    Ok(r) => println!(
                        "→ {}{}",
                        if r.is_error { "isError: " } else { "" },
                        r.text()
                    ),
                    Err(e) => println!("→ error: {e}"),
                },
                Err(e) => println!("arguments are not JSON: {e}"),
            }
        } else if let Some(path) = line.strip_prefix("/transcript ") {
            match session.transcript().write_ndjson(path.trim(), true) {
                Ok(()) => println!("written {path}"),
                Err(e) => println!("{e}"),
            }
        } else {
            let mut args = serde_json::json!({ "text": line });
            if let Some(c) = last_chat.lock().unwrap().clone() {
                args["chat_id"] = c.into();
            }
            match session.call_tool("reply", args).await {
                Ok(r) => println!(
                    "→ {}{}",
                    if r.is_error { "isError: " } else { "" },
                    r.text()
                ),
                Err(e) => println!("→ error: {e}"),
            }
        }
    }
    watcher.abort();
    let _ = watcher.await;
    let session = Arc::try_unwrap(session).map_err(|_| anyhow::anyhow!("session still in use"))?;
    finish(session, &a, false).await?;
    Ok(0)
}

fn profiles() -> Result<i32> {
    let dir = fixtures_dir();
    let all =
        Profile::all(&dir).with_context(|| format!("loading profiles from {}", dir.display()))?;
    println!(
        "{:<10} {:<22} {:<9} {:<14} {:<10} relay",
        "version", "source", "discover", "neutralise", "era-check"
    );
    for p in all {
        let n = match &p.render.neutralise {
            None => "raw".to_string(),
            Some(n) => format!(
                "{}{}{}",
                n.tags.len(),
                if n.openers.len() > 1 {
                    "+lookalike"
                } else {
                    ""
                },
                if n.terminators
                    .contains(&mock_claude::render::Terminator::End)
                {
                    "+end"
                } else {
                    ""
                }
            ),
        };
        println!(
            "{:<10} {:<22} {:<9} {:<14} {:<10} {}",
            p.version,
            p.source.kind,
            if p.discover.enabled { "yes" } else { "no" },
            n,
            if p.gate
                .checks
                .iter()
                .any(|c| c.check == mock_claude::GateCheck::Era)
            {
                "yes"
            } else {
                "no"
            },
            if p.permission.is_some() { "yes" } else { "no" },
        );
    }
    println!("({})", dir.join("profiles").display());
    Ok(0)
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Run(a) => run(a).await,
        Command::Chat(a) => chat(a).await,
        Command::Profiles => profiles(),
    };
    match res {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("mock-claude: {e:#}");
            std::process::exit(2);
        }
    }
}
