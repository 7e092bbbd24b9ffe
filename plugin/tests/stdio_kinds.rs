//! The plugin's stdio over every kind of descriptor a parent may hand it:
//! pipes (tokio, Python), a socketpair (Node and Bun spawn children this way),
//! and regular files (`channel-plugin http < script > out`). Pipes and
//! sockets are polled by the reactor; anything else falls back to blocking
//! threads. Either way the same frames come out, and the parent's descriptor
//! is left as it was found.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

fn frame(value: Value) -> String {
    format!("{value}\n")
}

/// Claude Code's opening (CHANNELS.md §3) plus a ping, as lines.
fn opening() -> String {
    [
        frame(
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "claude-code", "version": "2.1.330"}}}),
        ),
        frame(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})),
        frame(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})),
        frame(json!({"jsonrpc": "2.0", "id": 2, "method": "ping"})),
    ]
    .concat()
}

fn plugin(dir: &tempfile::TempDir) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_channel-plugin"));
    cmd.args(["http", "--discovery-dir"])
        .arg(dir.path())
        .env(
            "CLAUDE_CODE_SESSION_ID",
            "8c0c3a5e-1f2b-4c3d-9e8f-0a1b2c3d4e5f",
        )
        .env("RUST_LOG", "channel_plugin=debug")
        .stderr(Stdio::piped());
    cmd
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the plugin did not exit within {WAIT:?} after end of input");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    log
}

fn ids(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["id"].clone())
        .collect()
}

/// Read the answers to [`opening`]'s three requests, in order.
fn expect_opening_answers(mut stdout: impl BufRead) {
    let mut got = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        got.push(serde_json::from_str::<Value>(&line).unwrap()["id"].clone());
    }
    assert_eq!(got, [json!(0), json!(1), json!(2)]);
}

/// Wait for exit 0 and check the stream modes the plugin logged.
fn expect_clean_exit_with_modes(child: &mut Child, modes: &str) {
    let status = wait_exit(child);
    let log = stderr_of(child);
    assert!(status.success(), "{status}\n{log}");
    assert!(log.contains(modes), "{log}");
}

fn is_nonblocking(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).unwrap()).contains(OFlag::O_NONBLOCK)
}

#[test]
fn regular_files_fall_back_to_blocking_threads_and_still_answer() {
    let dir = tempfile::tempdir().unwrap();
    let input_path = dir.path().join("in.jsonl");
    let output_path = dir.path().join("out.jsonl");
    std::fs::write(&input_path, opening()).unwrap();
    let mut child = plugin(&dir)
        .stdin(File::open(&input_path).unwrap())
        .stdout(File::create(&output_path).unwrap())
        .spawn()
        .unwrap();
    expect_clean_exit_with_modes(
        &mut child,
        "input_mode=BlockingPool output_mode=BlockingPool",
    );
    let out = std::fs::read_to_string(&output_path).unwrap();
    assert_eq!(ids(&out), [json!(0), json!(1), json!(2)], "{out}");
}

#[test]
fn pipes_are_polled_by_the_reactor() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = plugin(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(opening().as_bytes()).unwrap();
    expect_opening_answers(BufReader::new(child.stdout.take().unwrap()));
    drop(stdin);
    expect_clean_exit_with_modes(&mut child, "input_mode=Reactor output_mode=Reactor");
}

/// libuv (Node) and Bun give a child socketpair ends for stdio. The plugin
/// makes its copy non-blocking; the flag lives on the shared description, so
/// it must be cleared again on the way out.
#[test]
fn a_socketpair_is_polled_and_left_blocking_after_exit() {
    let dir = tempfile::tempdir().unwrap();
    let (ours_in, theirs_in) = UnixStream::pair().unwrap();
    let (ours_out, theirs_out) = UnixStream::pair().unwrap();
    // A second handle on the child's ends, to look at their flags afterwards.
    let child_in_view = theirs_in.try_clone().unwrap();
    let child_out_view = theirs_out.try_clone().unwrap();
    let mut child = plugin(&dir)
        .stdin(Stdio::from(OwnedFd::from(theirs_in)))
        .stdout(Stdio::from(OwnedFd::from(theirs_out)))
        .spawn()
        .unwrap();
    (&ours_in).write_all(opening().as_bytes()).unwrap();
    expect_opening_answers(BufReader::new(&ours_out));
    ours_in.shutdown(std::net::Shutdown::Write).unwrap();
    expect_clean_exit_with_modes(&mut child, "input_mode=Reactor output_mode=Reactor");
    assert!(
        !is_nonblocking(child_in_view.as_fd()),
        "stdin left O_NONBLOCK"
    );
    assert!(
        !is_nonblocking(child_out_view.as_fd()),
        "stdout left O_NONBLOCK"
    );
}

/// `channel-plugin http 2>&1 | tee log`: stdout and stderr are one pipe.
/// Logs are blocking writes, so that pipe must not be made non-blocking (a
/// full pipe would drop log lines); stdout stays on the blocking pool and
/// the session still works.
#[test]
fn stdout_shared_with_stderr_stays_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let (ours_in, theirs_in) = UnixStream::pair().unwrap();
    let (ours_out, theirs_out) = UnixStream::pair().unwrap();
    let theirs_err = theirs_out.try_clone().unwrap();
    let mut child = plugin(&dir)
        .stdin(Stdio::from(OwnedFd::from(theirs_in)))
        .stdout(Stdio::from(OwnedFd::from(theirs_out)))
        .stderr(Stdio::from(OwnedFd::from(theirs_err)))
        .spawn()
        .unwrap();
    (&ours_in).write_all(opening().as_bytes()).unwrap();
    ours_in.shutdown(std::net::Shutdown::Write).unwrap();
    let status = wait_exit(&mut child);
    let mut mixed = String::new();
    (&ours_out).read_to_string(&mut mixed).unwrap();
    assert!(status.success(), "{status}\n{mixed}");
    assert!(
        mixed.contains("input_mode=Reactor output_mode=BlockingPool"),
        "{mixed}"
    );
    let answered: Vec<Value> = mixed
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["id"].clone())
        .collect();
    assert_eq!(answered, [json!(0), json!(1), json!(2)], "{mixed}");
}
