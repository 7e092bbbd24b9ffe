//! WebSocket bridge: an outbound client to an agent platform's bridge
//! (the SynthesisAgent/OpenClaw protocol), one Claude Code session per plugin.
//!
//! * [`frame`]: the JSON frames both ways (schemas in `fixtures/schemas/ws/`);
//! * [`outbox`]: ordered, bounded store of outgoing frames, with the delivery
//!   guarantee (at-least-once, `seq` to de-duplicate);
//! * [`outbound`]: [`outbound::WsBridge`], the core's `Bridge`, which only stores;
//! * [`client`]: the connection task (hello, ping/pong, reconnect);
//! * [`backoff`]: reconnect delays (exponential, full jitter).

pub mod backoff;
pub mod client;
pub mod frame;
pub mod outbound;
pub mod outbox;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use crate::bridge::Bridge;
use crate::mcp::{Core, CoreConfig};
use crate::shutdown::Signals;

use self::backoff::BackoffPolicy;
use self::client::ClientConfig;
use self::frame::OutFrame;
use self::outbound::{Outbound, WsBridge};
use self::outbox::OutboxLimits;

const EXAMPLE: &str = "\
Example (what an agent platform's process manager runs for each Claude session):

  SYNTHESIS_WS_URL=ws://127.0.0.1:18901/bridge \\
  SYNTHESIS_OPENCLAW_SESSION='developer::discord:channel:123' \\
  SYNTHESIS_CLAUDE_SESSION=5f0c6f7e-0000-4000-8000-000000000000 \\
    channel-plugin ws --name synthesis

