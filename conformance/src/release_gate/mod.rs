//! The real-Claude-Code release gate: record a release black-box, derive its profile, diff it.
//!
//! Pieces, one concept each:
//! - [`install`]: find or npm-install a release in `~/.cache/claude-code/<VERSION>`.
//! - [`events`]: the NDJSON event log shared by every process of a recording.
//! - [`probe`]: the recording stdio MCP server the real client is pointed at.
//! - [`fake_api`]: a loopback fake of the Messages API that drives one tool call.
//! - [`session`]: one sandboxed, offline run of the client (`mcp list`, `-p`, interactive).
//! - [`pty`]: the pseudo-terminal driver for interactive runs.
//! - [`record`]: the scenarios, and redacting a run into a committed recording.
//! - [`derive`]: a profile from a release's recordings.
//! - [`diff`]: drift between two profiles.
//! - [`fidelity`]: mock-claude with the derived profile vs the real client.
//! - [`plugin_lane`]: our `channel-plugin` under the real client.
//! - [`report`]: the JSON + Markdown report.
//! - [`gate`]: all of it for one release.

pub mod derive;
pub mod diff;
pub mod events;
pub mod fake_api;
pub mod fidelity;
pub mod gate;
pub mod install;
pub mod plugin_lane;
pub mod probe;
pub mod pty;
pub mod record;
pub mod report;
pub mod session;
