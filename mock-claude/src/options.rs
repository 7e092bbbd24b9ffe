//! What a user passes to Claude Code when it starts a channel server: the MCP config entry
//! (command, name, env), the `--channels` / `--dangerously-load-development-channels` flags, and
//! account/org facts the gate looks at.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// One entry of `--channels` or `--dangerously-load-development-channels`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelSpec {
    /// `server:NAME`: a server from the MCP config.
    Server(String),
    /// `plugin:NAME@MARKETPLACE`: a plugin-provided server.
    Plugin {
        /// Plugin name.
        name: String,
        /// Marketplace name.
        marketplace: String,
    },
}

impl ChannelSpec {
    /// `server:NAME`.
    pub fn server(name: impl Into<String>) -> Self {
        ChannelSpec::Server(name.into())
    }
    /// Parse a space-separated flag value (`server:a plugin:b@m`).
    pub fn parse_list(s: &str) -> Result<Vec<ChannelSpec>, Error> {
        s.split_whitespace().map(str::parse).collect()
    }
}

impl FromStr for ChannelSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        if let Some(name) = s.strip_prefix("server:") {
            if !name.is_empty() {
                return Ok(ChannelSpec::Server(name.into()));
            }
        }
        if let Some(rest) = s.strip_prefix("plugin:") {
            if let Some((name, mkt)) = rest.split_once('@') {
                if !name.is_empty() && !mkt.is_empty() {
                    return Ok(ChannelSpec::Plugin {
                        name: name.into(),
                        marketplace: mkt.into(),
                    });
                }
            }
        }
        Err(Error::Options(format!(
            "channel entry {s:?} must be `server:NAME` or `plugin:NAME@MARKETPLACE`"
        )))
    }
}

impl fmt::Display for ChannelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelSpec::Server(n) => write!(f, "server:{n}"),
            ChannelSpec::Plugin { name, marketplace } => write!(f, "plugin:{name}@{marketplace}"),
        }
    }
}

/// Where the model runs. Channels need a first-party provider (the profile says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// claude.ai login (default).
    #[default]
    Anthropic,
    /// Console API key (first party from 2.1.128).
    Console,
    /// Amazon Bedrock.
    Bedrock,
    /// Google Vertex AI.
    Vertex,
    /// Microsoft Foundry.
    Foundry,
}

impl Provider {
    /// Name used in profiles (`first_party_providers`).
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Anthropic => "anthropic",
            Provider::Console => "console",
            Provider::Bedrock => "bedrock",
            Provider::Vertex => "vertex",
            Provider::Foundry => "foundry",
        }
    }
}

impl FromStr for Provider {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "anthropic" => Provider::Anthropic,
            "console" => Provider::Console,
            "bedrock" => Provider::Bedrock,
            "vertex" => Provider::Vertex,
            "foundry" => Provider::Foundry,
            _ => {
                return Err(Error::Options(format!(
                    "unknown provider {s:?} (anthropic|console|bedrock|vertex|foundry)"
                )))
            }
        })
    }
}

/// Managed (org) settings that matter to channels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgPolicy {
    /// `channelsEnabled`. `None`: no managed setting (individual account) → allowed;
    /// `Some(false)` → gate check 5 fails.
    pub channels_enabled: Option<bool>,
    /// `allowedChannelPlugins` (`plugin@marketplace`), replacing Anthropic's allowlist (2.1.84+).
    pub allowed_channel_plugins: Option<Vec<String>>,
}

/// The plugin a server comes from (makes its name `plugin:<plugin>:<server>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginSource {
    /// Plugin name.
    pub plugin: String,
    /// Marketplace name.
    pub marketplace: String,
}

/// How Claude Code was started (value of `CLAUDE_CODE_ENTRYPOINT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Entrypoint {
    /// Interactive (`cli`).
    #[default]
    Cli,
    /// Print mode `-p` (`sdk-cli`).
    SdkCli,
}

impl Entrypoint {
    /// The env value.
    pub fn as_str(self) -> &'static str {
        match self {
            Entrypoint::Cli => "cli",
            Entrypoint::SdkCli => "sdk-cli",
        }
    }
}

