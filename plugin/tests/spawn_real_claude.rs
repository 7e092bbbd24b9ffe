//! `channel-plugin spawn`: the development-channels dialog, restarts, clean
//! stops, and a real Claude Code session reaching the channel gate offline.

#[path = "launch_support.rs"]
mod support;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::*;

/// Collects a child's stderr lines on a thread.
fn stderr_lines(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads lines until one contains `needle`; returns everything read so far.
fn until(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    needle: &str,
    timeout: Duration,
) -> Option<String> {
    let deadline = Instant::now() + timeout;
    if let Some(l) = seen.iter().find(|l| l.contains(needle)) {
        return Some(l.clone());
    }
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if line.contains(needle) {
                    return Some(line);
                }
            }
            Err(_) => break,
        }
    }
    None
}

/// Stops a spawn process (and so its claude group) if a test fails midway, so
/// no failed run leaves claude behind.
struct StopOnDrop(i32);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        unsafe {
            if libc::kill(self.0, 0) == 0 {
                libc::kill(self.0, libc::SIGTERM);
                std::thread::sleep(Duration::from_secs(3));
                libc::kill(self.0, libc::SIGKILL);
            }
        }
    }
}

/// Everything the child wrote, once its stderr closes.
fn drain(rx: &mpsc::Receiver<String>) -> Vec<String> {
    let mut lines = Vec::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(10)) {
        lines.push(l);
    }
    lines
}

fn sigterm(child: &std::process::Child) {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
}

fn wait_exit(child: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("spawn did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn pgid_from(seen: &[String]) -> i32 {
    let line = seen
        .iter()
        .find(|l| l.contains("claude started (process group "))
        .expect("spawn logs claude's process group");
    let tail = line.split("process group ").nth(1).unwrap();
    tail.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

/// A fake claude that draws the dialog exactly as Claude Code 2.1.330 words it
/// (offline the real one skips it: channels are unavailable), then records the
/// first key it receives. The real dialog cannot be shown without an account.
fn dialog_claude(dir: &std::path::Path) -> std::path::PathBuf {
    dialog_claude_with(dir, false)
}

/// With `ignore_first`, the first key is swallowed without a redraw (as a
/// dialog that is not listening yet would).
fn dialog_claude_with(dir: &std::path::Path, ignore_first: bool) -> std::path::PathBuf {
    let swallow = if ignore_first {
        "dd bs=1 count=1 >/dev/null 2>&1\n"
    } else {
        ""
    };
    let keys = dir.join("keys");
    script(
        &dir.join("claude"),
        &format!(
            r#"#!/bin/sh
[ "$1" = --version ] && echo '2.1.330 (Claude Code)' && exit 0
echo "$@" >> {argv}
printf '\033[2J\033[1;1H\033[31mWARNING: Loading development channels\033[39m\r\n'
printf -- '--dangerously-load-development-channels is for local channel development only. Do not use this option to run channels you have downloaded off the internet.\r\n'
printf 'Please use --channels to run a list of approved channels.\r\nChannels: server:synthesis\r\n\r\n'
printf '\033[36m\342\235\257 1.\033[1CI am using this for local development\033[39m\r\n  2. Exit\r\n'
stty raw -echo
{swallow}key=$(dd bs=1 count=1 2>/dev/null)
printf '%s' "$key" > {keys}
printf '\033[2J\033[1;1H> ready\r\n'
sleep 30
"#,
            argv = dir.join("argv").display(),
            keys = keys.display(),
            swallow = swallow
        ),
    )
}

fn spawn_cmd(claude: &std::path::Path, cwd: &std::path::Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(plugin_bin());
    cmd.args(["spawn", "--claude"])
        .arg(claude)
        .arg("--cwd")
        .arg(cwd)
        .args([
            "--url",
            "ws://127.0.0.1:9/bridge",
            "--openclaw-session",
            "developer::test",
        ])
        .args(extra)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn accepts_the_dev_channels_dialog_only_when_told_to() {
    let dir = tempfile::tempdir().unwrap();
    let claude = dialog_claude(dir.path());
    let debug = dir.path().join("debug.txt");

    let mut child = spawn_cmd(
        &claude,
        dir.path(),
        &[
            "--accept-development-channels-warning",
            "--max-restarts",
            "0",
            "--debug-file",
        ],
    )
    .arg(&debug)
    .env("HOME", dir.path())
    .spawn()
    .unwrap();

    let _stop = StopOnDrop(child.id() as i32);
    let rx = stderr_lines(&mut child);
    let mut seen = Vec::new();
    let accepted = until(
        &rx,
        &mut seen,
        "accepted the development-channels warning",
        Duration::from_secs(30),
    );
    assert!(accepted.is_some(), "{}", seen.join("\n"));
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(dir.path().join("keys")).is_ok_and(|k| k == "1")
    }));
    let argv = std::fs::read_to_string(dir.path().join("argv")).unwrap();
    assert!(
        argv.contains("--dangerously-load-development-channels server:synthesis"),
        "{argv}"
    );
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status}");
    let pgid = pgid_from(&seen);
    assert!(
        group_gone(pgid),
        "claude's process group {pgid} outlived spawn"
    );

    // Without the flag: no keystroke, a clear error, exit 2.
    let dir = tempfile::tempdir().unwrap();
    let claude = dialog_claude(dir.path());
    let mut child = spawn_cmd(
        &claude,
        dir.path(),
        &["--max-restarts", "0", "--debug-file"],
    )
    .arg(dir.path().join("debug.txt"))
    .env("HOME", dir.path())
    .spawn()
    .unwrap();
    let _stop = StopOnDrop(child.id() as i32);
    let rx = stderr_lines(&mut child);
    let mut seen = Vec::new();
    let status = wait_exit(&mut child, Duration::from_secs(40));
    while let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
        seen.push(l);
    }
    assert_eq!(status.code(), Some(2), "{}", seen.join("\n"));
    let all = seen.join("\n");
    assert!(
        all.contains("Pass --accept-development-channels-warning"),
        "{all}"
    );
    assert!(
        !dir.path().join("keys").exists(),
        "spawn typed into the dialog without permission"
    );
}

