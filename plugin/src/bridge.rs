//! The contract between the MCP core and a bridge to the outside world.
//!
//! The core owns stdio and the MCP session; a bridge owns one outside transport
//! (loopback HTTP, an outbound WebSocket, ...). They meet only here:
//!
//! * bridge → core: [`crate::mcp::CoreHandle`] (`push` a channel event, relay a
//!   permission verdict, read status);
//! * core → bridge: the [`Bridge`] trait (a `reply` tool call, a permission
//!   request from Claude Code, a resolved permission).
//!
//! Every method here is synchronous and non-blocking: a bridge enqueues and
//! returns, so a slow outside peer can never stall the stdio loop.

use std::fmt;

/// Ordered channel meta: attribute name → string value, in insertion order
/// (Claude Code renders attributes in this order).
pub type Meta = Vec<(String, String)>;

/// An outside event to push into the Claude Code session as
/// `notifications/claude/channel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelEvent {
    pub content: String,
    /// Already validated by [`crate::mcp::meta::normalize`].
    pub meta: Meta,
}

/// Monotonic id the core assigns to an accepted event (returned to HTTP callers).
pub type EventId = u64;

/// Why the core did not accept a push. Callers must surface this (HTTP 503, a
/// WebSocket error frame); an event is never dropped silently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The outgoing queue is full (the client stopped reading stdout, or too
    /// many events are held before the handshake finished). Try again later.
    #[error("channel queue is full ({queued} events waiting); retry in {retry_after_secs}s")]
    Busy {
        queued: usize,
        retry_after_secs: u64,
    },
    /// The session is ending; the event was not accepted.
    #[error("the MCP session is shutting down")]
    ShuttingDown,
}

/// A permission verdict, as Claude Code spells it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Behavior {
    Allow,
    Deny,
}

impl fmt::Display for Behavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Behavior::Allow => "allow",
            Behavior::Deny => "deny",
        })
    }
}

/// Why a verdict from the outside was not relayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerdictError {
    #[error("permission relay is off (start the plugin with --permission-relay)")]
    RelayDisabled,
    #[error("no pending permission request with id {0:?}")]
    Unknown(String),
    #[error("permission request {0:?} was already answered")]
    AlreadyAnswered(String),
    #[error("the MCP session is shutting down")]
    ShuttingDown,
}

/// `notifications/claude/channel/permission_request` params, as received.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PermissionRequest {
    pub request_id: String,
    pub tool_name: String,
    pub description: String,
    pub input_preview: String,
}

/// Arguments of one `reply` tool call, already validated by the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub chat_id: Option<String>,
    /// `false` marks a progress chunk; the outside buffers until a final one.
    pub is_final: bool,
}

/// How a bridge handled a reply; the core turns it into the tool result text
/// so the model knows what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyDelivery {
    /// Handed to at least one connected outside peer.
    Sent { detail: String },
    /// Accepted and stored; it will be delivered when a peer (re)connects.
    Queued { detail: String },
}

/// Why a bridge refused a reply; the model sees it as an `isError` result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReplyError(pub String);

/// The outside side of the plugin. Implementations must not block.
pub trait Bridge: Send + Sync + 'static {
    /// The model called `reply`.
    fn reply(&self, reply: Reply) -> Result<ReplyDelivery, ReplyError>;
    /// Claude Code asks the outside to approve a tool use (relay on only).
    fn permission_request(&self, request: &PermissionRequest);
    /// A pending request got its verdict (from this or another path).
    fn permission_resolved(&self, request_id: &str, behavior: Behavior);
}