/// Everything needed to start one channel server the way Claude Code would.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaunchOptions {
    /// argv of the server (`command` + `args` of the MCP config entry).
    pub command: Vec<String>,
    /// The server's name in the MCP config (for a plugin-provided server, the server part; see
    /// [`LaunchOptions::effective_server_name`]).
    pub server_name: String,
    /// Working / project dir (`CLAUDE_PROJECT_DIR`); `None` = the current dir.
    pub cwd: Option<PathBuf>,
    /// Extra env for the server (the config entry's `env`). Also consulted for client switches
    /// such as `MCP_PROTOCOL_NEGOTIATION=legacy`.
    pub extra_env: Vec<(String, String)>,
    /// `--channels`.
    pub channels: Vec<ChannelSpec>,
    /// `--dangerously-load-development-channels`.
    pub dev_channels: Vec<ChannelSpec>,
    /// Model provider.
    pub provider: Provider,
    /// Anthropic's availability gate for the account (on by default in the mock).
    pub feature_available: bool,
    /// Org managed settings.
    pub org_policy: OrgPolicy,
    /// Set when the server comes from a plugin.
    pub plugin_source: Option<PluginSource>,
    /// `cli` or `sdk-cli`.
    pub entrypoint: Entrypoint,
    /// Claude Code's remote flag for the permission relay (on by default).
    pub permission_relay_enabled: bool,
    /// Never send the `server/discover` probe, whatever the profile and the probe memory say.
    /// To model the client's own 7-day memory of an unanswered probe, use
    /// [`LaunchOptions::probe_memory`] instead.
    pub skip_discover_probe: bool,
    /// Claude Code's memory of servers whose probe went unanswered (its HOME). `None` = a fresh
    /// HOME: nothing remembered, nothing written. Used only when the profile has
    /// `discover.remember_unanswered_days`.
    #[serde(skip)]
    pub probe_memory: Option<crate::probe_memory::ProbeMemory>,
    /// Override of the profile's `tools_call.idle_timeout_ms` (tests use a short one). Has no
    /// effect under a profile without the idle cut.
    #[serde(default)]
    pub tool_idle_timeout: Option<std::time::Duration>,
    /// Fixed session id (random when `None`); handy for snapshots.
    pub session_id: Option<uuid::Uuid>,
}

impl Default for LaunchOptions {
    fn default() -> Self {
        LaunchOptions {
            command: Vec::new(),
            server_name: "channel".into(),
            cwd: None,
            extra_env: Vec::new(),
            channels: Vec::new(),
            dev_channels: Vec::new(),
            provider: Provider::Anthropic,
            feature_available: true,
            org_policy: OrgPolicy::default(),
            plugin_source: None,
            entrypoint: Entrypoint::Cli,
            permission_relay_enabled: true,
            skip_discover_probe: false,
            probe_memory: None,
            tool_idle_timeout: None,
            session_id: None,
        }
    }
}

const SHELL_META: &[char] = &[
    '|', '&', ';', '<', '>', '(', ')', '$', '`', '*', '?', '[', '~', '{', '}', '#', '\n',
];

/// Split a command line like a POSIX shell would for simple commands (quotes, backslashes).
/// Returns `None` when the line uses shell features (pipes, `$`, globs...) or has an open quote.
pub fn shell_split(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => cur.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => cur.push(c),
                            c => {
                                cur.push('\\');
                                cur.push(c);
                            }
                        },
                        '$' | '`' => return None,
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next()?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c if SHELL_META.contains(&c) => return None,
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Some(out)
}

impl LaunchOptions {
    /// Options for `argv` with defaults (server name `channel`, first-party, feature on).
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        LaunchOptions {
            command: argv.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }

    /// Options from a shell command line. Simple commands are split into argv (so signals reach
    /// the plugin itself, not a shell); anything using shell syntax runs as `sh -c 'exec LINE'`
    /// when it is a single command, else `sh -c LINE`.
    pub fn from_shell(line: &str) -> Self {
        let argv = match shell_split(line) {
            Some(argv) if !argv.is_empty() => argv,
            _ => {
                let single = !line.contains(['|', '&', ';', '\n']);
                let script = if single {
                    format!("exec {line}")
                } else {
                    line.to_string()
                };
                vec!["sh".into(), "-c".into(), script]
            }
        };
        Self::new(argv)
    }

    /// The usual local-development launch: named `server_name` and loaded with
    /// `--dangerously-load-development-channels server:<server_name>`.
    pub fn dev(server_name: &str, argv: Vec<String>) -> Self {
        LaunchOptions {
            command: argv,
            server_name: server_name.into(),
            dev_channels: vec![ChannelSpec::server(server_name)],
            ..Default::default()
        }
    }

    /// Builder: set the server name.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = name.into();
        self
    }
    /// Builder: add a `--channels` entry.
    pub fn channel(mut self, spec: ChannelSpec) -> Self {
        self.channels.push(spec);
        self
    }
    /// Builder: add a `--dangerously-load-development-channels` entry.
    pub fn dev_channel(mut self, spec: ChannelSpec) -> Self {
        self.dev_channels.push(spec);
        self
    }
    /// Builder: add an env var for the server.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_env.push((name.into(), value.into()));
        self
    }
    /// Builder: use `memory` as the client's memory of unanswered probes.
    pub fn probe_memory(mut self, memory: crate::probe_memory::ProbeMemory) -> Self {
        self.probe_memory = Some(memory);
        self
    }
    /// Builder: cut idle tool calls after `idle` instead of the profile's limit.
    pub fn tool_idle_timeout(mut self, idle: std::time::Duration) -> Self {
        self.tool_idle_timeout = Some(idle);
        self
    }
    /// Builder: set the working / project directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// The name Claude Code uses for the server: `plugin:<plugin>:<server>` for a plugin-provided
    /// server, else the config name. This is the `source` of rendered turns.
    pub fn effective_server_name(&self) -> String {
        match &self.plugin_source {
            Some(p) if !self.server_name.starts_with("plugin:") => {
                format!("plugin:{}:{}", p.plugin, self.server_name)
            }
            _ => self.server_name.clone(),
        }
    }

    /// Value of a client env switch in `extra_env`.
    pub fn env_value(&self, name: &str) -> Option<&str> {
        self.extra_env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}
