//! `channel-plugin`: a Claude Code channel plugin.
//!
//! One MCP core ([`mcp`]) speaks newline-delimited JSON-RPC with Claude Code
//! over stdio; bridges ([`http`], [`ws`]) connect it to the outside. The two
//! halves meet only through [`bridge`].

pub mod bridge;
pub mod claude_cli;
pub mod doctor;
pub mod http;
pub mod launch;
pub mod mcp;
#[cfg(test)]
mod mutants;
pub mod shutdown;
pub mod spawn;
pub mod stdio;
pub mod ws;
