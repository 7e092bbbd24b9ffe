//! The command line claude uses to start *this* binary as its channel server.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::claude_cli::mcp_config::ServerSpec;

/// Which outside transport the plugin bridges to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BridgeKind {
    /// Loopback HTTP (`POST /inject`, SSE) found through a discovery file.
    Http,
    /// Outbound WebSocket to an agent platform's bridge.
    Ws,
}

/// Options of the HTTP bridge, forwarded to `channel-plugin http`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HttpBridgeOptions {
    /// Discovery directory for `<session-id>.json` [default: $OPZERO_CHANNEL_DIR or ~/.opzero-claude/channels].
    #[arg(long, value_name = "DIR", help_heading = "HTTP bridge")]
    pub discovery_dir: Option<PathBuf>,
    /// Fixed loopback port for the HTTP bridge (default: any free port).
    #[arg(long, value_name = "N", help_heading = "HTTP bridge")]
    pub port: Option<u16>,
    /// Relay tool-permission prompts to the outside (needs Claude Code 2.1.81+).
    #[arg(long, help_heading = "HTTP bridge")]
    pub permission_relay: bool,
}

/// Options of the WebSocket bridge, forwarded to `channel-plugin ws`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WsBridgeOptions {
    /// The agent platform's bridge URL, e.g. ws://127.0.0.1:18901/bridge.
    #[arg(
        long,
        env = "SYNTHESIS_WS_URL",
        value_name = "URL",
        help_heading = "WebSocket bridge"
    )]
    pub url: Option<String>,
    /// The platform-side conversation this Claude session serves.
    #[arg(
        long,
        env = "SYNTHESIS_OPENCLAW_SESSION",
        value_name = "ID",
        help_heading = "WebSocket bridge"
    )]
    pub openclaw_session: Option<String>,
}

/// Everything needed to build the `mcpServers` entry for our own binary.
#[derive(Debug, Clone)]
pub struct PluginCommand {
    /// Server name: claude calls the channel `server:<name>`.
    pub name: String,
    pub plugin_bin: PathBuf,
    pub session_id: String,
    pub bridge: BridgeKind,
    pub http: HttpBridgeOptions,
    pub ws: WsBridgeOptions,
}

impl PluginCommand {
    /// Arguments for `channel-plugin` (after the binary name).
    pub fn args(&self) -> anyhow::Result<Vec<String>> {
        let mut args = Vec::new();
        match self.bridge {
            BridgeKind::Http => {
                args.push("http".into());
                args.extend(["--session-id".into(), self.session_id.clone()]);
                args.extend(["--name".into(), self.name.clone()]);
                if let Some(dir) = &self.http.discovery_dir {
                    let dir = std::path::absolute(dir)
                        .with_context(|| format!("bad --discovery-dir {}", dir.display()))?;
                    args.extend(["--discovery-dir".into(), dir.to_string_lossy().into_owned()]);
                }
                if let Some(port) = self.http.port {
                    args.extend(["--port".into(), port.to_string()]);
                }
                if self.http.permission_relay {
                    args.push("--permission-relay".into());
                }
            }
            BridgeKind::Ws => {
                let url = self.ws.url.clone().context(
                    "the ws bridge needs --url (or $SYNTHESIS_WS_URL), e.g. --url ws://127.0.0.1:18901/bridge",
                )?;
                let openclaw = self.ws.openclaw_session.clone().context(
                    "the ws bridge needs --openclaw-session (or $SYNTHESIS_OPENCLAW_SESSION)",
                )?;
                args.push("ws".into());
                args.extend(["--url".into(), url]);
                args.extend(["--openclaw-session".into(), openclaw]);
                args.extend(["--claude-session".into(), self.session_id.clone()]);
            }
        }
        Ok(args)
    }

    pub fn server_spec(&self) -> anyhow::Result<ServerSpec> {
        Ok(ServerSpec {
            name: self.name.clone(),
            command: self.plugin_bin.clone(),
            args: self.args()?,
            env: Vec::new(),
        })
    }
}

/// This very executable, as an absolute path claude can start from any cwd.
pub fn own_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the channel-plugin executable")?;
    Ok(exe.canonicalize().unwrap_or(exe))
}
