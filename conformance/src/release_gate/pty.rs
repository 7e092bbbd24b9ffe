//! Interactive Claude Code under a pseudo-terminal.
//!
//! The channel gate's reason is only logged in interactive mode, and interactive mode needs a
//! terminal (with no TTY the client falls back to print mode and ignores the channel flags). We
//! give it a real pty, answer the start-up dialogs that a seeded `~/.claude.json` does not cover
//! (notably the development-channels confirmation, shown on every launch), wait for the gate line
//! of the watched server in the debug log, then quit the way a user does (Ctrl-C twice), killing
//! only if that fails.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

/// What an interactive run left.
#[derive(Debug, Clone)]
pub struct PtyOutput {
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// Terminal output with escape sequences removed (last 64 KiB).
    pub screen: String,
}

/// Dialog texts (lower-cased needles) and the keys that accept them. Each is answered once.
const DIALOGS: &[(&str, &str)] = &[
    // Development channels confirmation: the first option is "I am using this for local
    // development"; Enter selects the highlighted (first) option.
    ("development channel", "\r"),
    ("do you trust the files", "\r"),
    ("trust this folder", "\r"),
    ("use this api key", "\x1b[A\r"),
    ("press enter to continue", "\r"),
];

/// Removes CSI/OSC escape sequences so needles can be found in what the user would read.
pub fn strip_ansi(raw: &str) -> String {
    let re = regex::Regex::new(r"\x1b\[[0-9;?<>=!]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78MDEc]")
        .expect("static regex");
    re.replace_all(raw, "").into_owned()
}

/// Runs `cmd` on a fresh pty until the debug log at `debug_path` has a gate line
/// (`MCP server "NAME": Channel notifications …`) for `watch_server`, or `timeout`.
pub async fn run_interactive(
    mut cmd: Command,
    debug_path: &Path,
    watch_server: &str,
    timeout: Duration,
) -> anyhow::Result<PtyOutput> {
    let ws = nix::pty::Winsize {
        ws_row: 40,
        ws_col: 140,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&ws), None).context("openpty")?;
    let slave: OwnedFd = pty.slave;
    cmd.stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave));
    // SAFETY: only async-signal-safe calls (setsid, ioctl) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("spawning the client on a pty")?;
    drop(cmd); // closes our copies of the slave side, so EOF on the master means the client is gone

    let master = std::fs::File::from(pty.master);
    let mut writer = master.try_clone()?;
    let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
    let reader_buf = Arc::clone(&buf);
    let mut reader = master;
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match reader.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => reader_buf
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(&chunk[..n]),
            }
        }
    });

    let needle = format!("MCP server \"{watch_server}\": Channel notifications");
    let deadline = Instant::now() + timeout;
    let mut answered = vec![false; DIALOGS.len()];
    let mut timed_out = false;
    let mut seen_gate_at: Option<Instant> = None;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if child.try_wait()?.is_some() {
            break;
        }
        let screen = {
            let raw = buf.lock().unwrap_or_else(|p| p.into_inner());
            strip_ansi(&String::from_utf8_lossy(&raw)).to_lowercase()
        };
        for (i, (text, keys)) in DIALOGS.iter().enumerate() {
            if !answered[i] && screen.contains(text) {
                answered[i] = true;
                tracing::info!(dialog = text, "answering start-up dialog");
                tokio::time::sleep(Duration::from_millis(300)).await;
                let _ = writer.write_all(keys.as_bytes());
            }
        }
        let debug = std::fs::read_to_string(debug_path).unwrap_or_default();
        if debug.contains(&needle) && seen_gate_at.is_none() {
            seen_gate_at = Some(Instant::now());
        }
        // Give the client a second after the gate line so what follows it is logged too.
        if seen_gate_at.is_some_and(|t| t.elapsed() > Duration::from_secs(1)) {
            break;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            break;
        }
    }

    // Quit like a user: Ctrl-C twice; escalate only if the client ignores it.
    let mut exit = child.try_wait()?;
    for _ in 0..3 {
        if exit.is_some() {
            break;
        }
        // The REPL wants a second Ctrl-C shortly after the first ("press Ctrl-C again to exit").
        let _ = writer.write_all(b"\x03");
        tokio::time::sleep(Duration::from_millis(150)).await;
        let _ = writer.write_all(b"\x03");
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            exit = child.try_wait()?;
            if exit.is_some() {
                break;
            }
        }
    }
    if exit.is_none() {
        tracing::warn!("client ignored Ctrl-C; sending SIGTERM");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        for _ in 0..25 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            exit = child.try_wait()?;
            if exit.is_some() {
                break;
            }
        }
    }
    if exit.is_none() {
        let _ = child.kill();
        exit = Some(child.wait()?);
    }
    let raw = buf.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let text = strip_ansi(&String::from_utf8_lossy(&raw));
    let tail = text
        .char_indices()
        .rev()
        .nth(65_536)
        .map(|(i, _)| text[i..].to_owned())
        .unwrap_or(text);
    let _ = writer.as_raw_fd();
    Ok(PtyOutput {
        exit_code: exit.and_then(|s| s.code()),
        timed_out,
        screen: tail,
    })
}
