//! `channel-plugin doctor`: the seed's debug checklist as a command.
//!
//! 1. Is claude installed, and new enough for channels?
//! 2. Which sessions have discovery files, is each plugin pid alive, does its
//!    `GET /status` answer for the right session?
//! 3. What did claude's debug log say about the channel (the gate line), in
//!    plain words, with the fix?
//!
//! Exit status: 0 when nothing is wrong, 1 when a problem was found.

mod probe;

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use crate::claude_cli::gate::{self, ConnectionEvent, GateOutcome};
use crate::claude_cli::{self, paths, version};

const DOCTOR_EXAMPLES: &str = "\
Examples:
  # Check everything: claude, every discovery file, every session's debug log:
  channel-plugin doctor

  # One session, with the debug log you gave claude yourself:
  channel-plugin doctor --session-id UUID --debug-file /tmp/claude-debug.txt

  # Explain a debug log from a ws/spawn session (no discovery file):
  channel-plugin doctor --debug-file ~/.claude/debug/<session-id>.txt --name synthesis

  # Remove discovery files whose plugin died:
  channel-plugin doctor --prune

Sample diagnosis:
  ✘ gate for server \"channel\": Channel notifications skipped (gate check 6 of 7): server
    channel not in --channels list for this session
      means: Claude Code connected to \"channel\" and accepted it as a channel server, but ...
      fix:   Start claude with `--dangerously-load-development-channels server:channel` ...

Exit status is 1 when anything is wrong, 0 otherwise.";

/// Diagnose channel sessions: discovery files, plugin liveness, claude version, the channel gate.
#[derive(Debug, clap::Args)]
#[command(after_long_help = DOCTOR_EXAMPLES, after_help = "Run with --help for examples.")]
pub struct DoctorArgs {
    /// Discovery directory [default: $OPZERO_CHANNEL_DIR or ~/.opzero-claude/channels].
    #[arg(long, value_name = "DIR")]
    pub discovery_dir: Option<PathBuf>,
    /// Only check this session.
    #[arg(long, value_name = "UUID")]
    pub session_id: Option<String>,
    /// Claude's debug log to explain [default: ~/.claude/debug/<session-id>.txt per session].
    #[arg(long, value_name = "FILE")]
    pub debug_file: Option<PathBuf>,
    /// Only explain gate lines of this MCP server name [default: every server in the log].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The claude executable [default: $CLAUDE_BIN, else `claude` on PATH].
    #[arg(long, value_name = "PATH")]
    pub claude: Option<PathBuf>,
    /// Do not check the claude executable (diagnosing a machine where claude runs elsewhere).
    #[arg(long)]
    pub skip_claude_check: bool,
    /// Delete discovery files whose plugin process is gone.
    #[arg(long)]
    pub prune: bool,
    /// Seconds to wait for each /status answer.
    #[arg(long, value_name = "SECS", default_value_t = 3)]
    pub timeout: u64,
}

/// The findings, printed as they are made.
#[derive(Default)]
pub struct Report {
    pub text: String,
    pub problems: usize,
    pub warnings: usize,
}

impl Report {
    fn ok(&mut self, msg: impl AsRef<str>) {
        let _ = writeln!(self.text, "✔ {}", msg.as_ref());
    }
    fn info(&mut self, msg: impl AsRef<str>) {
        let _ = writeln!(self.text, "  {}", msg.as_ref());
    }
    fn warn(&mut self, msg: impl AsRef<str>) {
        self.warnings += 1;
        let _ = writeln!(self.text, "! {}", msg.as_ref());
    }
    fn problem(&mut self, msg: impl AsRef<str>) {
        self.problems += 1;
        let _ = writeln!(self.text, "✘ {}", msg.as_ref());
    }
    fn detail(&mut self, label: &str, msg: impl AsRef<str>) {
        let _ = writeln!(self.text, "    {label:<7}{}", msg.as_ref());
    }
}

