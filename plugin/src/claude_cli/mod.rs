//! Everything the launcher, the supervisor and the doctor need to know about
//! the `claude` executable itself: where it is ([`locate`]), which release it
//! is ([`version`]), how to hand it our MCP server ([`mcp_config`]), and how to
//! read what it wrote about our channel in its debug log ([`gate`]).
//!
//! Nothing here talks MCP; that is the core's job.

pub mod gate;
pub mod locate;
pub mod mcp_config;
pub mod paths;
pub mod version;

pub use gate::{GateLine, GateOutcome, GateReason};
pub use locate::{locate_claude, ClaudeNotFound};
pub use version::{ClaudeVersion, MIN_CHANNELS_VERSION};
