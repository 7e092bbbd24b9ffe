//! Shared by the launch/spawn/package/doctor integration tests (included with
//! `#[path]`): the real Claude Code binary, an offline HOME for it, a pty
//! runner, and waiting helpers. Compiled on its own too, where it has no tests.
#![allow(dead_code)]

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use channel_plugin::spawn::pty::{spawn_in_pty, strip_terminal_codes};

pub const CLAUDE_VERSION: &str = "2.1.330";

/// This crate's binary, built by cargo for the integration tests.
pub fn plugin_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_channel-plugin"))
}

/// The repository root (the marketplace lives there).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The real Claude Code binary: `$CLAUDE_CODE_BIN`, else the npm install under
/// `~/.cache/claude-code/2.1.330`. Missing: a loud skip when
/// `CHANNEL_SKIP_REAL_CLAUDE=1`, otherwise a failure that says how to install.
pub fn real_claude(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("CLAUDE_CODE_BIN")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(format!(
                ".cache/claude-code/{CLAUDE_VERSION}/node_modules/.bin/claude"
            ))
        });
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("CHANNEL_SKIP_REAL_CLAUDE").as_deref() == Ok("1") {
        eprintln!(
            "\n!!!!!!!! SKIPPED {test}: real Claude Code binary not found at {} \
             (CHANNEL_SKIP_REAL_CLAUDE=1) !!!!!!!!\n",
            path.display()
        );
        return None;
    }
    panic!(
        "{test} needs the real Claude Code binary at {} (or set CLAUDE_CODE_BIN). Install it with:\n  \
         npm install --prefix ~/.cache/claude-code/{CLAUDE_VERSION} @anthropic-ai/claude-code@{CLAUDE_VERSION}\n\
         or set CHANNEL_SKIP_REAL_CLAUDE=1 to skip these tests.",
        path.display()
    );
}

const FAKE_KEY: &str = "sk-ant-api03-offline-test-key-0000000000000000000000000000";

/// A fresh HOME with a pre-seeded `~/.claude.json` (onboarding done, the fake
/// key approved, the project trusted) and a loopback stand-in for the API that
/// answers every request 404, so nothing leaves the machine.
pub struct OfflineHome {
    pub dir: tempfile::TempDir,
    pub project: PathBuf,
    api_port: u16,
}

impl Default for OfflineHome {
    fn default() -> Self {
        Self::new()
    }
}

impl OfflineHome {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let project = dir.path().join("project");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&project).unwrap();
        let project = project.canonicalize().unwrap();
        let key_tail = &FAKE_KEY[FAKE_KEY.len() - 20..];
        let cfg = serde_json::json!({
            "hasCompletedOnboarding": true,
            "customApiKeyResponses": {"approved": [key_tail], "rejected": []},
            "projects": {project.to_string_lossy(): {"hasTrustDialogAccepted": true, "allowedTools": []}},
        });
        std::fs::write(home.join(".claude.json"), cfg.to_string()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let api_port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut s = stream;
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = std::io::Write::write_all(
                    &mut s,
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Self {
            dir,
            project,
            api_port,
        }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Offline environment for claude and everything it starts.
    pub fn apply(&self, cmd: &mut Command) {
        for var in [
            "CLAUDECODE",
            "CLAUDE_CODE_SESSION_ID",
            "CLAUDE_CODE_ENTRYPOINT",
            "CLAUDE_BIN",
            "CHANNEL_PLUGIN_BIN",
            "OPZERO_CHANNEL_DIR",
            "OPZERO_CHANNEL_SESSION_ID",
            "SYNTHESIS_WS_URL",
            "SYNTHESIS_OPENCLAW_SESSION",
            "SYNTHESIS_CLAUDE_SESSION",
            "ANTHROPIC_AUTH_TOKEN",
            "CLAUDE_CODE_OAUTH_TOKEN",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("HOME", self.home())
            .env("ANTHROPIC_API_KEY", FAKE_KEY)
            .env(
                "ANTHROPIC_BASE_URL",
                format!("http://127.0.0.1:{}", self.api_port),
            )
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("DISABLE_AUTOUPDATER", "1")
            .env("CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL", "1")
            .env("TERM", "xterm-256color")
            .env("RUST_LOG", "info");
    }
}

/// A process tree under a pty; the screen is collected in the background.
/// Dropping it kills the whole process group.
pub struct PtyRun {
    pub pgid: i32,
    pub child: std::process::Child,
    pub screen: Arc<Mutex<String>>,
}

impl PtyRun {
    pub fn start(cmd: &mut Command) -> Self {
        let pty = spawn_in_pty(cmd, 120, 40).expect("spawn under pty");
        let pgid = pty.pgid();
        let screen = Arc::new(Mutex::new(String::new()));
        let sink = screen.clone();
        let mut master = pty.master;
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = strip_terminal_codes(&String::from_utf8_lossy(&buf[..n]));
                sink.lock().unwrap().push_str(&text);
            }
        });
        Self {
            pgid,
            child: pty.child,
            screen,
        }
    }

    pub fn screen(&self) -> String {
        self.screen.lock().unwrap().clone()
    }

    pub fn stop(&mut self) {
        kill_group(self.pgid);
        let _ = self.child.wait();
    }
}

impl Drop for PtyRun {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn kill_group(pgid: i32) {
    unsafe {
        libc::kill(-pgid, libc::SIGTERM);
    }
    std::thread::sleep(Duration::from_millis(500));
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

pub fn group_alive(pgid: i32) -> bool {
    unsafe { libc::kill(-pgid, 0) == 0 }
}

/// Waits (up to 15 s) for every process of the group to be gone; killed
/// grandchildren linger as zombies until their new parent reaps them.
pub fn group_gone(pgid: i32) -> bool {
    wait_until(Duration::from_secs(15), || !group_alive(pgid))
}

/// Polls `path` until a line contains `needle`; returns that line.
pub fn wait_for_line(path: &Path, needle: &str, timeout: Duration) -> Result<String, String> {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                return Ok(line.to_owned());
            }
        }
        if start.elapsed() > timeout {
            let tail = std::fs::read_to_string(path)
                .map(|t| {
                    let lines: Vec<&str> = t.lines().collect();
                    lines[lines.len().saturating_sub(40)..].join("\n")
                })
                .unwrap_or_else(|e| format!("(unreadable: {e})"));
            return Err(format!(
                "no line containing {needle:?} in {} after {:?}; tail:\n{tail}",
                path.display(),
                timeout
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Polls until `f` returns true.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// Writes an executable shell script.
pub fn script(path: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_path_buf()
}

/// The gate line Claude Code writes offline: checks 1-3 passed, stopped at 4.
pub fn availability_gate_line(server: &str) -> String {
    format!("MCP server \"{server}\": Channel notifications skipped: channels feature is not currently available")
}
