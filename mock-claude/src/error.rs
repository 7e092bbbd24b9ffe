//! The library's error type. Every variant carries enough context to act on without a debugger.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while driving a plugin.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file or pipe failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A profile file is unreadable, not JSON, or fails `fixtures/schemas/profile.schema.json`.
    #[error("profile {path}: {message}")]
    Profile {
        /// The profile file.
        path: PathBuf,
        /// Every problem found, one per line.
        message: String,
    },
    /// No `claude-code-<VERSION>.json` in the fixtures dir.
    #[error("no profile for Claude Code {version} in {dir} (available: {available})")]
    ProfileNotFound {
        /// Requested version.
        version: String,
        /// Where we looked.
        dir: PathBuf,
        /// Versions that do exist, comma-separated.
        available: String,
    },
    /// The plugin command could not be started.
    #[error("cannot spawn plugin {command:?}: {source}")]
    Spawn {
        /// argv.
        command: Vec<String>,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Bad launch options (empty command, ...).
    #[error("invalid launch options: {0}")]
    Options(String),
    /// The client would fail the connection; the text is the client's own message
    /// (e.g. "Server's protocol version is not supported: 2026-07-28").
    #[error("connection failed: {0}")]
    ConnectionFailed(String),
    /// A wait ran out.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What we waited for.
        what: String,
        /// How long we waited.
        after: Duration,
    },
    /// Claude Code cut a tool call that had neither an answer nor a progress notification for
    /// the profile's idle limit (`tools_call.idle_timeout_ms`, 2.1.187+). What the client sends
    /// the server at that point is not documented: nothing is sent; a late answer is ignored.
    #[error("tools/call {tool} (id {id}) cut after {idle:?} with no answer and no progress (Claude Code {version} idle limit)")]
    ToolCallIdle {
        /// Tool called.
        tool: String,
        /// Request id.
        id: u64,
        /// The idle limit that ran out.
        idle: Duration,
        /// The profile's Claude Code version.
        version: String,
    },
    /// The plugin's stdout closed (it exited or closed stdout) while we needed it.
    #[error("connection closed while {what}: {reason}")]
    Closed {
        /// What we were doing.
        what: String,
        /// Why the connection is gone (exit status, EOF, line too long...).
        reason: String,
    },
    /// The plugin answered a request with a JSON-RPC error.
    #[error("{method} failed: MCP error {code}: {message}")]
    Rpc {
        /// Request method.
        method: String,
        /// JSON-RPC error code.
        code: i64,
        /// Error message.
        message: String,
        /// Optional `error.data`.
        data: Option<Box<serde_json::Value>>,
    },
    /// The plugin sent something that breaks the protocol in a way the client cannot use.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A call made in the wrong state (e.g. `call_tool` before `handshake`).
    #[error("not ready: {0}")]
    NotReady(String),
    /// The model (scripted or not) tried to call a tool the server did not list.
    #[error("tool {name:?} is not in the server's tools/list (listed: {listed})")]
    ToolNotListed {
        /// Tool asked for.
        name: String,
        /// Tools that were listed, comma-separated.
        listed: String,
    },
    /// A permission request cannot be sent; the text says which condition is missing.
    #[error("permission relay unavailable: {0}")]
    PermissionUnavailable(String),
    /// A script file is invalid, or a rule could not be applied.
    #[error("script: {0}")]
    Script(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
