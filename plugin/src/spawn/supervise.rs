//! The supervisor loop: one claude at a time under a pty, restarted with
//! backoff, stopped as a whole process group.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::signal::unix::{signal, Signal as SignalStream, SignalKind};
use tokio::sync::mpsc;

use super::dialog::{self, Screen};
use super::pty::{spawn_in_pty, strip_terminal_codes};
use super::{secs, Resolved, SpawnArgs};
use crate::claude_cli::gate::{ConnectionEvent, GateLine, GateOutcome};
use crate::claude_cli::paths;
use crate::launch::{ClaudeInvocation, InvocationPlan, SessionStart};

/// A run that lasted this long resets the backoff: it was not a crash loop.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
/// Recent screen text kept for dialog detection and crash reports.
const SCREEN_KEEP: usize = 32 * 1024;
/// Give Ink a moment to attach its key handler after drawing the dialog.
const ANSWER_DELAY: Duration = Duration::from_millis(700);
/// How long to wait for a redraw after typing the answer before pressing Enter.
const ENTER_FALLBACK_AFTER: Duration = Duration::from_secs(4);
/// Times the dialog may reappear after an answer before we give up.
const MAX_ANSWERS: u32 = 3;

enum RunEnd {
    Exited(ExitStatus),
    Stopped(&'static str),
    DialogRefused,
}

enum PtyEvent {
    Output(Vec<u8>),
    Closed,
}

pub(crate) struct Supervisor {
    args: SpawnArgs,
    r: Resolved,
    sigterm: Option<SignalStream>,
    sigint: Option<SignalStream>,
    /// Our parent when we started, for `--exit-with-parent`.
    parent: Option<i32>,
}

impl Supervisor {
    pub fn new(args: SpawnArgs, r: Resolved) -> Self {
        Self {
            args,
            r,
            sigterm: None,
            sigint: None,
            parent: None,
        }
    }

    pub async fn run(mut self) -> anyhow::Result<ExitCode> {
        self.sigterm = Some(signal(SignalKind::terminate()).context("cannot watch SIGTERM")?);
        self.sigint = Some(signal(SignalKind::interrupt()).context("cannot watch SIGINT")?);
        if self.args.exit_with_parent {
            self.parent = Some(nix::unistd::getppid().as_raw());
        }
        let initial = secs(self.args.backoff_initial);
        let max = secs(self.args.backoff_max).max(initial);
        let mut backoff = initial;
        let mut restarts = 0u32;
        let mut start = if self.r.resume_first {
            SessionStart::Resume
        } else {
            SessionStart::New
        };
        tracing::info!(
            session = %self.r.session_id,
            debug_file = %self.r.debug_file.display(),
            "spawn: supervising claude for channel server:{}",
            self.r.plugin.name
        );
        loop {
            let inv = InvocationPlan {
                claude: self.r.claude.clone(),
                cwd: self.r.cwd.clone(),
                session_id: self.r.session_id.clone(),
                start,
                plugin: &self.r.plugin,
                model: self.args.model.as_deref(),
                permission_mode: self.args.permission_mode.as_deref(),
                also_channels_flag: self.args.channels_flag,
                debug_file: Some(self.r.debug_file.clone()),
                extra: &self.args.claude_args,
            }
            .build()?;
            let started = Instant::now();
            let end = self.run_once(&inv).await?;
            let status = match end {
                RunEnd::Stopped(why) => {
                    tracing::info!("spawn: stopped on {why}");
                    return Ok(ExitCode::SUCCESS);
                }
                RunEnd::DialogRefused => return Ok(ExitCode::from(2)),
                RunEnd::Exited(status) => status,
            };
            let ran = started.elapsed();
            tracing::warn!(
                "spawn: claude exited ({status}) after {:.1}s",
                ran.as_secs_f64()
            );
            if let Some(limit) = self.args.max_restarts {
                if restarts >= limit {
                    tracing::error!(
                        "spawn: giving up after {restarts} restart(s) (--max-restarts {limit})"
                    );
                    return Ok(exit_code_of(status));
                }
            }
            restarts += 1;
            if ran >= HEALTHY_RUN {
                backoff = initial;
            }
            tracing::info!(
                "spawn: restarting claude in {:.1}s (restart {restarts})",
                backoff.as_secs_f64()
            );
            if let Some(why) = self.sleep_or_signal(backoff).await {
                tracing::info!("spawn: stopped on {why} while waiting to restart");
                return Ok(ExitCode::SUCCESS);
            }
            backoff = (backoff * 2).min(max);
            // Once claude has written the conversation, a restart continues it.
            start = if paths::session_transcript_exists(&self.r.session_id)
                || start == SessionStart::Resume
            {
                SessionStart::Resume
            } else {
                SessionStart::New
            };
        }
    }