#[test]
fn restarts_with_backoff_then_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    let starts = dir.path().join("starts");
    let claude = script(
        &dir.path().join("claude"),
        &format!(
            "#!/bin/sh\n[ \"$1\" = --version ] && echo '2.1.330 (Claude Code)' && exit 0\necho \"$@\" >> {}\nexit 3\n",
            starts.display()
        ),
    );
    let sid = "0b7e2f6a-1c3d-4e5f-8a9b-0c1d2e3f4a5b";
    let mut child = spawn_cmd(
        &claude,
        dir.path(),
        &[
            "--resume",
            sid,
            "--permission-mode",
            "bypassPermissions",
            "--max-restarts",
            "2",
            "--backoff-initial",
            "0.2",
            "--debug-file",
        ],
    )
    .arg(dir.path().join("debug.txt"))
    .env("HOME", dir.path())
    .spawn()
    .unwrap();
    let _stop = StopOnDrop(child.id() as i32);
    let rx = stderr_lines(&mut child);
    let status = wait_exit(&mut child, Duration::from_secs(60));
    let log: Vec<String> = drain(&rx);
    let log = log.join("\n");
    assert_eq!(status.code(), Some(3), "{log}");
    assert!(
        log.contains("restart 1")
            && log.contains("restart 2")
            && log.contains("giving up after 2 restart(s)"),
        "{log}"
    );
    let starts = std::fs::read_to_string(&starts).unwrap();
    assert_eq!(starts.lines().count(), 3, "{starts}");
    for argv in starts.lines() {
        assert!(argv.starts_with(&format!("--resume {sid} ")), "{argv}");
        assert!(
            argv.contains("--permission-mode bypassPermissions"),
            "{argv}"
        );
        assert!(
            argv.contains(&format!("\"--claude-session\",\"{sid}\"")),
            "{argv}"
        );
    }
}

