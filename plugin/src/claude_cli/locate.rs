//! Finding the `claude` executable: an explicit path, then `$CLAUDE_BIN`,
//! then `claude` on `$PATH`.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// Environment variable naming the claude executable to use.
pub const CLAUDE_BIN_ENV: &str = "CLAUDE_BIN";

#[derive(Debug, thiserror::Error)]
pub enum ClaudeNotFound {
    #[error("{path} (from {origin}) is not an executable file")]
    NotExecutable { path: PathBuf, origin: &'static str },
    #[error(
        "`claude` is not on PATH. Install Claude Code (`npm install -g @anthropic-ai/claude-code`, \
         2.1.80 or newer), or name the executable with --claude PATH or ${CLAUDE_BIN_ENV}"
    )]
    NotOnPath,
}

/// Where the claude executable was found, and why that one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub path: PathBuf,
    pub origin: &'static str,
}

/// `explicit` wins (a `--claude` flag), then `$CLAUDE_BIN`, then `$PATH`.
pub fn locate_claude(explicit: Option<&Path>) -> Result<Located, ClaudeNotFound> {
    let env = std::env::var_os(CLAUDE_BIN_ENV).filter(|v| !v.is_empty());
    let path = std::env::var_os("PATH");
    locate_with(explicit, env.as_deref(), path.as_deref())
}

/// [`locate_claude`] with the environment passed in (testable).
pub fn locate_with(
    explicit: Option<&Path>,
    claude_bin_env: Option<&OsStr>,
    path_env: Option<&OsStr>,
) -> Result<Located, ClaudeNotFound> {
    let chosen = explicit
        .map(|p| (p.to_path_buf(), "--claude"))
        .or_else(|| claude_bin_env.map(|p| (PathBuf::from(p), "$CLAUDE_BIN")));
    if let Some((path, origin)) = chosen {
        // A bare name (`--claude claude-beta`) is looked up on PATH like a shell would.
        let resolved = if path.components().count() == 1 && !path.is_absolute() {
            search_path(path.as_os_str(), path_env).unwrap_or(path)
        } else {
            path
        };
        return if is_executable(&resolved) {
            Ok(Located {
                path: resolved,
                origin,
            })
        } else {
            Err(ClaudeNotFound::NotExecutable {
                path: resolved,
                origin,
            })
        };
    }
    search_path(OsStr::new("claude"), path_env)
        .map(|path| Located {
            path,
            origin: "$PATH",
        })
        .ok_or(ClaudeNotFound::NotOnPath)
}

fn search_path(name: &OsStr, path_env: Option<&OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path_env?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

pub(crate) fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exe(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn order_is_flag_then_env_then_path() {
        let dir = tempfile::tempdir().unwrap();
        let on_path = exe(dir.path(), "claude");
        let from_env = exe(dir.path(), "claude-env");
        let from_flag = exe(dir.path(), "claude-flag");
        let path_env = dir.path().as_os_str();
        let found = locate_with(Some(&from_flag), Some(from_env.as_os_str()), Some(path_env));
        assert_eq!(found.unwrap().path, from_flag);
        let found = locate_with(None, Some(from_env.as_os_str()), Some(path_env)).unwrap();
        assert_eq!((found.path, found.origin), (from_env, "$CLAUDE_BIN"));
        let found = locate_with(None, None, Some(path_env)).unwrap();
        assert_eq!((found.path, found.origin), (on_path, "$PATH"));
    }

    #[test]
    fn missing_claude_says_how_to_install() {
        let dir = tempfile::tempdir().unwrap();
        let err = locate_with(None, None, Some(dir.path().as_os_str())).unwrap_err();
        assert!(err
            .to_string()
            .contains("npm install -g @anthropic-ai/claude-code"));
        let not_exe = dir.path().join("plain");
        std::fs::write(&not_exe, "").unwrap();
        let err = locate_with(Some(&not_exe), None, None).unwrap_err();
        assert!(err.to_string().contains("not an executable"), "{err}");
    }
}
