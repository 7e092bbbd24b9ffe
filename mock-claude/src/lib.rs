//! `mock-claude`: stand in for Claude Code in front of a channel plugin (an MCP stdio server
//! that pushes `notifications/claude/channel`), frame for frame, per Claude Code release.
//!
//! Everything that differs between releases is data: a [`Profile`] per version under
//! `fixtures/profiles/`. The crate shares nothing with the plugin crate but those fixtures.
//!
//! ```no_run
//! # async fn demo() -> mock_claude::Result<()> {
//! use mock_claude::{LaunchOptions, MockClaude, Profile, Script};
//! use std::time::Duration;
//! let profile = Profile::by_version(mock_claude::fixtures_dir(), "2.1.330")?;
//! let options = LaunchOptions::dev("zoo", vec!["python3".into(), "fixtures/zoo/zoo_plugin.py".into()]);
//! let mut session = MockClaude::spawn(&profile, options).await?;
//! let hs = session.handshake().await?;
//! assert!(hs.gate.registered, "{}", hs.gate.log_line);
//! let turn = session.next_turn(Duration::from_secs(10)).await?;
//! println!("{}", turn.text);
//! let calls = session.run_script_turn(&Script::echo_reply(), &turn).await?;
//! let report = session.shutdown().await?;
//! assert!(report.exited);
//! assert!(session.transcript().violations().is_empty());
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod error;
pub mod gate;
pub mod options;
pub mod probe_memory;
pub mod profile;
pub mod render;
pub mod script;
pub mod session;
pub mod testing;
pub mod transcript;

use serde::{Deserialize, Serialize};

pub use error::{Error, Result};
pub use gate::{GateCheck, GateDecision};
pub use options::{
    shell_split, ChannelSpec, Entrypoint, LaunchOptions, OrgPolicy, PluginSource, Provider,
};
pub use probe_memory::{Clock, ManualClock, ProbeMemory, SystemClock};
pub use profile::{fixtures_dir, Profile};
pub use script::{Script, ScriptRule, ToolCallRecord, Trigger};
pub use session::{
    ChannelEvent, DiscoverOutcome, DropKind, DroppedEvent, ExitVia, Handshake, HandshakeTimings,
    IgnoredVerdict, MockClaude, OrphanProcess, Session, ShutdownReport, ToolResult, Turn, Verdict,
};
pub use transcript::{Direction, Entry, McpSchemas, Transcript, Violation};

/// Protocol era of a connection: `legacy` (initialize handshake, unsolicited notifications
/// work) or `modern` (MCP 2026-07-28 stateless lifecycle: channel notifications are skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Era {
    /// Classic handshake.
    Legacy,
    /// Stateless lifecycle.
    Modern,
}