registered in Claude Code's MCP config as
  {\"mcpServers\":{\"synthesis\":{\"command\":\"channel-plugin\",\"args\":[\"ws\"]}}}
and started with `claude --channels server:synthesis`.

A bridge behind a private CA (wss:// with a certificate the Mozilla roots do
not cover): add `--ca-file /etc/synthesis/ca.pem` (or SYNTHESIS_WS_CA_FILE);
its PEM certificates are trusted in addition to the built-in roots.

Frames (JSON text messages):
  out  {\"type\":\"hello\",\"openclaw_session\",\"claude_session\",\"pid\",\"version\"}  first, on every connect
  in   {\"type\":\"inbound\",\"content\":\"…\",\"meta\":{\"chat_id\":\"…\"}}          → a <channel> event
  out  {\"type\":\"reply\",\"text\":\"…\",\"final\":true,\"seq\":1}                 ← the model's reply tool
  out  {\"type\":\"permission_request\",…} / in {\"type\":\"permission\",\"request_id\",\"behavior\"}
       (only with --permission-relay)
  out  {\"type\":\"error\",\"reason\":\"…\"}                                   answer to a refused frame

Inbound frames over 1 MiB are refused with an error frame (the connection
stays up). A message over 2 MiB is not even read: the plugin closes the
connection with code 1009 (Message Too Big) and reconnects.

The plugin never exits because the bridge is down: it reconnects with backoff
(250 ms doubling to 30 s, full jitter, every attempt logged) and its MCP side
keeps answering. Replies made meanwhile are queued (1,024 frames / 1 MiB; the
reply tool says \"sent\" or \"queued\", and reports an error when the queue is
full) and flushed in order after the next hello. Delivery is at-least-once: a
reply whose connection died before the bridge's pong confirmed it is sent
again with the same `seq`, so a bridge drops a repeated `seq`. A ping goes out
every 20 s; no pong for two intervals, or a close from the bridge, means
reconnect. On SIGINT/SIGTERM or stdin EOF it writes what is queued, sends a
Close and waits at most 20 ms for the answer (Claude Code escalates to SIGTERM
100 ms after SIGINT); replies the bridge did not confirm by then are logged by
seq (\"undelivered at exit\"). Logs go to stderr (RUST_LOG=debug for more).";

/// `channel-plugin ws`: connect out to an agent platform's WebSocket bridge.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLE)]
pub struct WsArgs {
    /// Bridge URL, ws:// or wss:// (TLS with the Mozilla root set).
    #[arg(long, env = "SYNTHESIS_WS_URL", value_name = "URL")]
    pub url: Option<String>,
    /// For wss://: also trust the CA certificate(s) in this PEM file (a
    /// private or self-signed CA); added to the Mozilla roots, not instead.
    #[arg(long, env = "SYNTHESIS_WS_CA_FILE", value_name = "PATH")]
    pub ca_file: Option<std::path::PathBuf>,
    /// The platform's session this Claude process serves (sent in hello).
    #[arg(long, env = "SYNTHESIS_OPENCLAW_SESSION", value_name = "ID")]
    pub openclaw_session: Option<String>,
    /// This Claude session's id (sent in hello); falls back to
    /// CLAUDE_CODE_SESSION_ID, which Claude Code sets for its MCP servers.
    #[arg(long, env = "SYNTHESIS_CLAUDE_SESSION", value_name = "ID")]
    pub claude_session: Option<String>,
    /// Bearer token sent as `Authorization: Bearer …` on the upgrade request.
    #[arg(
        long,
        env = "SYNTHESIS_WS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Relay Claude Code's permission prompts to the bridge and accept its
    /// verdicts. Only when the bridge authenticates who answers: a verdict
    /// approves tool use.
    #[arg(long)]
    pub permission_relay: bool,
    /// Server name as configured in Claude Code (used in the instructions).
    #[arg(long, default_value = "synthesis", value_name = "NAME")]
    pub name: String,

    // Tunables for tests and odd networks; hidden from --help.
    #[arg(long, hide = true, default_value_t = 250)]
    pub reconnect_min_ms: u64,
    #[arg(long, hide = true, default_value_t = 30_000)]
    pub reconnect_max_ms: u64,
    #[arg(long, hide = true, default_value_t = 10_000)]
    pub reconnect_reset_ms: u64,
    #[arg(long, hide = true, default_value_t = 20_000)]
    pub ping_interval_ms: u64,
    #[arg(long, hide = true, default_value_t = 10_000)]
    pub connect_timeout_ms: u64,
    #[arg(long, hide = true, default_value_t = 1024)]
    pub queue_max_frames: usize,
    #[arg(long, hide = true, default_value_t = 1024 * 1024)]
    pub queue_max_bytes: usize,
}

/// Shutdown budget. Claude Code sends SIGTERM 100 ms after SIGINT (and
/// SIGKILL 400 ms later); the whole goodbye must fit well inside the first
/// 100 ms even on a busy machine. On loopback the close answer takes well
/// under a millisecond; what the bridge has not confirmed by then is logged
/// by seq at exit, not waited for.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_millis(50);
const CLOSE_REPLY_TIMEOUT: Duration = Duration::from_millis(20);

/// A startup problem the operator must fix (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// [`WsArgs`] checked and resolved.
#[derive(Debug, Clone)]
pub struct WsSettings {
    pub client: ClientConfig,
    pub limits: OutboxLimits,
    pub permission_relay: bool,
    pub name: String,
}

impl WsSettings {
    /// Check the flags; `env` looks up fallbacks clap cannot express
    /// (`CLAUDE_CODE_SESSION_ID`).
    pub fn resolve(
        args: WsArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<WsSettings, UsageError> {
        let present = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let mut missing = Vec::new();
        let url = present(args.url);
        if url.is_none() {
            missing.push(
                "the bridge URL (--url or SYNTHESIS_WS_URL, e.g. ws://127.0.0.1:18901/bridge)",
            );
        }
        let openclaw_session = present(args.openclaw_session);
        if openclaw_session.is_none() {
            missing.push("the platform session (--openclaw-session or SYNTHESIS_OPENCLAW_SESSION)");
        }
        let claude_session =
            present(args.claude_session).or_else(|| present(env("CLAUDE_CODE_SESSION_ID")));
        if claude_session.is_none() {
            missing.push(
                "the Claude session (--claude-session, SYNTHESIS_CLAUDE_SESSION or CLAUDE_CODE_SESSION_ID)",
            );
        }
        if !missing.is_empty() {
            return Err(UsageError(format!("missing {}", missing.join("; "))));
        }
        let (url, openclaw_session, claude_session) = (
            url.unwrap(),
            openclaw_session.unwrap(),
            claude_session.unwrap(),
        );
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("ws://") || lower.starts_with("wss://")) {
            return Err(UsageError(format!(
                "--url must start with ws:// or wss://, got {:?}",
                client::redact_url(&url)
            )));
        }
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        if let Err(err) = url.as_str().into_client_request() {
            return Err(UsageError(format!(
                "--url is not a valid WebSocket URL: {err}"
            )));
        }
        let token = present(args.token);
        if let Some(token) = &token {
            if tokio_tungstenite::tungstenite::http::HeaderValue::from_str(&format!(
                "Bearer {token}"
            ))
            .is_err()
            {
                return Err(UsageError(
                    "--token contains characters not allowed in an HTTP header".into(),
                ));
            }
        }
        let tls = match args.ca_file.filter(|p| !p.as_os_str().is_empty()) {
            Some(path) => Some(Arc::new(tls_config_with_ca(&path)?)),
            None => None,
        };
        if args.ping_interval_ms == 0 || args.reconnect_max_ms < args.reconnect_min_ms {
            return Err(UsageError(
                "timing flags: ping interval must be > 0 and reconnect max ≥ min".into(),
            ));
        }
        Ok(WsSettings {
            client: ClientConfig {
                url,
                token,
                hello: OutFrame::Hello {
                    openclaw_session,
                    claude_session,
                    pid: std::process::id(),
                    version: env!("CARGO_PKG_VERSION").to_string(),
                },
                backoff: BackoffPolicy {
                    initial: Duration::from_millis(args.reconnect_min_ms),
                    max: Duration::from_millis(args.reconnect_max_ms),
                    reset_after: Duration::from_millis(args.reconnect_reset_ms),
                },
                ping_interval: Duration::from_millis(args.ping_interval_ms),
                tls,
                connect_timeout: Duration::from_millis(args.connect_timeout_ms.max(1)),
                close_flush_timeout: CLOSE_FLUSH_TIMEOUT,
                close_reply_timeout: CLOSE_REPLY_TIMEOUT,
            },
            limits: OutboxLimits {
                max_frames: args.queue_max_frames.max(1),
                max_bytes: args.queue_max_bytes.max(1),
            },
            permission_relay: args.permission_relay,
            name: args.name,
        })
    }
}

/// `channel-plugin ws`: serve MCP on stdio, bridge to the WebSocket peer,
/// until stdin closes or a signal arrives; then close the socket and exit 0.
pub async fn run(args: WsArgs) -> anyhow::Result<ExitCode> {
    let settings = match WsSettings::resolve(args, |key| std::env::var(key).ok()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!(
                "channel-plugin ws: {err}\n\nRun `channel-plugin ws --help` for the flags and an example."
            );
            return Ok(ExitCode::from(2));
        }
    };
    // Before any slow start-up work, so an early SIGINT is not lost.
    let signals = Signals::install().context("installing signal handlers")?;
    install_tls_provider();
    tracing::info!(
        url = %client::redact_url(&settings.client.url),
        name = %settings.name,
        permission_relay = settings.permission_relay,
        authenticated = settings.client.token.is_some(),
        "starting the WebSocket bridge"
    );

    let mut core_config = CoreConfig::new(settings.name.clone());
    core_config.permission_relay = settings.permission_relay;
    let (core, handle) = Core::new(core_config);
    let outbound = Outbound::new(settings.limits);
    let bridge: Arc<dyn Bridge> =
        Arc::new(WsBridge::new(outbound.clone(), settings.permission_relay));

    let (stop_client, client_stopped) = watch::channel(false);
    let client = tokio::spawn(client::run(
        settings.client.clone(),
        outbound,
        Arc::new(handle),
        client_stopped,
    ));

    let (input, output) = crate::stdio::streams();
    let end = core.serve(input, output, bridge, signals.wait()).await;
    tracing::info!(?end, "closing the bridge connection");
    let _ = stop_client.send(true);
    match tokio::time::timeout(Duration::from_secs(5), client).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::error!("bridge client task failed: {err}"),
        Err(_) => tracing::warn!("bridge client did not stop within 5 s"),
    }
    Ok(ExitCode::SUCCESS)
}

/// TLS client settings trusting the webpki (Mozilla) roots plus every
/// certificate in the PEM file at `path`. Any problem is the operator's to
/// fix, so it is a [`UsageError`] naming the file.
fn tls_config_with_ca(path: &std::path::Path) -> Result<rustls::ClientConfig, UsageError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let bad = |why: String| UsageError(format!("--ca-file {}: {why}", path.display()));
    let pem = std::fs::read(path).map_err(|err| bad(format!("cannot read it: {err}")))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| bad(format!("not a valid PEM file: {err}")))?;
    if certs.is_empty() {
        return Err(bad(
            "no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for (n, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|err| {
            bad(format!(
                "certificate #{} is not usable as a CA: {err}",
                n + 1
            ))
        })?;
    }
    // An explicit provider: resolve may run before `install_tls_provider`.
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|err| bad(format!("TLS setup failed: {err}")))
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
}

/// rustls needs one process-wide crypto provider for wss://; we ship ring.
fn install_tls_provider() {
    // Err only means one is installed already, which is just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: WsArgs,
    }

    fn args(list: &[&str]) -> WsArgs {
        let mut argv = vec!["ws"];
        argv.extend_from_slice(list);
        Cli::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn claude_session_falls_back_to_claude_code_env() {
        let a = args(&["--url", "ws://127.0.0.1:1/b", "--openclaw-session", "o"]);
        let s = WsSettings::resolve(a, |k| (k == "CLAUDE_CODE_SESSION_ID").then(|| "cc".into()))
            .unwrap();
        match s.client.hello {
            OutFrame::Hello {
                claude_session,
                openclaw_session,
                ..
            } => {
                assert_eq!(
                    (claude_session.as_str(), openclaw_session.as_str()),
                    ("cc", "o")
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.limits, OutboxLimits::default());
        assert_eq!(s.client.backoff, BackoffPolicy::default());
        assert_eq!(s.client.ping_interval, Duration::from_secs(20));
    }

    #[test]
    fn help_states_the_inbound_limits_the_code_enforces() {
        let mib = |bytes: usize| format!("over {} MiB", bytes >> 20);
        let refused = mib(frame::MAX_INBOUND_FRAME_BYTES);
        let unread = mib(client::MAX_INBOUND_MESSAGE_BYTES);
        assert!(EXAMPLE.contains(&format!("frames {refused} are refused")));
        assert!(EXAMPLE.contains(&format!("message {unread} is not even read")));
    }

    #[test]
    fn missing_values_are_all_named() {
        let err = WsSettings::resolve(args(&[]), |_| None).unwrap_err();
        for needle in [
            "SYNTHESIS_WS_URL",
            "SYNTHESIS_OPENCLAW_SESSION",
            "CLAUDE_CODE_SESSION_ID",
        ] {
            assert!(err.0.contains(needle), "{err}");
        }
        let err = WsSettings::resolve(
            args(&[
                "--url",
                "http://x",
                "--openclaw-session",
                "o",
                "--claude-session",
                "c",
            ]),
            |_| None,
        )
        .unwrap_err();
        assert!(err.0.contains("ws://"), "{err}");
        let err = WsSettings::resolve(
            args(&[
                "--url",
                "ws://h/",
                "--openclaw-session",
                "o",
                "--claude-session",
                "c",
                "--token",
                "a\nb",
            ]),
            |_| None,
        )
        .unwrap_err();
        assert!(err.0.contains("token"), "{err}");
    }

    fn with_ca(path: &std::path::Path) -> Result<WsSettings, UsageError> {
        let p = path.to_str().unwrap();
        WsSettings::resolve(
            args(&[
                "--url",
                "wss://h/",
                "--openclaw-session",
                "o",
                "--claude-session",
                "c",
                "--ca-file",
                p,
            ]),
            |_| None,
        )
    }

    #[test]
    fn a_bad_or_missing_ca_file_is_a_usage_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let err = with_ca(&missing).unwrap_err();
        assert!(
            err.0.contains("nope.pem") && err.0.contains("cannot read"),
            "{err}"
        );

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = with_ca(&empty).unwrap_err();
        assert!(err.0.contains("no PEM certificate"), "{err}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = with_ca(&garbage).unwrap_err();
        assert!(err.0.contains("garbage.pem"), "{err}");

        // Without the flag nothing changes: tokio-tungstenite's default roots.
        let a = args(&[
            "--url",
            "wss://h/",
            "--openclaw-session",
            "o",
            "--claude-session",
            "c",
        ]);
        assert!(WsSettings::resolve(a, |_| None)
            .unwrap()
            .client
            .tls
            .is_none());
    }
}
