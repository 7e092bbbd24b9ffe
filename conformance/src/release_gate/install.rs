//! Finding, and when asked installing, a real Claude Code release in the cache.
//!
//! Layout: `<cache>/<VERSION>/node_modules/@anthropic-ai/…`, made by
//! `npm install --prefix <cache>/<VERSION> @anthropic-ai/claude-code@<VERSION>`. Newer releases
//! ship a native binary in the optional dependency `@anthropic-ai/claude-code-linux-x64`; older
//! ones ship `cli.js`, run by `node`. The cache defaults to `~/.cache/claude-code` and is
//! overridden by `CLAUDE_CODE_CACHE`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

/// A runnable Claude Code release.
#[derive(Debug, Clone)]
pub struct Claude {
    /// The version as npm names it, e.g. `2.1.330`.
    pub version: String,
    /// The program to execute (the native binary, or `node`).
    pub program: PathBuf,
    /// Arguments placed before the CLI's own (`cli.js` for node releases).
    pub pre_args: Vec<OsString>,
    /// `native` or `node`.
    pub kind: &'static str,
}

impl Claude {
    /// A `Command` running this release with `args`.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.pre_args);
        cmd
    }
}

/// The cache root: `$CLAUDE_CODE_CACHE`, else `~/.cache/claude-code`.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("CLAUDE_CODE_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/root".into());
    home.join(".cache").join("claude-code")
}

/// The exact install command for `version`, for error messages and docs.
pub fn install_command(root: &Path, version: &str) -> String {
    format!(
        "npm install --prefix {}/{version} @anthropic-ai/claude-code@{version}",
        root.display()
    )
}

/// Finds an installed `version` under `root`, or `None`.
pub fn locate(root: &Path, version: &str) -> Option<Claude> {
    let scope = root
        .join(version)
        .join("node_modules")
        .join("@anthropic-ai");
    let native = scope.join("claude-code-linux-x64").join("claude");
    if native.is_file() {
        return Some(Claude {
            version: version.into(),
            program: native,
            pre_args: vec![],
            kind: "native",
        });
    }
    let cli = scope.join("claude-code").join("cli.js");
    if cli.is_file() {
        return Some(Claude {
            version: version.into(),
            program: "node".into(),
            pre_args: vec![cli.into_os_string()],
            kind: "node",
        });
    }
    None
}

/// `latest` through `npm view`, anything else as given.
pub fn resolve_version(version: &str) -> anyhow::Result<String> {
    if version != "latest" {
        return Ok(version.to_owned());
    }
    let out = Command::new("npm")
        .args(["view", "@anthropic-ai/claude-code", "version"])
        .output()
        .context("running `npm view @anthropic-ai/claude-code version` (is npm on PATH?)")?;
    if !out.status.success() {
        bail!(
            "npm view failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let v = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if v.is_empty() {
        bail!("npm view printed no version");
    }
    Ok(v)
}

/// Reuses the cached release or installs it with npm.
pub fn ensure(root: &Path, version: &str) -> anyhow::Result<Claude> {
    if let Some(found) = locate(root, version) {
        tracing::info!(version, program = %found.program.display(), "using cached Claude Code");
        return Ok(found);
    }
    let prefix = root.join(version);
    std::fs::create_dir_all(&prefix).with_context(|| format!("creating {}", prefix.display()))?;
    tracing::info!(version, "installing Claude Code with npm");
    let status = Command::new("npm")
        .arg("install")
        .arg("--prefix")
        .arg(&prefix)
        .arg(format!("@anthropic-ai/claude-code@{version}"))
        .status()
        .context("running npm install (is npm on PATH?)")?;
    if !status.success() {
        bail!("`{}` failed ({status})", install_command(root, version));
    }
    locate(root, version).with_context(|| {
        format!(
            "npm installed @anthropic-ai/claude-code@{version} but neither the linux-x64 binary \
             nor cli.js is under {}",
            prefix.display()
        )
    })
}
