//! Triggers: how the suite plays "the outside world" for a plugin.
//!
//! A channel plugin bridges Claude Code to something outside (a chat, a web
//! page, an agent platform). To test delivery the suite must make the plugin
//! receive an outside event (inject) and, for round-trips, see what the
//! plugin sends back out (observe). Each `--trigger` kind is one way to do
//! that; `none` runs only the passive checks.

mod command;
mod http;
mod ws;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

/// An outside event the suite asks the plugin to push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutsideEvent {
    pub content: String,
    /// Meta the outside attaches, in order.
    pub meta: Vec<(String, String)>,
    pub chat_id: Option<String>,
}

/// A reply the plugin delivered to the outside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutsideReply {
    pub text: String,
    pub chat_id: Option<String>,
    pub is_final: bool,
}

/// A permission request the plugin relayed to the outside.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutsidePermission {
    pub request_id: String,
    pub raw: serde_json::Value,
}

/// The `--trigger` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerSpec {
    /// Our HTTP bridge: discovery file in DIR, `POST /inject`, `GET /sse`.
    HttpDiscovery {
        dir: PathBuf,
    },
    /// The suite runs a WebSocket bridge server; the plugin connects out.
    WsBridge,
    /// A shell command that makes the plugin receive `{content}`.
    Command {
        template: String,
    },
    None,
}

impl FromStr for TriggerSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "none" {
            Ok(TriggerSpec::None)
        } else if s == "ws-bridge" {
            Ok(TriggerSpec::WsBridge)
        } else if let Some(dir) = s.strip_prefix("http-discovery:") {
            if dir.is_empty() {
                return Err(
                    "http-discovery needs a directory: http-discovery:/tmp/channels".into(),
                );
            }
            Ok(TriggerSpec::HttpDiscovery {
                dir: PathBuf::from(dir),
            })
        } else if let Some(cmd) = s.strip_prefix("command:") {
            if !cmd.contains("{content}") && !cmd.contains("{json}") {
                return Err(format!(
                    "command trigger {cmd:?} must contain the {{content}} (or {{json}}) placeholder"
                ));
            }
            Ok(TriggerSpec::Command {
                template: cmd.to_string(),
            })
        } else {
            Err(format!(
                "unknown trigger {s:?}: use http-discovery:<dir>, ws-bridge, command:'<cmd with {{content}}>' or none"
            ))
        }
    }
}

impl TriggerSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            TriggerSpec::HttpDiscovery { .. } => "http-discovery",
            TriggerSpec::WsBridge => "ws-bridge",
            TriggerSpec::Command { .. } => "command",
            TriggerSpec::None => "none",
        }
    }

    /// Shown in reports (no secrets: the command template is the user's own).
    pub fn describe(&self) -> String {
        match self {
            TriggerSpec::HttpDiscovery { dir } => format!("http-discovery:{}", dir.display()),
            TriggerSpec::WsBridge => "ws-bridge".into(),
            TriggerSpec::Command { template } => format!("command:{template}"),
            TriggerSpec::None => "none".into(),
        }
    }

    pub fn can_inject(&self) -> bool {
        !matches!(self, TriggerSpec::None)
    }

    pub fn can_observe(&self) -> bool {
        matches!(
            self,
            TriggerSpec::HttpDiscovery { .. } | TriggerSpec::WsBridge
        )
    }

    /// Why a check needing injection (or observation) cannot run.
    pub fn missing(&self, observe: bool) -> Option<String> {
        if !self.can_inject() {
            return Some("no trigger: pass --trigger so the suite can make the plugin receive an outside event".into());
        }
        if observe && !self.can_observe() {
            return Some(format!(
                "trigger {} cannot see what the plugin sends outside (use http-discovery:<dir> or ws-bridge)",
                self.kind()
            ));
        }
        None
    }

    /// Prepares the outside for one plugin session, labelled `label`
    /// (unique per profile × scenario). Returns the env and command
    /// placeholders the plugin needs and the outside handle.
    pub async fn prepare(&self, label: &str) -> anyhow::Result<Prepared> {
        match self {
            TriggerSpec::HttpDiscovery { dir } => http::prepare(dir, label).await,
            TriggerSpec::WsBridge => {
                // The bridge needs no directory, but `{dir}` works with every trigger.
                let mut prepared = ws::prepare(label).await?;
                prepared
                    .placeholders
                    .push(("dir", scratch_dir(label)?.display().to_string()));
                Ok(prepared)
            }
            TriggerSpec::Command { template } => {
                let dir = scratch_dir(label)?;
                Ok(command::prepare(template, &dir))
            }
            TriggerSpec::None => {
                let dir = scratch_dir(label)?;
                Ok(Prepared {
                    env: vec![],
                    placeholders: vec![("dir", dir.display().to_string())],
                    outside: Outside::new(Kind::None),
                })
            }
        }
    }
}

