//! `channel-plugin launch`: start an interactive Claude Code session in this
//! terminal with this binary as its development channel (the Rust successor of
//! `scripts/launch-opzero.sh`).
//!
//! The launcher checks claude, builds an inline `--mcp-config` whose only
//! server is this executable running a bridge, and `exec`s claude: the process
//! is replaced, so claude owns the terminal, signals and exit code.

pub mod plugin_command;

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::Context as _;

use crate::claude_cli::{self, mcp_config, paths, version};
pub use plugin_command::{BridgeKind, HttpBridgeOptions, PluginCommand, WsBridgeOptions};

const LAUNCH_EXAMPLES: &str = "\
Examples:
  # Chat from the web UI with a session in ~/my/project (HTTP bridge):
  channel-plugin launch --cwd ~/my/project

  # Pick the model and session id, pass the rest to claude:
  channel-plugin launch --cwd ~/my/project --model claude-opus-4-5 \\
      --session-id 8c0c3a5e-3d7e-4f55-9a8e-1f7f2b3c4d5e -- --permission-mode acceptEdits

  # Bridge to an agent platform over WebSocket instead:
  channel-plugin launch --bridge ws --url ws://127.0.0.1:18901/bridge \\
      --openclaw-session 'developer::discord:channel:123'

  # See the exact claude command without running it:
  channel-plugin launch --print-command

What it runs (an existing session is resumed instead of started):
  claude --session-id UUID --mcp-config '{\"mcpServers\":{\"opzero-channel\":{...this binary...}}}' \\
         --dangerously-load-development-channels server:opzero-channel --debug-file ~/.claude/debug/UUID.txt

Claude Code asks once per launch to confirm the development channel; choose
\"I am using this for local development\". Then `channel-plugin doctor` checks
the running session.";

/// Start Claude Code in this terminal with this plugin as its channel.
#[derive(Debug, clap::Args)]
#[command(after_long_help = LAUNCH_EXAMPLES, after_help = "Run with --help for examples.")]
pub struct LaunchArgs {
    /// Project directory claude starts in [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Model for the session (passed to claude --model).
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Session id (a UUID) [default: a new random one]. An id whose transcript
    /// exists is resumed.
    #[arg(long, value_name = "UUID")]
    pub session_id: Option<uuid::Uuid>,
    /// Which bridge the plugin runs.
    #[arg(long, value_enum, default_value = "http")]
    pub bridge: BridgeKind,
    /// MCP server name; claude calls the channel `server:NAME`
    /// [default: opzero-channel for http, synthesis for ws].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    #[command(flatten)]
    pub http: HttpBridgeOptions,
    #[command(flatten)]
    pub ws: WsBridgeOptions,
    /// The claude executable [default: $CLAUDE_BIN, else `claude` on PATH].
    #[arg(long, value_name = "PATH")]
    pub claude: Option<PathBuf>,
    /// Where claude writes its debug log (read by `doctor`)
    /// [default: ~/.claude/debug/<session-id>.txt].
    #[arg(long, value_name = "FILE", conflicts_with = "no_debug_file")]
    pub debug_file: Option<PathBuf>,
    /// Do not ask claude for a debug log.
    #[arg(long)]
    pub no_debug_file: bool,
    /// Print the claude command line (shell-quoted) and exit instead of running it.
    #[arg(long, alias = "dry-run")]
    pub print_command: bool,
    /// The channel-plugin binary claude starts [default: this executable].
    #[arg(long, value_name = "PATH", env = "CHANNEL_PLUGIN_BIN", hide = true)]
    pub plugin_bin: Option<PathBuf>,
    /// Arguments after `--` go to claude unchanged.
    #[arg(last = true, value_name = "CLAUDE ARGS")]
    pub claude_args: Vec<OsString>,
}

/// A fully built claude command line.
#[derive(Debug, Clone)]
pub struct ClaudeInvocation {
    pub claude: PathBuf,
    pub cwd: PathBuf,
    pub args: Vec<OsString>,
    pub session_id: String,
    pub debug_file: Option<PathBuf>,
    pub resumed: bool,
}

