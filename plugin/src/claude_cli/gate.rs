//! Reading Claude Code's channel gate out of its debug log, and saying in plain
//! words what a verdict means and how to fix it.
//!
//! Claude Code (interactive mode) writes one line per MCP server once the
//! server has answered its listings:
//!
//! ```text
//! 2026-11-21T20:43:11.463Z [DEBUG] MCP server "chan": Channel notifications skipped: channels feature is not currently available
//! 2026-11-21T20:43:11.463Z [DEBUG] MCP server "chan": Channel notifications registered
//! ```
//!
//! The reasons are checked in a fixed order (CHANNELS.md §4); the first
//! failing check is the one logged, so a reason also tells which checks passed.

use std::fmt;

/// The marketplace name declared in `.claude-plugin/marketplace.json`.
pub const MARKETPLACE_NAME: &str = "channel-toolkit";
/// The plugin name declared in `claude-plugin/.claude-plugin/plugin.json`.
pub const PLUGIN_NAME: &str = "channel-plugin";

/// Why Claude Code did not listen to a server's pushes, in gate order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateReason {
    /// 1: `capabilities.experimental["claude/channel"]` missing.
    MissingCapability,
    /// 2: the connection uses the modern (stateless) MCP lifecycle.
    ModernEra,
    /// 3: Bedrock / Vertex / Foundry.
    ThirdPartyProvider,
    /// 4: Anthropic's availability gate for the account.
    FeatureUnavailable,
    /// 5: managed settings do not enable channels.
    OrgPolicy,
    /// 6: the session was not started naming this server.
    NotInChannelsList,
    /// 7: named with `--channels` but not on the approved allowlist.
    NotAllowlisted,
    /// A reason this build does not know (a newer Claude Code release).
    Unknown(String),
}

/// Every reason text of the gate table, in check order, as Claude Code 2.1.330
/// writes it (`NAME` stands for the server name).
pub const REASON_TEXTS: [&str; 7] = [
    "server did not declare claude/channel capability",
    "connection negotiated a modern protocol revision with no unsolicited notification path",
    "channels are not available on third-party providers",
    "channels feature is not currently available",
    "channels not enabled by org policy (set channelsEnabled: true in managed settings)",
    "server NAME not in --channels list for this session",
    "NAME is not on the approved channels allowlist (use --dangerously-load-development-channels for local dev)",
];

impl GateReason {
    /// Classifies a reason text (the part after `skipped: `).
    pub fn classify(text: &str) -> Self {
        let t = text.trim();
        if t.contains("did not declare claude/channel capability") {
            Self::MissingCapability
        } else if t.contains("negotiated a modern protocol revision") {
            Self::ModernEra
        } else if t.contains("third-party providers") {
            Self::ThirdPartyProvider
        } else if t.contains("channels feature is not currently available") {
            Self::FeatureUnavailable
        } else if t.contains("not enabled by org policy") {
            Self::OrgPolicy
        } else if t.contains("not in --channels list") {
            Self::NotInChannelsList
        } else if t.contains("approved channels allowlist") {
            Self::NotAllowlisted
        } else {
            Self::Unknown(t.to_owned())
        }
    }

    /// Position in the gate (1-based); `None` for an unknown reason.
    pub fn check_number(&self) -> Option<u8> {
        Some(match self {
            Self::MissingCapability => 1,
            Self::ModernEra => 2,
            Self::ThirdPartyProvider => 3,
            Self::FeatureUnavailable => 4,
            Self::OrgPolicy => 5,
            Self::NotInChannelsList => 6,
            Self::NotAllowlisted => 7,
            Self::Unknown(_) => return None,
        })
    }

    /// Whether the fix is on this machine (flags, plugin, config) rather than
    /// with the account or the organisation.
    pub fn is_local_setup_problem(&self) -> bool {
        matches!(
            self,
            Self::MissingCapability
                | Self::ModernEra
                | Self::NotInChannelsList
                | Self::NotAllowlisted
        )
    }