pub async fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let report = tokio::task::spawn_blocking(move || diagnose(&args)).await?;
    print!("{}", report.text);
    if report.problems == 0 {
        println!(
            "No problems found{}.",
            if report.warnings > 0 {
                format!(" ({} warning(s) above)", report.warnings)
            } else {
                String::new()
            }
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{} problem(s) found.", report.problems);
        Ok(ExitCode::from(1))
    }
}

/// Runs every check; blocking (file reads, loopback probes with timeouts).
pub fn diagnose(args: &DoctorArgs) -> Report {
    let mut r = Report::default();
    if !args.skip_claude_check {
        check_claude(&mut r, args.claude.as_deref());
    }
    let dir = args
        .discovery_dir
        .clone()
        .unwrap_or_else(paths::default_discovery_dir);
    let sessions = check_discovery(&mut r, &dir, args);
    let mut explained_explicit = false;
    for sid in &sessions {
        let explicit = args
            .debug_file
            .as_ref()
            .filter(|_| args.session_id.as_deref() == Some(sid.as_str()) || sessions.len() == 1);
        explained_explicit |= explicit.is_some();
        let log = explicit
            .cloned()
            .unwrap_or_else(|| paths::default_debug_log(sid));
        check_debug_log(&mut r, &log, args.name.as_deref(), explicit.is_some());
    }
    if let (Some(log), false) = (&args.debug_file, explained_explicit) {
        check_debug_log(&mut r, log, args.name.as_deref(), true);
    }
    if sessions.is_empty() && args.debug_file.is_none() {
        match &args.session_id {
            Some(sid) => {
                // A ws/spawn session has no discovery file; its debug log is all there is.
                let log = paths::default_debug_log(sid);
                if log.is_file() {
                    check_debug_log(&mut r, &log, args.name.as_deref(), true);
                } else {
                    r.problem(format!(
                        "session {sid}: no discovery file in {} and no debug log at {}: the \
                         session is not running with channel-plugin's HTTP bridge, or it was started \
                         without --debug-file (pass the log with --debug-file)",
                        dir.display(),
                        log.display()
                    ));
                }
            }
            None => r.problem(format!(
                "no channel sessions found: {} has no discovery files and no --debug-file was given. \
                 Start one with `channel-plugin launch --cwd DIR` (HTTP bridge), or point \
                 --debug-file at the debug log of a ws/spawn session",
                dir.display()
            )),
        }
    }
    r
}

fn check_claude(r: &mut Report, explicit: Option<&Path>) {
    let located = match claude_cli::locate_claude(explicit) {
        Ok(l) => l,
        Err(e) => return r.problem(format!("claude: {e}")),
    };
    match version::query_version(&located.path, Duration::from_secs(30)) {
        Ok(v) => match version::require_channels(&located.path, v) {
            Ok(()) => r.ok(format!(
                "claude {v} at {} (from {}); channels need {}",
                located.path.display(),
                located.origin,
                version::MIN_CHANNELS_VERSION
            )),
            Err(e) => r.problem(format!("claude: {e}")),
        },
        Err(e) => r.problem(format!("claude: {e:#}")),
    }
}

/// Checks every discovery file; returns the session ids found.
fn check_discovery(r: &mut Report, dir: &Path, args: &DoctorArgs) -> Vec<String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            r.info(format!(
                "discovery directory {} does not exist (no HTTP-bridge session has run as this user)",
                dir.display()
            ));
            return Vec::new();
        }
        Err(e) => {
            r.problem(format!(
                "cannot read discovery directory {}: {e}",
                dir.display()
            ));
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| {
            args.session_id.as_ref().is_none_or(|sid| {
                p.file_stem()
                    .is_some_and(|s| s.to_string_lossy() == sid.as_str())
            })
        })
        .collect();
    files.sort();
    r.info(format!(
        "discovery directory {}: {} file(s){}",
        dir.display(),
        files.len(),
        args.session_id
            .as_ref()
            .map(|s| format!(" for session {s}"))
            .unwrap_or_default()
    ));
    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut sessions = Vec::new();
    for file in files {
        if let Some(sid) = check_discovery_file(r, &file, timeout, args.prune) {
            sessions.push(sid);
        }
    }
    sessions
}