#[test]
fn spawn_reaches_the_availability_gate_and_stops_the_whole_group() {
    let Some(claude) = real_claude("spawn_reaches_the_availability_gate_and_stops_the_whole_group")
    else {
        return;
    };
    let home = OfflineHome::new();
    let sid = uuid::Uuid::new_v4().to_string();
    let mut cmd = spawn_cmd(
        &claude,
        &home.project,
        &[
            "--session-id",
            &sid,
            "--accept-development-channels-warning",
            "--max-restarts",
            "0",
        ],
    );
    home.apply(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let _stop = StopOnDrop(child.id() as i32);
    let rx = stderr_lines(&mut child);
    let mut seen = Vec::new();
    let gate = until(
        &rx,
        &mut seen,
        &availability_gate_line("synthesis"),
        Duration::from_secs(90),
    );
    if gate.is_none() {
        let _ = child.kill();
        let status = child.wait().unwrap();
        panic!("no gate line from spawn ({status}):\n{}", seen.join("\n"));
    }
    eprintln!("observed via spawn: {}", gate.unwrap());
    // The explanation follows on the next lines of the same log record.
    let means = until(
        &rx,
        &mut seen,
        "means: Checks 1-3 passed",
        Duration::from_secs(10),
    );
    assert!(means.is_some(), "{}", seen.join("\n"));
    let debug = home.home().join(format!(".claude/debug/{sid}.txt"));
    let connected = wait_for_line(
        &debug,
        "MCP server \"synthesis\": Connection established",
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(
        connected.contains(r#""protocolEra":"legacy""#),
        "{connected}"
    );

    let pgid = pgid_from(&seen);
    assert!(group_alive(pgid));
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(40));
    assert!(status.success(), "{status}");
    assert!(
        group_gone(pgid),
        "claude or the plugin outlived spawn (group {pgid})"
    );
}

/// Real Ink output, read through spawn's pty and terminal-code stripping: the
/// folder-trust dialog (which the real binary does show offline) is recognised
/// and refused with a clear error rather than leaving claude stuck.
#[test]
fn spawn_recognises_the_real_trust_dialog_and_stops() {
    let Some(claude) = real_claude("spawn_recognises_the_real_trust_dialog_and_stops") else {
        return;
    };
    let home = OfflineHome::new();
    let untrusted = home.path("untrusted");
    std::fs::create_dir_all(&untrusted).unwrap();
    let mut cmd = spawn_cmd(
        &claude,
        &untrusted,
        &[
            "--accept-development-channels-warning",
            "--max-restarts",
            "0",
        ],
    );
    home.apply(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let _stop = StopOnDrop(child.id() as i32);
    let rx = stderr_lines(&mut child);
    let status = wait_exit(&mut child, Duration::from_secs(90));
    let log: Vec<String> = drain(&rx);
    let log = log.join("\n");
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("asking whether to trust the folder"), "{log}");
    let pgid = pgid_from(&log.lines().map(str::to_owned).collect::<Vec<_>>());
    assert!(group_gone(pgid));
}

/// A stand-in claude that just stays up, in its own group with a child of its
/// own (like claude with its MCP server), for supervisor-mechanics tests.
fn long_running_claude(dir: &std::path::Path) -> std::path::PathBuf {
    script(
        &dir.join("claude"),
        "#!/bin/sh\n[ \"$1\" = --version ] && echo '2.1.330 (Claude Code)' && exit 0\nsleep 300 &\nwait\n",
    )
}

#[test]
fn sigterm_stops_the_group_even_after_the_log_reader_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let claude = long_running_claude(dir.path());
    let mut child = spawn_cmd(
        &claude,
        dir.path(),
        &["--max-restarts", "0", "--debug-file"],
    )
    .arg(dir.path().join("debug.txt"))
    .env("HOME", dir.path())
    .spawn()
    .unwrap();
    let _stop = StopOnDrop(child.id() as i32);
    let rx = stderr_lines(&mut child);
    let mut seen = Vec::new();
    assert!(
        until(
            &rx,
            &mut seen,
            "claude started (process group",
            Duration::from_secs(30)
        )
        .is_some(),
        "{seen:?}"
    );
    let pgid = pgid_from(&seen);
    // The parent stops reading: every later log line hits a closed pipe.
    drop(rx);
    std::thread::sleep(Duration::from_millis(500));
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status}");
    assert!(group_gone(pgid), "group {pgid} outlived spawn");
}

#[test]
fn exit_with_parent_stops_claude_when_the_parent_dies() {
    let dir = tempfile::tempdir().unwrap();
    let claude = long_running_claude(dir.path());
    let pidfile = dir.path().join("spawn.pid");
    let log = dir.path().join("spawn.log");
    // sh starts spawn in the background and exits after 3 s: spawn is re-parented.
    let wrapper = format!(
        "{} spawn --claude {} --cwd {} --url ws://127.0.0.1:9/bridge --openclaw-session dev::t \
         --max-restarts 0 --exit-with-parent --debug-file {}/debug.txt 2> {} & echo $! > {}; sleep 3",
        plugin_bin().display(),
        claude.display(),
        dir.path().display(),
        dir.path().display(),
        log.display(),
        pidfile.display()
    );
    let status = Command::new("sh")
        .arg("-c")
        .arg(&wrapper)
        .env("HOME", dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let spawn_pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let gone = wait_until(
        Duration::from_secs(30),
        || unsafe { libc::kill(spawn_pid, 0) } != 0,
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    if !gone {
        unsafe { libc::kill(spawn_pid, libc::SIGKILL) };
    }
    assert!(gone, "spawn outlived its parent:\n{text}");
    assert!(text.contains("parent process exited"), "{text}");
    let pgid = pgid_from(&text.lines().map(str::to_owned).collect::<Vec<_>>());
    assert!(group_gone(pgid), "claude's group {pgid} outlived spawn");
}

#[test]
fn presses_enter_when_the_dialog_ignores_the_digit() {
    let dir = tempfile::tempdir().unwrap();
    let claude = dialog_claude_with(dir.path(), true);
    let mut child = spawn_cmd(
        &claude,
        dir.path(),
        &[
            "--accept-development-channels-warning",
            "--max-restarts",
            "0",
            "--debug-file",
        ],
    )
    .arg(dir.path().join("debug.txt"))
    .env("HOME", dir.path())
    .spawn()
    .unwrap();
    let _stop = StopOnDrop(child.id() as i32);
    let rx = stderr_lines(&mut child);
    let mut seen = Vec::new();
    let pressed = until(
        &rx,
        &mut seen,
        "pressing Enter on the dialog",
        Duration::from_secs(30),
    );
    assert!(pressed.is_some(), "{}", seen.join("\n"));
    assert!(
        wait_until(Duration::from_secs(10), || std::fs::read_to_string(
            dir.path().join("keys")
        )
        .is_ok_and(|k| k == "\r")),
        "the dialog did not get Enter"
    );
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
}
