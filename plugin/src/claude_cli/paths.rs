//! Well-known file locations shared by launch, spawn and doctor.

use std::path::PathBuf;

/// Env var that overrides the discovery directory (same as the http bridge).
pub const CHANNEL_DIR_ENV: &str = "OPZERO_CHANNEL_DIR";

/// `$HOME`, or `/` when unset (a service account with no home still gets a path
/// that produces a clear "cannot create" error rather than a panic).
pub fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// Where the HTTP bridge writes `<session-id>.json` discovery files.
pub fn default_discovery_dir() -> PathBuf {
    std::env::var_os(CHANNEL_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home_dir().join(".opzero-claude").join("channels"))
}

/// The debug log `launch` and `spawn` ask claude to write for a session, and
/// the first place `doctor` looks: `~/.claude/debug/<session-id>.txt`.
pub fn default_debug_log(session_id: &str) -> PathBuf {
    home_dir()
        .join(".claude")
        .join("debug")
        .join(format!("{session_id}.txt"))
}

/// Whether claude already has a transcript for this session under
/// `~/.claude/projects/*/<id>.jsonl` (then it must be `--resume`d: claude
/// refuses `--session-id` for an id already in use).
pub fn session_transcript_exists(session_id: &str) -> bool {
    let projects = home_dir().join(".claude").join("projects");
    let Ok(entries) = std::fs::read_dir(projects) else {
        return false;
    };
    let file = format!("{session_id}.jsonl");
    entries
        .flatten()
        .any(|project| project.path().join(&file).is_file())
}