/// Returns the session id when the file belongs to a live session worth
/// explaining further (a dead one's debug log is still explained).
fn check_discovery_file(
    r: &mut Report,
    file: &Path,
    timeout: Duration,
    prune: bool,
) -> Option<String> {
    let stem = file.file_stem()?.to_string_lossy().into_owned();
    let record: Value = match std::fs::read_to_string(file)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            r.problem(format!(
                "session {stem}: discovery file {} is unreadable: {e}",
                file.display()
            ));
            return None;
        }
    };
    let sid = record
        .get("sessionId")
        .and_then(Value::as_str)
        .unwrap_or(&stem)
        .to_owned();
    let port = record
        .get("port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok());
    let pid = record
        .get("pid")
        .and_then(Value::as_u64)
        .and_then(|p| i32::try_from(p).ok());
    let version = record.get("version").and_then(Value::as_str).unwrap_or("?");
    let created = record
        .get("createdAt")
        .and_then(Value::as_str)
        .unwrap_or("?");
    r.info(format!(
        "session {sid}: {} (plugin {version}, created {created})",
        file.display()
    ));
    if sid != stem {
        r.warn(format!(
            "session {sid}: file name says {stem}; the server looks sessions up by file name"
        ));
    }
    if let Ok(meta) = std::fs::metadata(file) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            r.problem(format!(
                "session {sid}: discovery file mode is {mode:o}; it holds the bearer secret and \
                 must be 0600 (chmod 600 {})",
                file.display()
            ));
        }
    }
    let (Some(port), Some(pid)) = (port, pid) else {
        r.problem(format!(
            "session {sid}: discovery file lacks a valid port or pid: not written by channel-plugin?"
        ));
        return None;
    };
    if !pid_alive(pid) {
        let mut msg = format!(
            "session {sid}: plugin pid {pid} is not running: the discovery file is stale (claude \
             exited or the plugin crashed without cleaning up). Restart the session with \
             `channel-plugin launch --session-id {sid}`"
        );
        if prune {
            match std::fs::remove_file(file) {
                Ok(()) => msg.push_str("; stale file removed (--prune)"),
                Err(e) => msg.push_str(&format!("; could not remove it: {e}")),
            }
        } else {
            msg.push_str("; `channel-plugin doctor --prune` removes the file");
        }
        r.problem(msg);
        return Some(sid);
    }
    r.ok(format!("session {sid}: plugin pid {pid} is running"));
    match probe::get(port, "/status", timeout) {
        Err(e) => r.problem(format!(
            "session {sid}: GET http://127.0.0.1:{port}/status failed: {e:#}. The plugin process \
             is alive but its HTTP bridge does not answer; check its stderr in claude's debug log"
        )),
        Ok((code, body)) if code != 200 => r.problem(format!(
            "session {sid}: GET /status on port {port} answered HTTP {code}: {}",
            body.trim()
        )),
        Ok((_, body)) => check_status_body(r, &sid, pid, port, &body),
    }
    Some(sid)
}

fn check_status_body(r: &mut Report, sid: &str, pid: i32, port: u16, body: &str) {
    let Ok(status) = serde_json::from_str::<Value>(body) else {
        return r.problem(format!(
            "session {sid}: /status on port {port} is not JSON: {:?}",
            body.chars().take(200).collect::<String>()
        ));
    };
    let got_sid = status.get("sessionId").and_then(Value::as_str);
    let got_pid = status.get("pid").and_then(Value::as_i64);
    if got_sid != Some(sid) || got_pid != Some(i64::from(pid)) {
        return r.problem(format!(
            "session {sid}: port {port} is answered by another process (sessionId {got_sid:?}, pid \
             {got_pid:?}); the discovery file is stale and its port was reused"
        ));
    }
    if status.get("ok").and_then(Value::as_bool) != Some(true) {
        return r.problem(format!("session {sid}: /status reports ok=false: {body}"));
    }
    if status.get("initialized").and_then(Value::as_bool) == Some(true) {
        r.ok(format!(
            "session {sid}: /status ok on port {port}; claude finished the MCP handshake"
        ));
    } else {
        r.warn(format!(
            "session {sid}: /status ok on port {port}, but claude has not finished the MCP \
             handshake yet (initialized=false): still starting, or the plugin runs outside claude"
        ));
    }
}

fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => {}
        Err(_) => return false,
    }
    // A zombie has exited; it only waits for its parent to collect it.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state != "Z"),
        Err(_) => true,
    }
}

/// Explains the channel gate verdicts in one debug log.
pub fn check_debug_log(r: &mut Report, log: &Path, name: Option<&str>, explicit: bool) {
    let text = match std::fs::read(log) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            let msg = format!(
                "no claude debug log at {} ({e}). Sessions started with `channel-plugin launch` or \
                 `spawn` write one; otherwise start claude with --debug-file FILE",
                log.display()
            );
            if explicit {
                r.problem(msg);
            } else {
                r.warn(msg);
            }
            return;
        }
    };
    r.info(format!("debug log {}", log.display()));
    let wanted = |server: &str| name.is_none_or(|n| n == server);
    // Latest verdict and connection state per server, in first-seen order.
    let mut verdicts: Vec<gate::GateLine> = Vec::new();
    for g in gate::gate_lines(&text)
        .into_iter()
        .filter(|g| wanted(&g.server))
    {
        match verdicts.iter_mut().find(|v| v.server == g.server) {
            Some(v) => *v = g,
            None => verdicts.push(g),
        }
    }
    let events: Vec<ConnectionEvent> = gate::connection_events(&text)
        .into_iter()
        .filter(|e| wanted(e.server()))
        .collect();
    for e in &events {
        if let ConnectionEvent::Failed { server, detail } = e {
            r.problem(format!(
                "server {server:?}: claude could not connect to it: {detail}. Run the server command by \
                 hand to see why it exits; nothing may be printed to stdout before the handshake"
            ));
        }
    }
    for (server, era) in events.iter().filter_map(|e| match e {
        ConnectionEvent::Established {
            server,
            protocol_era: Some(era),
            ..
        } => Some((server, era)),
        _ => None,
    }) {
        if era != "legacy" && !verdicts.iter().any(|v| &v.server == server) {
            r.problem(format!(
                "server {server:?}: connected in the {era:?} protocol era, which has no channel \
                 notifications; the server must answer server/discover with -32601"
            ));
        }
    }
    if verdicts.is_empty() {
        let what = name
            .map(|n| format!("server {n:?}"))
            .unwrap_or("any server".into());
        let connected = events
            .iter()
            .any(|e| matches!(e, ConnectionEvent::Established { .. }));
        let msg = format!(
            "no channel gate line for {what} in {}{}",
            log.display(),
            if connected {
                ": claude connected but logged no verdict (print mode `-p` logs only \
                 registrations; interactive sessions log every skip)"
            } else {
                ": claude has not connected to a channel server in this log (is the session \
                 still starting, or was the server configured?)"
            }
        );
        if name.is_some() {
            r.problem(msg);
        } else {
            r.warn(msg);
        }
        return;
    }
    for v in verdicts {
        match &v.outcome {
            GateOutcome::Registered => r.ok(format!(
                "gate for server {:?}: Channel notifications registered: events reach the session",
                v.server
            )),
            GateOutcome::Skipped(reason) => {
                let e = reason.explain(&v.server);
                let check = reason
                    .check_number()
                    .map(|n| format!(" (gate check {n} of 7)"))
                    .unwrap_or_default();
                r.problem(format!(
                    "gate for server {:?}: Channel notifications skipped{check}: {}",
                    v.server,
                    match reason {
                        gate::GateReason::Unknown(t) => t.clone(),
                        other => gate::REASON_TEXTS
                            [usize::from(other.check_number().unwrap_or(1)) - 1]
                            .replace("NAME", &v.server),
                    }
                ));
                r.detail("means:", e.meaning);
                r.detail("fix:", e.fix);
                r.detail("line:", &v.raw);
            }
        }
    }
}
