//! The MCP core: the stdio JSON-RPC session with Claude Code, shared by every
//! bridge. Bridges use [`Core`], [`CoreHandle`], [`CoreConfig`] and
//! [`meta::normalize`]; the rest is internal structure.

pub mod codec;
mod core;
mod dispatch;
mod fast_path;
pub mod instructions;
pub mod jsonrpc;
pub mod memory;
pub mod meta;
mod permissions;
pub mod tools;
mod writer;

pub use self::core::{
    Core, CoreConfig, CoreHandle, CoreStatus, ServeEnd, CHANNEL_METHOD, FALLBACK_PROTOCOL_VERSION,
    PERMISSION_REQUEST_METHOD, PERMISSION_VERDICT_METHOD, SUPPORTED_PROTOCOL_VERSIONS,
};

#[cfg(test)]
mod tests;