impl ClaudeInvocation {
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.claude);
        cmd.args(&self.args).current_dir(&self.cwd);
        cmd
    }

    /// The command as one shell-quoted line (`--print-command`).
    pub fn shell_line(&self) -> String {
        let mut words = vec![shell_quote(self.claude.as_os_str())];
        words.extend(self.args.iter().map(|a| shell_quote(a)));
        format!(
            "cd {} && {}",
            shell_quote(self.cwd.as_os_str()),
            words.join(" ")
        )
    }
}

/// How the session starts: a new id, or resuming one claude already knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStart {
    New,
    Resume,
}

/// Inputs shared by `launch` and `spawn` for building a claude command.
pub struct InvocationPlan<'a> {
    pub claude: PathBuf,
    pub cwd: PathBuf,
    pub session_id: String,
    pub start: SessionStart,
    pub plugin: &'a PluginCommand,
    pub model: Option<&'a str>,
    pub permission_mode: Option<&'a str>,
    pub also_channels_flag: bool,
    pub debug_file: Option<PathBuf>,
    pub extra: &'a [OsString],
}

impl InvocationPlan<'_> {
    pub fn build(self) -> anyhow::Result<ClaudeInvocation> {
        mcp_config::validate_server_name(&self.plugin.name).map_err(anyhow::Error::msg)?;
        let channel = format!("server:{}", self.plugin.name);
        let mut args: Vec<OsString> = Vec::new();
        match self.start {
            SessionStart::New => {
                args.extend(["--session-id".into(), self.session_id.clone().into()])
            }
            SessionStart::Resume => {
                args.extend(["--resume".into(), self.session_id.clone().into()])
            }
        }
        args.push("--mcp-config".into());
        args.push(self.plugin.server_spec()?.to_inline_config().into());
        if self.also_channels_flag {
            args.extend(["--channels".into(), channel.clone().into()]);
        }
        args.extend([
            "--dangerously-load-development-channels".into(),
            channel.into(),
        ]);
        if let Some(model) = self.model {
            args.extend(["--model".into(), model.into()]);
        }
        if let Some(mode) = self.permission_mode {
            args.extend(["--permission-mode".into(), mode.into()]);
        }
        if let Some(debug) = &self.debug_file {
            args.extend(["--debug-file".into(), debug.clone().into_os_string()]);
        }
        args.extend(self.extra.iter().cloned());
        Ok(ClaudeInvocation {
            claude: self.claude,
            cwd: self.cwd,
            args,
            session_id: self.session_id,
            debug_file: self.debug_file,
            resumed: self.start == SessionStart::Resume,
        })
    }
}

/// Finds claude and refuses releases without channels.
pub fn checked_claude(explicit: Option<&Path>, permission_relay: bool) -> anyhow::Result<PathBuf> {
    let located = claude_cli::locate_claude(explicit)?;
    let v = version::query_version(&located.path, Duration::from_secs(30))?;
    version::require_channels(&located.path, v)?;
    if permission_relay && v < version::MIN_PERMISSION_RELAY_VERSION {
        tracing::warn!(
            "Claude Code {v} has no permission relay (needs {}); --permission-relay will do nothing",
            version::MIN_PERMISSION_RELAY_VERSION
        );
    }
    tracing::debug!(claude = %located.path.display(), origin = located.origin, version = %v, "found claude");
    Ok(located.path)
}

