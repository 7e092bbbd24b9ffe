//! `channel-plugin spawn`: the development-channels dialog, restarts, clean
//! stops, and a real Claude Code session reaching the channel gate offline.

mod spawn_run;
#[path = "launch_support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use spawn_run::{pgid_from, SpawnRun};
use support::*;

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

/// [`spawn_cmd`] for a stand-in claude with everything in `dir`: it is the
/// project, HOME (so no real config is read or written) and the home of
/// spawn's debug file.
fn stand_in_spawn_cmd(claude: &Path, dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = spawn_cmd(claude, dir, extra);
    cmd.arg("--debug-file")
        .arg(dir.join("debug.txt"))
        .env("HOME", dir);
    cmd
}

/// Makes a stand-in claude with `make_claude` in a fresh temp dir and starts
/// `spawn` on it as [`stand_in_spawn_cmd`] sets it up. The dir is returned to
/// keep it alive and to read what the stand-in recorded.
fn run_stand_in(
    make_claude: impl FnOnce(&Path) -> PathBuf,
    extra: &[&str],
) -> (tempfile::TempDir, SpawnRun) {
    let dir = tempfile::tempdir().unwrap();
    let claude = make_claude(dir.path());
    let run = SpawnRun::start(&mut stand_in_spawn_cmd(&claude, dir.path(), extra));
    (dir, run)
}

/// [`spawn_cmd`] for the real claude, in `home`'s offline environment.
fn offline_spawn_cmd(claude: &Path, home: &OfflineHome, cwd: &Path, extra: &[&str]) -> Command {
    let mut cmd = spawn_cmd(claude, cwd, extra);
    home.apply(&mut cmd);
    cmd
}

#[test]
fn accepts_the_dev_channels_dialog_only_when_told_to() {
    let (dir, mut run) = run_stand_in(
        dialog_claude,
        &[
            "--accept-development-channels-warning",
            "--max-restarts",
            "0",
        ],
    );
    run.expect_line(
        "accepted the development-channels warning",
        Duration::from_secs(30),
    );
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(dir.path().join("keys")).is_ok_and(|k| k == "1")
    }));
    let argv = std::fs::read_to_string(dir.path().join("argv")).unwrap();
    assert!(
        argv.contains("--dangerously-load-development-channels server:synthesis"),
        "{argv}"
    );
    run.sigterm();
    let status = run.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status}");
    let pgid = run.pgid();
    assert!(
        group_gone(pgid),
        "claude's process group {pgid} outlived spawn"
    );

    // Without the flag: no keystroke, a clear error, exit 2.
    let (dir, mut run) = run_stand_in(dialog_claude, &["--max-restarts", "0"]);
    let status = run.wait_exit(Duration::from_secs(40));
    run.read_rest(Duration::from_millis(200));
    let all = run.log_text();
    assert_eq!(status.code(), Some(2), "{all}");
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
    let mut run = SpawnRun::start(&mut stand_in_spawn_cmd(
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
        ],
    ));
    let status = run.wait_exit(Duration::from_secs(60));
    run.read_rest(Duration::from_secs(10));
    let log = run.log_text();
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
    let mut run = SpawnRun::start(&mut offline_spawn_cmd(
        &claude,
        &home,
        &home.project,
        &[
            "--session-id",
            &sid,
            "--accept-development-channels-warning",
            "--max-restarts",
            "0",
        ],
    ));
    let Some(gate) = run.until(
        &availability_gate_line("synthesis"),
        Duration::from_secs(90),
    ) else {
        let _ = run.child.kill();
        let status = run.child.wait().unwrap();
        panic!("no gate line from spawn ({status}):\n{}", run.log_text());
    };
    eprintln!("observed via spawn: {gate}");
    // The explanation follows on the next lines of the same log record.
    run.expect_line("means: Checks 1-3 passed", Duration::from_secs(10));
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

    let pgid = run.pgid();
    assert!(group_alive(pgid));
    run.sigterm();
    let status = run.wait_exit(Duration::from_secs(40));
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
    let mut run = SpawnRun::start(&mut offline_spawn_cmd(
        &claude,
        &home,
        &untrusted,
        &[
            "--accept-development-channels-warning",
            "--max-restarts",
            "0",
        ],
    ));
    let status = run.wait_exit(Duration::from_secs(90));
    run.read_rest(Duration::from_secs(10));
    let log = run.log_text();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("asking whether to trust the folder"), "{log}");
    assert!(group_gone(run.pgid()));
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
    let (_dir, mut run) = run_stand_in(long_running_claude, &["--max-restarts", "0"]);
    run.expect_line("claude started (process group", Duration::from_secs(30));
    let pgid = run.pgid();
    // The parent stops reading: every later log line hits a closed pipe.
    run.stop_reading();
    std::thread::sleep(Duration::from_millis(500));
    run.sigterm();
    let status = run.wait_exit(Duration::from_secs(30));
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
    let (dir, mut run) = run_stand_in(
        |dir| dialog_claude_with(dir, true),
        &[
            "--accept-development-channels-warning",
            "--max-restarts",
            "0",
        ],
    );
    run.expect_line("pressing Enter on the dialog", Duration::from_secs(30));
    assert!(
        wait_until(Duration::from_secs(10), || std::fs::read_to_string(
            dir.path().join("keys")
        )
        .is_ok_and(|k| k == "\r")),
        "the dialog did not get Enter"
    );
    run.sigterm();
    assert!(run.wait_exit(Duration::from_secs(30)).success());
}