    async fn sleep_or_signal(&mut self, d: Duration) -> Option<&'static str> {
        let parent = self.parent;
        let (term, int) = (self.sigterm.as_mut()?, self.sigint.as_mut()?);
        tokio::select! {
            _ = tokio::time::sleep(d) => None,
            _ = term.recv() => Some("SIGTERM"),
            _ = int.recv() => Some("SIGINT"),
            _ = parent_gone(parent) => Some("parent exit"),
        }
    }

    async fn run_once(&mut self, inv: &ClaudeInvocation) -> anyhow::Result<RunEnd> {
        let mut cmd = inv.command();
        if std::env::var_os("TERM").is_none_or(|t| t.is_empty() || t == "dumb") {
            cmd.env("TERM", "xterm-256color");
        }
        tracing::info!(
            "spawn: starting {} session {} in {}",
            if inv.resumed { "resumed" } else { "new" },
            inv.session_id,
            inv.cwd.display()
        );
        tracing::debug!("spawn: {}", inv.shell_line());
        let pty = spawn_in_pty(&mut cmd, 120, 40)
            .with_context(|| format!("cannot start {} under a pty", inv.claude.display()))?;
        let pgid = pty.pgid();
        let mut keys = pty
            .master
            .try_clone()
            .context("cannot clone the pty master")?;
        let reader = pty.master;
        let mut child = pty.child;
        tracing::info!(pid = pgid, "spawn: claude started (process group {pgid})");

        let (tx, mut rx) = mpsc::unbounded_channel();
        let pty_log = self.args.pty_log.clone();
        std::thread::Builder::new()
            .name("spawn-pty-reader".into())
            .spawn(move || read_pty(reader, pty_log, tx))
            .context("cannot start the pty reader")?;
        let mut exited = tokio::task::spawn_blocking(move || child.wait());
        let watcher = tokio::spawn(watch_gate(
            self.r.debug_file.clone(),
            self.r.plugin.name.clone(),
        ));

        let mut screen = String::new();
        let mut answers = 0u32;
        let mut last_answer: Option<Instant> = None;
        // When claude does not redraw after our `1`, press Enter (which also
        // picks the focused first option) once.
        let mut enter_fallback: Option<tokio::time::Instant> = None;
        let accept = self.args.accept_development_channels_warning;
        let stop_timeout = secs(self.args.stop_timeout);
        let (term, int) = (
            self.sigterm.as_mut().expect("signals set up"),
            self.sigint.as_mut().expect("signals set up"),
        );
        let parent = self.parent;
        let mut pty_open = true;
        let end = loop {
            tokio::select! {
                status = &mut exited => {
                    let status = status.context("waiting for claude")?.context("waiting for claude")?;
                    break RunEnd::Exited(status);
                }
                _ = term.recv() => {
                    stop_group(pgid, &mut exited, stop_timeout).await;
                    break RunEnd::Stopped("SIGTERM");
                }
                _ = int.recv() => {
                    stop_group(pgid, &mut exited, stop_timeout).await;
                    break RunEnd::Stopped("SIGINT");
                }
                _ = parent_gone(parent) => {
                    tracing::warn!("spawn: parent process exited (--exit-with-parent)");
                    stop_group(pgid, &mut exited, stop_timeout).await;
                    break RunEnd::Stopped("parent exit");
                }
                _ = sleep_until_opt(enter_fallback), if enter_fallback.is_some() => {
                    enter_fallback = None;
                    tracing::warn!("spawn: claude did not redraw after the answer; pressing Enter on the dialog");
                    if let Err(err) = keys.write_all(dialog::FALLBACK_KEYS) {
                        tracing::error!("spawn: cannot type into claude's terminal: {err}");
                    }
                }
                ev = rx.recv(), if pty_open => match ev {
                    Some(PtyEvent::Output(bytes)) => {
                        enter_fallback = None;
                        screen.push_str(&strip_terminal_codes(&String::from_utf8_lossy(&bytes)));
                        trim_front(&mut screen, SCREEN_KEEP);
                        let kind = dialog::classify(&screen);
                        if kind == Screen::Other {
                            continue;
                        }
                        if kind == Screen::TrustDialog {
                            tracing::error!(
                                "spawn: claude is asking whether to trust the folder {}; spawn does not \
                                 answer that for you. Start claude there once interactively and choose \
                                 \"Yes, I trust this folder\" (or set projects[\"{}\"].hasTrustDialogAccepted \
                                 in ~/.claude.json); stopping claude",
                                inv.cwd.display(),
                                inv.cwd.display()
                            );
                            stop_group(pgid, &mut exited, stop_timeout).await;
                            break RunEnd::DialogRefused;
                        }
                        if !accept {
                            tracing::error!(
                                "spawn: claude is waiting at its \"{}\" dialog. Pass \
                                 --accept-development-channels-warning to accept it (it says the channel is \
                                 for local development), or start claude with --channels for an approved \
                                 channel; stopping claude",
                                dialog::DIALOG_TITLE
                            );
                            stop_group(pgid, &mut exited, stop_timeout).await;
                            break RunEnd::DialogRefused;
                        }
                        if last_answer.is_some_and(|t| t.elapsed() < Duration::from_secs(3)) {
                            // Still the frame we answered; give claude time to redraw.
                            continue;
                        }
                        if answers >= MAX_ANSWERS {
                            tracing::error!("spawn: the development-channels dialog is still showing after {answers} answers; stopping claude");
                            stop_group(pgid, &mut exited, stop_timeout).await;
                            break RunEnd::DialogRefused;
                        }
                        tokio::time::sleep(ANSWER_DELAY).await;
                        let keys_to_send = match kind {
                            Screen::DevChannelsDialogYesNo => dialog::ACCEPT_KEYS_YES_NO,
                            _ => dialog::ACCEPT_KEYS,
                        };
                        if let Err(err) = keys.write_all(keys_to_send) {
                            tracing::error!("spawn: cannot type into claude's terminal: {err}");
                        } else {
                            answers += 1;
                            last_answer = Some(Instant::now());
                            if kind == Screen::DevChannelsDialog {
                                enter_fallback = Some(tokio::time::Instant::now() + ENTER_FALLBACK_AFTER);
                            }
                            tracing::info!(
                                "spawn: accepted the development-channels warning (typed {:?}: \"{}\")",
                                String::from_utf8_lossy(keys_to_send),
                                dialog::ACCEPT_LABEL
                            );
                        }
                        screen.clear();
                    }
                    Some(PtyEvent::Closed) | None => pty_open = false,
                },
            }
        };
        watcher.abort();
        // Anything claude started in its group (MCP servers) goes with it.
        reap_group(pgid).await;
        if let RunEnd::Exited(_) = end {
            let tail = last_lines(&screen, 12);
            if !tail.is_empty() {
                tracing::warn!("spawn: claude's last screen lines:\n{tail}");
            }
        }
        Ok(end)
    }
}