/// Resolves `--cwd` to an existing absolute directory.
pub fn resolve_cwd(cwd: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = match cwd {
        Some(d) => d.to_path_buf(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let abs = dir
        .canonicalize()
        .with_context(|| format!("--cwd {}: no such directory", dir.display()))?;
    anyhow::ensure!(abs.is_dir(), "--cwd {}: not a directory", dir.display());
    Ok(abs)
}

/// Whether the caller already passed `flag` (or `flag=…`) to claude after `--`.
pub fn passes_flag(extra: &[OsString], flag: &str) -> bool {
    extra.iter().any(|a| {
        let a = a.to_string_lossy();
        a == flag || a.starts_with(&format!("{flag}="))
    })
}

/// Makes sure the debug log's folder exists (claude does not create it).
pub fn prepare_debug_file(path: &Path) -> anyhow::Result<PathBuf> {
    let abs = std::path::absolute(path).with_context(|| format!("bad path {}", path.display()))?;
    if let Some(parent) = abs.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    Ok(abs)
}

pub fn build(args: &LaunchArgs) -> anyhow::Result<ClaudeInvocation> {
    let claude = checked_claude(args.claude.as_deref(), args.http.permission_relay)?;
    let cwd = resolve_cwd(args.cwd.as_deref())?;
    let session_id = args
        .session_id
        .unwrap_or_else(uuid::Uuid::new_v4)
        .to_string();
    let start = if paths::session_transcript_exists(&session_id) {
        SessionStart::Resume
    } else {
        SessionStart::New
    };
    let plugin = PluginCommand {
        name: default_server_name(args.name.as_deref(), args.bridge),
        plugin_bin: match &args.plugin_bin {
            Some(p) => p.clone(),
            None => plugin_command::own_binary()?,
        },
        session_id: session_id.clone(),
        bridge: args.bridge,
        http: args.http.clone(),
        ws: args.ws.clone(),
    };
    let debug_file = if args.no_debug_file || passes_flag(&args.claude_args, "--debug-file") {
        None
    } else {
        let path = args
            .debug_file
            .clone()
            .unwrap_or_else(|| paths::default_debug_log(&session_id));
        Some(prepare_debug_file(&path)?)
    };
    InvocationPlan {
        claude,
        cwd,
        session_id,
        start,
        plugin: &plugin,
        model: args.model.as_deref(),
        permission_mode: None,
        also_channels_flag: false,
        debug_file,
        extra: &args.claude_args,
    }
    .build()
}

pub async fn run(args: LaunchArgs) -> anyhow::Result<ExitCode> {
    let inv = build(&args)?;
    if args.print_command {
        println!("{}", inv.shell_line());
        return Ok(ExitCode::SUCCESS);
    }
    // The user reads these before claude takes over the screen.
    eprintln!(
        "channel-plugin: {} session {} in {} with channel server:{} ({} bridge)",
        if inv.resumed { "resuming" } else { "starting" },
        inv.session_id,
        inv.cwd.display(),
        default_server_name(args.name.as_deref(), args.bridge),
        match args.bridge {
            BridgeKind::Http => "http",
            BridgeKind::Ws => "ws",
        },
    );
    if let Some(debug) = &inv.debug_file {
        eprintln!("channel-plugin: claude debug log: {}", debug.display());
    }
    let err = inv.command().exec();
    Err(anyhow::Error::new(err).context(format!("cannot exec {}", inv.claude.display())))
}

/// The server name the seeds used: `opzero-channel` (HTTP bridge, the web UI
/// launcher) and `synthesis` (WebSocket bridge, the agent platform).
pub fn default_server_name(name: Option<&str>, bridge: BridgeKind) -> String {
    match (name, bridge) {
        (Some(n), _) => n.to_owned(),
        (None, BridgeKind::Http) => "opzero-channel".to_owned(),
        (None, BridgeKind::Ws) => "synthesis".to_owned(),
    }
}

/// POSIX shell single-quoting; bare words stay bare.
pub fn shell_quote(word: &OsStr) -> String {
    let s = word.to_string_lossy();
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if safe {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(shell_quote(OsStr::new("server:channel")), "server:channel");
        assert_eq!(shell_quote(OsStr::new("{\"a\":1}")), "'{\"a\":1}'");
        assert_eq!(shell_quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(shell_quote(OsStr::new("")), "''");
    }

    #[test]
    fn detects_passthrough_flags() {
        let extra: Vec<OsString> = vec!["--debug-file=/x".into(), "--verbose".into()];
        assert!(passes_flag(&extra, "--debug-file"));
        assert!(!passes_flag(&extra, "--model"));
    }
}
