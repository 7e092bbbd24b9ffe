//! `channel-plugin spawn`: a headless supervisor for agent platforms that keep
//! long-lived Claude Code processes (the SynthesisAgent process-manager case).
//!
//! Claude Code only honours `--dangerously-load-development-channels` in an
//! interactive terminal (without one it switches to print mode and ignores the
//! flag), and then shows a confirmation dialog. So `spawn`:
//!
//! * runs claude under a pseudo-terminal, in its own process group;
//! * watches the screen for the development-channels dialog and, only when the
//!   caller passed `--accept-development-channels-warning`, answers it;
//! * reads claude's debug log and logs the channel gate verdict in plain words;
//! * restarts claude with exponential backoff when it exits (resuming the same
//!   session), and on SIGTERM/SIGINT stops the whole process group: no orphans.

pub mod dialog;
pub mod pty;
mod supervise;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::claude_cli::paths;
use crate::launch::{self, BridgeKind, PluginCommand, WsBridgeOptions};

const SPAWN_EXAMPLES: &str = "\
Examples:
  # What an agent platform's process manager runs for one conversation:
  channel-plugin spawn --cwd /srv/agent/workspace \\
      --url ws://127.0.0.1:18901/bridge --openclaw-session 'developer::discord:channel:123' \\
      --session-id 0b7e2f6a-1c3d-4e5f-8a9b-0c1d2e3f4a5b \\
      --permission-mode bypassPermissions --accept-development-channels-warning

  # Continue an existing conversation after a platform restart:
  channel-plugin spawn --resume 0b7e2f6a-1c3d-4e5f-8a9b-0c1d2e3f4a5b --url ws://127.0.0.1:18901/bridge \\
      --openclaw-session 'developer::discord:channel:123' --accept-development-channels-warning

Claude Code shows a \"WARNING: Loading development channels\" dialog on every
start with a development channel. --accept-development-channels-warning makes
spawn answer it (option 1, \"I am using this for local development\"); without
it spawn stops with an error instead of leaving claude stuck at the dialog.

spawn logs to stderr, including the channel gate line claude writes to its
debug log (\"Channel notifications registered\" when events will arrive).
Send SIGTERM to stop claude and everything it started.";

/// Run Claude Code headless under a pseudo-terminal with the WebSocket bridge, and supervise it.
#[derive(Debug, clap::Args)]
#[command(after_long_help = SPAWN_EXAMPLES, after_help = "Run with --help for examples.")]
pub struct SpawnArgs {
    /// Project directory claude runs in [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Session id (a UUID) for a new conversation [default: a new random one].
    #[arg(long, value_name = "UUID", conflicts_with = "resume")]
    pub session_id: Option<uuid::Uuid>,
    /// Resume this existing session (claude --resume).
    #[arg(long, value_name = "UUID")]
    pub resume: Option<uuid::Uuid>,
    /// Permission mode for claude (e.g. acceptEdits, bypassPermissions).
    #[arg(long, value_name = "MODE")]
    pub permission_mode: Option<String>,
    /// Model for the session.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Which bridge the plugin runs (ws for agent platforms).
    #[arg(long, value_enum, default_value = "ws")]
    pub bridge: BridgeKind,
    #[command(flatten)]
    pub ws: WsBridgeOptions,
    #[command(flatten)]
    pub http: launch::HttpBridgeOptions,
    /// MCP server name; claude calls the channel `server:NAME`
    /// [default: synthesis for ws, opzero-channel for http].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Also pass `--channels server:NAME` (as the seed process manager did).
    #[arg(long)]
    pub channels_flag: bool,
    /// Answer Claude Code's development-channels confirmation dialog.
    #[arg(long)]
    pub accept_development_channels_warning: bool,
    /// The claude executable [default: $CLAUDE_BIN, else `claude` on PATH].
    #[arg(long, value_name = "PATH")]
    pub claude: Option<PathBuf>,
    /// Claude's debug log, read for the gate line [default: ~/.claude/debug/<session-id>.txt].
    #[arg(long, value_name = "FILE")]
    pub debug_file: Option<PathBuf>,
    /// Copy everything claude draws on its terminal to this file (for debugging).
    #[arg(long, value_name = "FILE")]
    pub pty_log: Option<PathBuf>,
    /// Restarts after claude exits before giving up [default: unlimited].
    #[arg(long, value_name = "N")]
    pub max_restarts: Option<u32>,
    /// First restart delay; doubles per quick failure up to --backoff-max.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub backoff_initial: f64,
    /// Longest restart delay.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub backoff_max: f64,
    /// How long claude gets to exit after SIGTERM before its group is killed.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub stop_timeout: f64,
    /// Stop claude and exit when spawn's parent process dies (spawn is re-parented).
    /// Leave off when a wrapper starts spawn and exits on purpose.
    #[arg(long)]
    pub exit_with_parent: bool,
    /// The channel-plugin binary claude starts [default: this executable].
    #[arg(long, value_name = "PATH", env = "CHANNEL_PLUGIN_BIN", hide = true)]
    pub plugin_bin: Option<PathBuf>,
    /// Arguments after `--` go to claude unchanged.
    #[arg(last = true, value_name = "CLAUDE ARGS")]
    pub claude_args: Vec<OsString>,
}

/// Settings the supervisor loop needs, resolved once.
pub(crate) struct Resolved {
    pub claude: PathBuf,
    pub cwd: PathBuf,
    pub session_id: String,
    pub plugin: PluginCommand,
    pub debug_file: PathBuf,
    pub resume_first: bool,
}

pub async fn run(args: SpawnArgs) -> anyhow::Result<ExitCode> {
    let claude = launch::checked_claude(args.claude.as_deref(), args.http.permission_relay)?;
    let cwd = launch::resolve_cwd(args.cwd.as_deref())?;
    let (session_id, resume_first) = match (args.resume, args.session_id) {
        (Some(id), _) => (id.to_string(), true),
        (None, Some(id)) => (
            id.to_string(),
            paths::session_transcript_exists(&id.to_string()),
        ),
        (None, None) => (uuid::Uuid::new_v4().to_string(), false),
    };
    let plugin = PluginCommand {
        name: launch::default_server_name(args.name.as_deref(), args.bridge),
        plugin_bin: match &args.plugin_bin {
            Some(p) => p.clone(),
            None => launch::plugin_command::own_binary()?,
        },
        session_id: session_id.clone(),
        bridge: args.bridge,
        http: args.http.clone(),
        ws: WsBridgeOptions {
            url: args.ws.url.clone(),
            openclaw_session: args.ws.openclaw_session.clone(),
        },
    };
    // Fail on missing bridge options now, not in a restart loop.
    plugin.args()?;
    let debug_file = launch::prepare_debug_file(
        &args
            .debug_file
            .clone()
            .unwrap_or_else(|| paths::default_debug_log(&session_id)),
    )?;
    let resolved = Resolved {
        claude,
        cwd,
        session_id,
        plugin,
        debug_file,
        resume_first,
    };
    supervise::Supervisor::new(args, resolved).run().await
}

pub(crate) fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 24.0 * 3600.0))
}
