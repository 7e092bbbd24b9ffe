//! HTTP bridge: a loopback endpoint (POST /inject in, SSE out) found through
//! a discovery file. Drop-in replacement for the Bun `opzero-channel` plugin.

pub mod auth;
pub mod body;
pub mod bridge;
mod decimal;
pub mod discovery;
pub mod fast_lane;
pub mod rewind;
pub mod routes;
pub mod serve;
pub mod sse;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use self::auth::Secret;
use self::bridge::HttpBridge;
use self::discovery::DiscoveryRecord;
use self::routes::AppState;
use self::sse::{Hub, DEFAULT_RING_CAPACITY};
use crate::mcp::{Core, CoreConfig};
use crate::shutdown::Signals;

/// Shown under `channel-plugin http --help`.
pub const HTTP_HELP_EXAMPLE: &str = "\
Example (Claude Code starts the plugin; this is what it runs):
  channel-plugin http --name opzero-channel --permission-relay

Then, from another shell, read the discovery file and inject a message:
  f=~/.opzero-claude/channels/$CLAUDE_CODE_SESSION_ID.json
  port=$(jq -r .port \"$f\"); secret=$(jq -r .secret \"$f\")
  curl -sS -X POST \"http://127.0.0.1:$port/inject\" \\
       -H \"Authorization: Bearer $secret\" -H 'Content-Type: application/json' \\
       -d '{\"content\":\"hello from curl\",\"chat_id\":\"c1\",\"meta\":{\"user\":\"me\"}}'
  curl -N -H \"Authorization: Bearer $secret\" \"http://127.0.0.1:$port/sse\"   # replies
  curl \"http://127.0.0.1:$port/status\"                                       # liveness, no auth

Routes: POST /inject {content, chat_id?, meta?} -> 202 {id}; GET /sse (or /events) with
Last-Event-ID replay; POST /permission {request_id, behavior: allow|deny} (--permission-relay);
GET /status. Auth: Authorization: Bearer <secret> or X-OPZero-Secret: <secret>.
Logs go to stderr: start, stop and every refusal; RUST_LOG=debug adds a line per accepted
event and reply. stdout carries MCP frames only.";

#[derive(Debug, clap::Args)]
pub struct HttpArgs {
    /// Session id (a UUID) naming the discovery file. Default: env
    /// OPZERO_CHANNEL_SESSION_ID, then CLAUDE_CODE_SESSION_ID, then a new random UUID.
    #[arg(long, env = "OPZERO_CHANNEL_SESSION_ID", value_name = "UUID")]
    pub session_id: Option<String>,

    /// Directory for the discovery file `<session-id>.json` (created with mode 0700).
    /// Default: env OPZERO_CHANNEL_DIR, then ~/.opzero-claude/channels.
    #[arg(long, env = "OPZERO_CHANNEL_DIR", value_name = "DIR")]
    pub discovery_dir: Option<PathBuf>,

    /// Server name as configured in Claude Code (used in the model's instructions).
    #[arg(long, default_value = "opzero-channel")]
    pub name: String,

    /// Relay tool-approval prompts to the outside (SSE `permission_request`,
    /// POST /permission). Only enable when the outside side is trusted: an answer approves tool use.
    #[arg(long)]
    pub permission_relay: bool,

    /// TCP port on 127.0.0.1 (0 picks a free one; the discovery file says which).
    #[arg(long, default_value_t = 0)]
    pub port: u16,

    /// Serve every request through hyper, without the /inject fast lane
    /// (for comparison and diagnosis; answers are the same either way).
    #[arg(long, hide = true)]
    pub no_fast_lane: bool,

    /// Seconds between SSE keep-alive comments.
    #[arg(long, default_value_t = 15, hide = true, value_name = "SECS")]
    pub sse_keepalive_secs: u64,
}

fn resolve_session_id(args: &HttpArgs) -> anyhow::Result<String> {
    let (id, source) = match &args.session_id {
        Some(id) if !id.is_empty() => (id.clone(), "--session-id / OPZERO_CHANNEL_SESSION_ID"),
        _ => match std::env::var("CLAUDE_CODE_SESSION_ID") {
            Ok(id) if !id.is_empty() => (id, "CLAUDE_CODE_SESSION_ID"),
            _ => {
                let id = uuid::Uuid::new_v4().to_string();
                tracing::info!(session_id = %id, "no session id given; generated one");
                return Ok(id);
            }
        },
    };
    // Only the canonical hyphenated form: the id becomes a file name.
    if id.len() != 36 || uuid::Uuid::try_parse(&id).is_err() {
        bail!("session id {id:?} (from {source}) is not a UUID like 8c0c3a5e-1f2b-4c3d-9e8f-0a1b2c3d4e5f");
    }
    Ok(id)
}

fn resolve_dir(args: &HttpArgs) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &args.discovery_dir {
        if !dir.as_os_str().is_empty() {
            return Ok(dir.clone());
        }
    }
    match std::env::var_os("HOME") {
        Some(home) if !home.is_empty() => {
            Ok(PathBuf::from(home).join(".opzero-claude").join("channels"))
        }
        _ => bail!("HOME is not set; pass --discovery-dir or set OPZERO_CHANNEL_DIR"),
    }
}

/// Run the HTTP bridge with the MCP core on stdio until stdin closes or a
/// signal arrives; the discovery file is removed on the way out.
pub async fn run(args: HttpArgs) -> anyhow::Result<ExitCode> {
    // First, so a signal during start-up is not lost.
    let signals = Signals::install().context("cannot install signal handlers")?;
    let session_id = resolve_session_id(&args)?;
    let dir = resolve_dir(&args)?;
    discovery::prepare_dir(&dir)?;
    discovery::remove_stale(&dir);
    let secret = Secret::generate()?;

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    let port = listener.local_addr()?.port();

    let mut config = CoreConfig::new(args.name.clone());
    config.permission_relay = args.permission_relay;
    let (core, handle) = Core::new(config);
    let hub = Arc::new(Hub::new(DEFAULT_RING_CAPACITY));
    let record = DiscoveryRecord {
        port,
        secret: secret.expose().to_string(),
        pid: std::process::id(),
        session_id: session_id.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    };
    let state = Arc::new(AppState {
        core: handle,
        hub: hub.clone(),
        secret,
        port,
        session_id: session_id.clone(),
        keepalive: Duration::from_secs(args.sse_keepalive_secs.max(1)),
    });
    let server = tokio::spawn(serve::serve(
        listener,
        routes::Api::new(state),
        !args.no_fast_lane,
    ));
    let file = match discovery::write(&dir, &record) {
        Ok(file) => file,
        Err(err) => {
            server.abort();
            return Err(err);
        }
    };
    drop(record);
    tracing::info!(
        port,
        session_id = %session_id,
        discovery_file = %file.path().display(),
        permission_relay = args.permission_relay,
        "channel-plugin http listening on 127.0.0.1"
    );

    let (input, output) = crate::stdio::streams();
    let end = core
        .serve(
            input,
            output,
            Arc::new(HttpBridge::new(hub)),
            signals.wait(),
        )
        .await;
    file.remove();
    // SSE streams never end on their own; stop serving now (this also drops
    // every open connection).
    server.abort();
    tracing::info!(?end, "channel-plugin http stopped");
    Ok(ExitCode::SUCCESS)
}