fn read_pty(mut master: std::fs::File, log: Option<PathBuf>, tx: mpsc::UnboundedSender<PtyEvent>) {
    let mut log = log.and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(|e| tracing::warn!("spawn: cannot open --pty-log {}: {e}", p.display()))
            .ok()
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match master.read(&mut buf) {
            // EIO is how Linux reports that the slave side is gone.
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(f) = log.as_mut() {
                    let _ = f.write_all(&buf[..n]);
                }
                if tx.send(PtyEvent::Output(buf[..n].to_vec())).is_err() {
                    // Supervisor moved on; keep draining so claude never blocks on a full pty.
                    continue;
                }
            }
        }
    }
    let _ = tx.send(PtyEvent::Closed);
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Resolves once our parent is no longer `parent` (we were re-parented);
/// never when the watch is off.
async fn parent_gone(parent: Option<i32>) {
    let Some(parent) = parent else {
        return std::future::pending().await;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        if nix::unistd::getppid().as_raw() != parent {
            return;
        }
    }
}

/// SIGTERM to the group, then SIGKILL after `grace`.
async fn stop_group(
    pgid: i32,
    exited: &mut tokio::task::JoinHandle<std::io::Result<ExitStatus>>,
    grace: Duration,
) {
    tracing::info!("spawn: sending SIGTERM to claude's process group {pgid}");
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
    if tokio::time::timeout(grace, &mut *exited).await.is_err() {
        tracing::warn!(
            "spawn: claude still running {:.1}s after SIGTERM; sending SIGKILL",
            grace.as_secs_f64()
        );
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        let _ = exited.await;
    }
}

