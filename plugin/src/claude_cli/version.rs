//! `claude --version` parsing and the minimum release that has channels.

use std::fmt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// A Claude Code release number, `MAJOR.MINOR.PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClaudeVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

/// Channels arrived as a research preview in 2.1.80.
pub const MIN_CHANNELS_VERSION: ClaudeVersion = ClaudeVersion::new(2, 1, 80);
/// The permission relay arrived in 2.1.81.
pub const MIN_PERMISSION_RELAY_VERSION: ClaudeVersion = ClaudeVersion::new(2, 1, 81);

impl ClaudeVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Finds the first `N.N.N` in `claude --version` output
    /// (`2.1.330 (Claude Code)`), tolerating a leading `v` and trailing text.
    pub fn parse_output(output: &str) -> Option<Self> {
        output
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
            .filter(|w| !w.is_empty())
            .find_map(|w| w.trim_start_matches('v').parse().ok())
    }
}

impl FromStr for ClaudeVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Accept pre-release/build suffixes (`2.1.80-beta.1`): only the numbers matter.
        let core = s.split(['-', '+']).next().unwrap_or(s);
        let mut parts = core.split('.');
        let mut next = |what: &str| -> Result<u32, String> {
            parts
                .next()
                .ok_or_else(|| format!("{s:?}: missing {what} number"))?
                .parse::<u32>()
                .map_err(|e| format!("{s:?}: bad {what} number: {e}"))
        };
        let v = ClaudeVersion::new(next("major")?, next("minor")?, next("patch")?);
        if parts.next().is_some() {
            return Err(format!("{s:?}: more than three numbers"));
        }
        Ok(v)
    }
}

impl fmt::Display for ClaudeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Runs `<claude> --version` (bounded: a wedged binary must not hang the
/// launcher) and parses its answer.
pub fn query_version(claude: &Path, timeout: Duration) -> anyhow::Result<ClaudeVersion> {
    let mut child = Command::new(claude)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{} --version`", claude.display()))?;
    let started = Instant::now();
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!(
                "`{} --version` did not answer within {}s",
                claude.display(),
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        anyhow::bail!(
            "`{} --version` failed ({}): {}",
            claude.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    ClaudeVersion::parse_output(&stdout).with_context(|| {
        format!(
            "`{} --version` printed no version number: {:?}",
            claude.display(),
            stdout.trim()
        )
    })
}

/// Checks the release supports channels; the error says how to upgrade.
pub fn require_channels(claude: &Path, version: ClaudeVersion) -> anyhow::Result<()> {
    if version < MIN_CHANNELS_VERSION {
        anyhow::bail!(
            "{} is Claude Code {version}; channels need {MIN_CHANNELS_VERSION} or newer. \
             Upgrade with `claude update` or `npm install -g @anthropic-ai/claude-code@latest`",
            claude.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_version_output() {
        assert_eq!(
            ClaudeVersion::parse_output("2.1.330 (Claude Code)\n"),
            Some(ClaudeVersion::new(2, 1, 330))
        );
        assert_eq!(
            ClaudeVersion::parse_output("v2.1.80"),
            Some(ClaudeVersion::new(2, 1, 80))
        );
        assert_eq!(ClaudeVersion::parse_output("Claude Code"), None);
        assert_eq!(ClaudeVersion::parse_output("2.1"), None);
    }

    #[test]
    fn orders_numerically_not_lexically() {
        assert!(ClaudeVersion::new(2, 1, 100) > ClaudeVersion::new(2, 1, 80));
        assert!(ClaudeVersion::new(2, 1, 79) < MIN_CHANNELS_VERSION);
        assert!(ClaudeVersion::new(3, 0, 0) > MIN_CHANNELS_VERSION);
    }

    #[test]
    fn too_old_is_a_clear_error() {
        let err = require_channels(Path::new("claude"), ClaudeVersion::new(2, 1, 79))
            .unwrap_err()
            .to_string();
        assert!(err.contains("2.1.79") && err.contains("2.1.80"), "{err}");
        require_channels(Path::new("claude"), MIN_CHANNELS_VERSION).unwrap();
    }
}