    /// What the verdict means and what to do about it, for server `server`.
    pub fn explain(&self, server: &str) -> Explanation {
        let dev_flag = dev_channels_flag(server);
        let (meaning, fix) = match self {
            Self::MissingCapability => (
                format!(
                    "Claude Code connected to {server:?} but its initialize result does not declare \
                     capabilities.experimental[\"claude/channel\"] = {{}} (declared at the top level \
                     of capabilities it is ignored), so it is treated as a plain MCP server."
                ),
                "Run a channel-plugin build (it declares the capability under `experimental`); for \
                 your own server, move \"claude/channel\": {} under capabilities.experimental."
                    .to_owned(),
            ),
            Self::ModernEra => (
                format!(
                    "The connection to {server:?} negotiated the modern (2026-07-28+) MCP lifecycle, \
                     which has no path for unsolicited notifications: the server answered the \
                     `server/discover` probe with a result."
                ),
                "A channel server must answer `server/discover` with error -32601 so Claude Code falls \
                 back to the classic initialize handshake (channel-plugin does); as a stopgap start \
                 claude with MCP_PROTOCOL_NEGOTIATION=legacy."
                    .to_owned(),
            ),
            Self::ThirdPartyProvider => (
                "Claude Code is running against a third-party provider (Amazon Bedrock, Google \
                 Vertex AI or Microsoft Foundry); channels exist only on Anthropic's own API."
                    .to_owned(),
                "Unset CLAUDE_CODE_USE_BEDROCK / CLAUDE_CODE_USE_VERTEX / CLAUDE_CODE_USE_FOUNDRY and \
                 log in with a claude.ai account (`/login` inside claude)."
                    .to_owned(),
            ),
            Self::FeatureUnavailable => (
                "Checks 1-3 passed (capability declared, classic protocol era, first-party provider), \
                 but Anthropic has not made the channels research preview available to this login, \
                 or Claude Code could not ask (offline, not logged in, or a plan without access). \
                 This is Anthropic's availability gate; nothing local can or should bypass it."
                    .to_owned(),
                "Log in with a claude.ai account that has channels (`/login` inside claude; Console API \
                 keys work from 2.1.128), make sure claude can reach Anthropic, then restart the \
                 session."
                    .to_owned(),
            ),
            Self::OrgPolicy => (
                "Your organisation's managed settings do not enable channels.".to_owned(),
                format!(
                    "Ask your admin to set `channelsEnabled: true` in managed settings (and, if they use \
                     an allowlist, add `{PLUGIN_NAME}@{MARKETPLACE_NAME}` to `allowedChannelPlugins`)."
                ),
            ),
            Self::NotInChannelsList => (
                format!(
                    "Claude Code connected to {server:?} and accepted it as a channel server, but this \
                     session was not started naming it as a channel, so its events are ignored."
                ),
                format!(
                    "Start claude with `{dev_flag}` (local development; `channel-plugin launch` does \
                     this for you) or `--channels {}` once it is on the approved allowlist.",
                    channel_ref(server)
                ),
            ),
            Self::NotAllowlisted => (
                format!(
                    "{server:?} was named with --channels but is not on Anthropic's approved channels \
                     allowlist (or your organisation's allowedChannelPlugins)."
                ),
                format!(
                    "For local development start with `{dev_flag}` instead (claude asks for a one-time \
                     confirmation in the terminal; `channel-plugin spawn \
                     --accept-development-channels-warning` answers it for headless sessions)."
                ),
            ),
            Self::Unknown(text) => (
                format!("Claude Code skipped {server:?} for a reason this build does not know: {text:?}."),
                "Compare with the gate table in the channels reference for your Claude Code release; \
                 upgrade channel-plugin if it is older than your claude."
                    .to_owned(),
            ),
        };
        Explanation { meaning, fix }
    }
}

impl fmt::Display for GateReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.check_number() {
            Some(n) => {
                let text = REASON_TEXTS[usize::from(n) - 1];
                write!(f, "check {n}: {text}")
            }
            None => match self {
                Self::Unknown(t) => write!(f, "unknown reason: {t}"),
                _ => unreachable!(),
            },
        }
    }
}

/// The channel reference claude expects for a server name: a plugin-provided
/// server (`plugin:<plugin>:<server>`) is named `plugin:<plugin>@<marketplace>`.
pub fn channel_ref(server: &str) -> String {
    match server.strip_prefix("plugin:") {
        Some(rest) => {
            let plugin = rest.split(':').next().unwrap_or(rest);
            let marketplace = if plugin == PLUGIN_NAME {
                MARKETPLACE_NAME
            } else {
                "MARKETPLACE"
            };
            format!("plugin:{plugin}@{marketplace}")
        }
        None => format!("server:{server}"),
    }
}

fn dev_channels_flag(server: &str) -> String {
    format!(
        "--dangerously-load-development-channels {}",
        channel_ref(server)
    )
}

/// Plain-words meaning plus the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub meaning: String,
    pub fix: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateOutcome {
    Registered,
    Skipped(GateReason),
}

/// One gate verdict found in a debug log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateLine {
    /// The log line's leading timestamp, when it has one.
    pub timestamp: Option<String>,
    /// The server name as Claude Code knows it (`channel`, `plugin:p:s`).
    pub server: String,
    pub outcome: GateOutcome,
    /// The whole line, for quoting back to the user.
    pub raw: String,
}

impl GateLine {
    /// Parses one debug-log line; `None` when it is not a gate verdict.
    pub fn parse(line: &str) -> Option<Self> {
        let (server, rest) = server_and_rest(line)?;
        let rest = rest.strip_prefix("Channel notifications ")?;
        let outcome = if rest.trim_end() == "registered" {
            GateOutcome::Registered
        } else {
            GateOutcome::Skipped(GateReason::classify(rest.strip_prefix("skipped: ")?))
        };
        Some(Self {
            timestamp: timestamp(line),
            server,
            outcome,
            raw: line.trim_end().to_owned(),
        })
    }
}

/// How one MCP connection went, from the lines around the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// `Connection established with capabilities: {… "protocolEra":"legacy" …}`
    Established {
        server: String,
        protocol_era: Option<String>,
        protocol_version: Option<String>,
    },
    /// `Connection failed …` (the server exited, timed out, or spoke garbage).
    Failed { server: String, detail: String },
}