/// After the leader is gone, makes sure nothing else of its group survives.
async fn reap_group(pgid: i32) {
    let pg = Pid::from_raw(pgid);
    if killpg(pg, None).is_err() {
        return; // empty group
    }
    tracing::info!("spawn: stopping processes left in claude's group {pgid}");
    let _ = killpg(pg, Signal::SIGTERM);
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if killpg(pg, None).is_err() {
            return;
        }
    }
    tracing::warn!("spawn: killing processes left in group {pgid}");
    let _ = killpg(pg, Signal::SIGKILL);
}

/// Follows claude's debug log and reports our channel's gate verdict.
async fn watch_gate(path: PathBuf, name: String) {
    let mut offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let mut partial = String::new();
    // Claude Code writes each verdict twice in a row; report each change once.
    let mut last: Option<(String, String)> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(300));
    loop {
        tick.tick().await;
        let Some(chunk) = read_from(&path, &mut offset) else {
            continue;
        };
        partial.push_str(&chunk);
        while let Some(nl) = partial.find('\n') {
            let line: String = partial.drain(..=nl).collect();
            if let Some(gate) = GateLine::parse(&line) {
                let key = (gate.server.clone(), format!("{:?}", gate.outcome));
                if last.as_ref() == Some(&key) {
                    continue;
                }
                last = Some(key);
            }
            report_line(&line, &name);
        }
    }
}

fn read_from(path: &Path, offset: &mut u64) -> Option<String> {
    use std::io::{Seek as _, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    if len < *offset {
        *offset = 0; // truncated: claude started a fresh log
    }
    if len == *offset {
        return None;
    }
    f.seek(SeekFrom::Start(*offset)).ok()?;
    let mut buf = Vec::new();
    f.take(len - *offset).read_to_end(&mut buf).ok()?;
    *offset = len;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn report_line(line: &str, name: &str) {
    if let Some(gate) = GateLine::parse(line) {
        if gate.server != name {
            tracing::debug!("spawn: gate line for another server: {}", gate.raw);
            return;
        }
        match &gate.outcome {
            GateOutcome::Registered => tracing::info!(
                "spawn: channel gate: {} -- channel events will reach the session",
                gate.raw
            ),
            GateOutcome::Skipped(reason) => {
                let e = reason.explain(name);
                tracing::warn!(
                    "spawn: channel gate: {}\n  means: {}\n  fix: {}",
                    gate.raw,
                    e.meaning,
                    e.fix
                );
            }
        }
    } else if let Some(ConnectionEvent::Failed { server, detail }) = ConnectionEvent::parse(line) {
        if server == name {
            tracing::error!("spawn: claude could not connect to the plugin: {detail}");
        }
    }
}

fn trim_front(s: &mut String, keep: usize) {
    if s.len() > keep {
        let mut cut = s.len() - keep;
        while !s.is_char_boundary(cut) {
            cut += 1;
        }
        s.drain(..cut);
    }
}

fn last_lines(screen: &str, n: usize) -> String {
    let lines: Vec<&str> = screen
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn exit_code_of(status: ExitStatus) -> ExitCode {
    match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::from(1),
    }
}