/// What a session needs to reach the outside.
pub struct Prepared {
    /// Extra env for the plugin process.
    pub env: Vec<(String, String)>,
    /// `{name}` → value substitutions in the plugin command.
    pub placeholders: Vec<(&'static str, String)>,
    pub outside: Outside,
}

impl Prepared {
    /// The plugin command with this session's placeholders filled in.
    pub fn command(&self, template: &str) -> String {
        let mut cmd = template.to_string();
        for (name, value) in &self.placeholders {
            cmd = cmd.replace(&format!("{{{name}}}"), &shell_quote(value));
        }
        cmd
    }
}

pub(crate) enum Kind {
    Http(http::HttpOutside),
    Ws(ws::WsOutside),
    Command(String, PathBuf),
    None,
}

/// The outside end of one session: inject events, watch replies and
/// permission requests, send verdicts.
pub struct Outside {
    kind: Kind,
    replies: Option<mpsc::UnboundedReceiver<OutsideReply>>,
    permissions: Option<mpsc::UnboundedReceiver<OutsidePermission>>,
}

impl Outside {
    pub(crate) fn new(kind: Kind) -> Self {
        Outside {
            kind,
            replies: None,
            permissions: None,
        }
    }

    pub(crate) fn with_streams(
        kind: Kind,
        replies: mpsc::UnboundedReceiver<OutsideReply>,
        permissions: mpsc::UnboundedReceiver<OutsidePermission>,
    ) -> Self {
        Outside {
            kind,
            replies: Some(replies),
            permissions: Some(permissions),
        }
    }

    /// Waits until the plugin's outside endpoint is reachable (discovery file
    /// written, WebSocket connected). `pid` is the plugin's process id.
    pub async fn connect(&mut self, pid: Option<u32>, timeout: Duration) -> anyhow::Result<()> {
        match &mut self.kind {
            Kind::Http(h) => {
                let (replies, permissions) = h.connect(pid, timeout).await?;
                self.replies = Some(replies);
                self.permissions = Some(permissions);
                Ok(())
            }
            Kind::Ws(w) => w.connect(timeout).await,
            Kind::Command(..) | Kind::None => Ok(()),
        }
    }

    pub async fn inject(&mut self, event: &OutsideEvent) -> anyhow::Result<()> {
        match &mut self.kind {
            Kind::Http(h) => h.inject(event).await,
            Kind::Ws(w) => w.inject(event).await,
            Kind::Command(template, dir) => command::run(template, dir, event).await,
            Kind::None => anyhow::bail!("no trigger configured"),
        }
    }

    /// The next reply that reached the outside, if any within `timeout`.
    pub async fn next_reply(&mut self, timeout: Duration) -> Option<OutsideReply> {
        let rx = self.replies.as_mut()?;
        tokio::time::timeout(timeout, rx.recv())
            .await
            .ok()
            .flatten()
    }

    pub async fn next_permission_request(
        &mut self,
        timeout: Duration,
    ) -> Option<OutsidePermission> {
        let rx = self.permissions.as_mut()?;
        tokio::time::timeout(timeout, rx.recv())
            .await
            .ok()
            .flatten()
    }

    pub async fn send_verdict(&mut self, request_id: &str, behavior: &str) -> anyhow::Result<()> {
        match &mut self.kind {
            Kind::Http(h) => h.verdict(request_id, behavior).await,
            Kind::Ws(w) => w.verdict(request_id, behavior).await,
            _ => anyhow::bail!("this trigger cannot answer permission requests"),
        }
    }

    /// Strings to redact from transcripts (bearer secrets).
    pub fn secrets(&self) -> Vec<String> {
        match &self.kind {
            Kind::Http(h) => h.secret().into_iter().collect(),
            _ => vec![],
        }
    }
}

/// A fresh per-session directory for `{dir}` when the trigger has none of
/// its own (a trigger file, a reply log...).
fn scratch_dir(label: &str) -> anyhow::Result<PathBuf> {
    let dir = scratch_root().join(label);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Where per-session scratch directories live: `<tmp>/channel-conformance/`.
/// Labels start with the run id, so concurrent runs never collide.
pub fn scratch_root() -> PathBuf {
    std::env::temp_dir().join("channel-conformance")
}

/// Removes what a run left in its directories (scratch dirs and, for
/// http-discovery, the per-session discovery dirs; plugins delete their
/// own discovery files on exit).
pub fn cleanup(spec: &TriggerSpec, run_id: &str) {
    let mut dirs = vec![scratch_root().join(run_id)];
    if let TriggerSpec::HttpDiscovery { dir } = spec {
        dirs.push(dir.join(run_id));
    }
    for d in dirs {
        if d.exists() {
            if let Err(e) = std::fs::remove_dir_all(&d) {
                tracing::warn!("cannot clean up {}: {e}", d.display());
            }
        }
    }
}

/// POSIX single-quote quoting for `sh -c`.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r#"'\''"#))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_trigger_kind() {
        assert_eq!("none".parse::<TriggerSpec>(), Ok(TriggerSpec::None));
        assert_eq!(
            "ws-bridge".parse::<TriggerSpec>(),
            Ok(TriggerSpec::WsBridge)
        );
        assert_eq!(
            "http-discovery:/tmp/x".parse::<TriggerSpec>(),
            Ok(TriggerSpec::HttpDiscovery {
                dir: "/tmp/x".into()
            })
        );
        assert!(
            "command:echo hi".parse::<TriggerSpec>().is_err(),
            "needs {{content}}"
        );
        assert!("command:echo {json} >> f".parse::<TriggerSpec>().is_ok());
        assert!("carrier-pigeon".parse::<TriggerSpec>().is_err());
    }

    #[test]
    fn quoting_survives_the_shell() {
        assert_eq!(shell_quote("plain"), "plain");
        assert_eq!(shell_quote("it's"), r#"'it'\''s'"#);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", shell_quote("a 'b' $HOME `x`")))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "a 'b' $HOME `x`");
    }
}