impl ConnectionEvent {
    pub fn parse(line: &str) -> Option<Self> {
        let (server, rest) = server_and_rest(line)?;
        if let Some(json) = rest.strip_prefix("Connection established with capabilities: ") {
            let v: serde_json::Value = serde_json::from_str(json.trim()).ok()?;
            let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
            return Some(Self::Established {
                server,
                protocol_era: s("protocolEra"),
                protocol_version: s("negotiatedProtocolVersion"),
            });
        }
        if rest.contains("Connection failed")
            || rest.starts_with("Connection to MCP server") && rest.contains("failed")
        {
            return Some(Self::Failed {
                server,
                detail: rest.trim().to_owned(),
            });
        }
        None
    }

    pub fn server(&self) -> &str {
        match self {
            Self::Established { server, .. } | Self::Failed { server, .. } => server,
        }
    }
}

/// Every gate verdict in a debug log, in file order.
pub fn gate_lines(log: &str) -> Vec<GateLine> {
    log.lines().filter_map(GateLine::parse).collect()
}

/// Every connection event in a debug log, in file order.
pub fn connection_events(log: &str) -> Vec<ConnectionEvent> {
    log.lines().filter_map(ConnectionEvent::parse).collect()
}

/// `… MCP server "NAME": REST` → (NAME, REST).
fn server_and_rest(line: &str) -> Option<(String, &str)> {
    let start = line.find("MCP server \"")? + "MCP server \"".len();
    let tail = &line[start..];
    let end = tail.find("\": ")?;
    Some((tail[..end].to_owned(), &tail[end + 3..]))
}

fn timestamp(line: &str) -> Option<String> {
    let first = line.split_whitespace().next()?;
    (first.len() >= 19 && first.as_bytes()[4] == b'-' && first.contains('T'))
        .then(|| first.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(reason: &str) -> String {
        format!(
            "2026-11-21T20:43:11.463Z [DEBUG] MCP server \"chan\": Channel notifications skipped: {reason}"
        )
    }

    #[test]
    fn every_reason_text_is_classified_in_gate_order() {
        for (i, text) in REASON_TEXTS.iter().enumerate() {
            let text = text.replace("NAME", "chan");
            let parsed = GateLine::parse(&line(&text)).expect("gate line");
            let GateOutcome::Skipped(reason) = parsed.outcome else {
                panic!("not skipped")
            };
            assert_eq!(reason.check_number(), Some(i as u8 + 1), "{text}");
            let e = reason.explain("chan");
            assert!(!e.meaning.is_empty() && !e.fix.is_empty());
        }
    }

    #[test]
    fn observed_availability_line_parses() {
        let raw = "2026-11-21T20:43:11.463Z [DEBUG] MCP server \"chan\": Channel notifications skipped: channels feature is not currently available";
        let g = GateLine::parse(raw).unwrap();
        assert_eq!(g.server, "chan");
        assert_eq!(g.timestamp.as_deref(), Some("2026-11-21T20:43:11.463Z"));
        assert_eq!(
            g.outcome,
            GateOutcome::Skipped(GateReason::FeatureUnavailable)
        );
        let r = GateLine::parse("x MCP server \"plugin:a:b\": Channel notifications registered")
            .unwrap();
        assert_eq!(
            (r.server.as_str(), r.outcome),
            ("plugin:a:b", GateOutcome::Registered)
        );
        assert!(GateLine::parse("MCP server \"chan\": Successfully connected").is_none());
    }

    #[test]
    fn fixes_name_the_right_flag() {
        let fix = GateReason::NotInChannelsList.explain("channel").fix;
        assert!(
            fix.contains("--dangerously-load-development-channels server:channel"),
            "{fix}"
        );
        let fix = GateReason::NotInChannelsList
            .explain("plugin:channel-plugin:channel")
            .fix;
        assert!(
            fix.contains("plugin:channel-plugin@channel-toolkit"),
            "{fix}"
        );
        let fix = GateReason::NotAllowlisted.explain("channel").fix;
        assert!(
            fix.contains("--dangerously-load-development-channels server:channel"),
            "{fix}"
        );
    }

    #[test]
    fn unknown_reason_is_kept_verbatim() {
        let g = GateLine::parse(&line("a brand new reason")).unwrap();
        assert_eq!(
            g.outcome,
            GateOutcome::Skipped(GateReason::Unknown("a brand new reason".into()))
        );
    }

    #[test]
    fn connection_lines_give_the_era() {
        let raw = r#"2026-11-21T20:43:11.459Z [DEBUG] MCP server "chan": Connection established with capabilities: {"hasTools":true,"protocolEra":"legacy","negotiatedProtocolVersion":"2025-11-25"}"#;
        assert_eq!(
            ConnectionEvent::parse(raw),
            Some(ConnectionEvent::Established {
                server: "chan".into(),
                protocol_era: Some("legacy".into()),
                protocol_version: Some("2025-11-25".into()),
            })
        );
    }
}
