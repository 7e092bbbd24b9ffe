//! The channel gate: whether Claude Code listens to a server's pushes. Pure: a function of the
//! profile's ordered checks, the launch options, the server's capabilities and the era.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::options::{ChannelSpec, LaunchOptions};
use crate::profile::Profile;
use crate::render::fill_template;
use crate::Era;

/// One check of the gate (the profile orders them and holds their reason texts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateCheck {
    /// `capabilities.experimental["claude/channel"]` declared.
    Capability,
    /// The connection is in the legacy era (2.1.250+).
    Era,
    /// First-party provider.
    Provider,
    /// Channels feature available for the account.
    Feature,
    /// Org policy `channelsEnabled`.
    OrgPolicy,
    /// Named in `--channels` / dev channels for this session.
    SessionChannels,
    /// On the approved allowlist (or org allowlist), or loaded with the dev flag.
    Allowlist,
}

/// The gate's verdict for one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateDecision {
    /// Channel notifications are registered.
    pub registered: bool,
    /// The first failing check.
    pub failed_check: Option<GateCheck>,
    /// The client's reason text for the failure.
    pub reason: Option<String>,
    /// The debug-log line: `MCP server "NAME": Channel notifications skipped: REASON` or
    /// `... registered`.
    pub log_line: String,
}

/// Whether the server declared the channel capability where the client looks for it.
pub fn declares_channel(caps: &Value) -> bool {
    declares_experimental(caps, "claude/channel")
}

/// Whether `capabilities.experimental[name]` is declared (an object, or `true` for releases that
/// do not validate capability values).
pub fn declares_experimental(caps: &Value, name: &str) -> bool {
    matches!(
        caps.get("experimental").and_then(|e| e.get(name)),
        Some(Value::Object(_)) | Some(Value::Bool(true))
    )
}

fn session_entry(options: &LaunchOptions) -> ChannelSpec {
    match &options.plugin_source {
        Some(p) => ChannelSpec::Plugin {
            name: p.plugin.clone(),
            marketplace: p.marketplace.clone(),
        },
        None => ChannelSpec::Server(options.server_name.clone()),
    }
}

/// Run the profile's checks in order; the first failure wins.
pub fn evaluate(
    profile: &Profile,
    options: &LaunchOptions,
    server_caps: &Value,
    era: Era,
) -> GateDecision {
    let name = options.effective_server_name();
    let entry = session_entry(options);
    let entry_text = entry.to_string();
    for rule in &profile.gate.checks {
        let pass = match rule.check {
            GateCheck::Capability => declares_channel(server_caps),
            GateCheck::Era => era == Era::Legacy,
            GateCheck::Provider => profile
                .gate
                .first_party_providers
                .iter()
                .any(|p| p == options.provider.as_str()),
            GateCheck::Feature => options.feature_available,
            GateCheck::OrgPolicy => options.org_policy.channels_enabled != Some(false),
            GateCheck::SessionChannels => {
                options.channels.contains(&entry) || options.dev_channels.contains(&entry)
            }
            GateCheck::Allowlist => {
                options.dev_channels.contains(&entry)
                    || match &entry {
                        ChannelSpec::Server(_) => false,
                        ChannelSpec::Plugin { name, marketplace } => {
                            let id = format!("{name}@{marketplace}");
                            match (
                                &options.org_policy.allowed_channel_plugins,
                                profile.gate.org_allowlist_supported,
                            ) {
                                (Some(list), true) => list.contains(&id),
                                _ => profile.gate.approved_channel_plugins.contains(&id),
                            }
                        }
                    }
            }
        };
        if !pass {
            let reason = fill_template(&rule.reason, &[("name", &name), ("entry", &entry_text)]);
            let log_line = fill_template(
                &profile.gate.log_skipped,
                &[("name", &name), ("reason", &reason)],
            );
            return GateDecision {
                registered: false,
                failed_check: Some(rule.check),
                reason: Some(reason),
                log_line,
            };
        }
    }
    GateDecision {
        registered: true,
        failed_check: None,
        reason: None,
        log_line: fill_template(&profile.gate.log_registered, &[("name", &name)]),
    }
}
