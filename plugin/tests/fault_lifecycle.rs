//! Faults around the plugin's life, on real processes: Claude Code killed
//! (its end of the stdin pipe closes), each stop signal, a discovery file
//! left behind by a killed plugin.
//!
//! Exit latencies are printed (`FAULT-FIGURE` lines, collected in
//! RELIABILITY.md), not asserted: the machine is shared; the assertion is
//! that the plugin exits cleanly and leaves no discovery file.

mod support;

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use support::http::{wait_for_discovery, HttpPlugin, SESSION_ID};
use support::{plugin_bin, McpClient, TIMEOUT};

/// A pipe whose ends are close-on-exec (only the process we hand an end to
/// keeps it).
fn cloexec_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fresh descriptors we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Claude Code is SIGKILLed: nobody closes anything on purpose; the kernel
/// closes its end of the plugin's stdin. The plugin must notice, remove its
/// discovery file and exit 0.
#[tokio::test]
async fn claude_killed_with_sigkill_plugin_sees_eof_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("channels");
    let (read_end, write_end) = cloexec_pipe();
    // "Claude Code": a process that holds the write end of the plugin's stdin
    // and nothing else (it never writes; the handshake is not needed for
    // this fault).
    let mut claude = std::process::Command::new("sleep")
        .arg("1000")
        .stdin(Stdio::from(write_end))
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the stand-in for Claude Code");
    let mut cmd = tokio::process::Command::new(plugin_bin());
    cmd.args(support::http::http_args(dir.to_str().unwrap(), SESSION_ID))
        .env_remove("OPZERO_CHANNEL_DIR")
        .env_remove("CLAUDE_CODE_SESSION_ID")
        .env("RUST_LOG", "channel_plugin=debug")
        .stdin(Stdio::from(read_end))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut plugin = cmd.spawn().expect("spawn channel-plugin");
    let file = dir.join(format!("{SESSION_ID}.json"));
    let deadline = Instant::now() + TIMEOUT;
    while !file.exists() {
        assert!(Instant::now() < deadline, "no discovery file");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    claude.kill().unwrap(); // SIGKILL
    claude.wait().unwrap();
    let killed_at = Instant::now();
    let status = tokio::time::timeout(TIMEOUT, plugin.wait())
        .await
        .expect("plugin still running after Claude Code died")
        .unwrap();
    let latency = killed_at.elapsed();
    println!(
        "FAULT-FIGURE claude-sigkill exit_ms={}",
        latency.as_millis()
    );
    let mut stderr = String::new();
    use tokio::io::AsyncReadExt;
    plugin
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(status.success(), "exit {status}\n{stderr}");
    assert!(!file.exists(), "discovery file left behind\n{stderr}");
    assert!(
        stderr.contains("InputClosed"),
        "the plugin did not report stdin EOF:\n{stderr}"
    );
}

async fn signal_cleans_up(signal: i32, name: &str) {
    let mut plugin = HttpPlugin::start(&[]).await;
    plugin.mcp.handshake().await;
    // A live session: an event in flight, an SSE client attached.
    let _sse = plugin.sse(None).await;
    plugin.inject_ok(json!({"content": "in flight"})).await;
    plugin
        .mcp
        .expect_notification("notifications/claude/channel")
        .await;
    let path = plugin.discovery_path();
    assert!(path.exists());
    let sent_at = Instant::now();
    plugin.mcp.signal(signal);
    let status = plugin.mcp.wait_exit(TIMEOUT).await;
    println!(
        "FAULT-FIGURE {name} exit_ms={}",
        sent_at.elapsed().as_millis()
    );
    assert!(
        status.success(),
        "{name}: exit {status}\n{}",
        plugin.mcp.stderr()
    );
    assert!(!path.exists(), "{name}: discovery file left behind");
    assert!(
        plugin.mcp.stderr().contains(&format!("received {name}")),
        "{name} not logged:\n{}",
        plugin.mcp.stderr()
    );
}

#[tokio::test]
async fn sigint_cleans_up_and_exits_zero() {
    signal_cleans_up(libc::SIGINT, "SIGINT").await;
}

#[tokio::test]
async fn sigterm_cleans_up_and_exits_zero() {
    signal_cleans_up(libc::SIGTERM, "SIGTERM").await;
}

#[tokio::test]
async fn sighup_cleans_up_and_exits_zero() {
    signal_cleans_up(libc::SIGHUP, "SIGHUP").await;
}

/// Claude Code's own sequence (CHANNELS.md §3.7): SIGINT; after 100 ms
/// SIGTERM; 400 ms later SIGKILL; then stdin closes. Whatever point the
/// plugin exits at, the discovery file must be gone unless SIGKILL was
/// needed, and the test says which step ended it.
#[tokio::test]
async fn claude_shutdown_sequence() {
    let mut plugin = HttpPlugin::start(&[]).await;
    plugin.mcp.handshake().await;
    let path = plugin.discovery_path();
    let pid = plugin.mcp.pid() as libc::pid_t;
    let alive = || unsafe { libc::kill(pid, 0) } == 0 && !zombie(pid);
    let start = Instant::now();
    let mut step = "SIGINT";
    unsafe { libc::kill(pid, libc::SIGINT) };
    tokio::time::sleep(Duration::from_millis(100)).await;
    if alive() {
        step = "SIGTERM";
        unsafe { libc::kill(pid, libc::SIGTERM) };
        tokio::time::sleep(Duration::from_millis(400)).await;
        if alive() {
            step = "SIGKILL";
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    plugin.mcp.close_stdin();
    let status = plugin.mcp.wait_exit(TIMEOUT).await;
    println!(
        "FAULT-FIGURE claude-sequence ended_by={step} exit_ms={}",
        start.elapsed().as_millis()
    );
    if step != "SIGKILL" {
        assert!(status.success(), "exit {status}");
        assert!(!path.exists(), "discovery file left behind after {step}");
    } else {
        eprintln!("warning: the plugin needed SIGKILL on this (loaded?) machine; the next start cleans its file");
    }
}

fn zombie(pid: libc::pid_t) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// A plugin killed with SIGKILL cannot clean up; the next plugin that starts
/// with the same directory removes its file (any session), and one that
/// starts for the same session replaces it.
#[tokio::test]
async fn stale_discovery_file_of_a_killed_plugin_is_cleaned_at_next_start() {
    let first = HttpPlugin::start(&[]).await;
    let dir = first.dir.clone();
    let stale = first.discovery_path();
    let mut first = first;
    first.mcp.signal(libc::SIGKILL);
    first.mcp.wait_exit(TIMEOUT).await;
    assert!(
        stale.exists(),
        "SIGKILL leaves the file (this is the fault being tested)"
    );
    let stale_pid = first.discovery["pid"].as_u64().unwrap();

    // A second plugin, another session, same directory.
    let other = "0b7a1d6e-2c3d-4e5f-8a9b-0c1d2e3f4a5b";
    let mut second =
        McpClient::spawn(&support::http::http_args(dir.to_str().unwrap(), other)).await;
    let own = dir.join(format!("{other}.json"));
    wait_for_discovery(&own, &second).await;
    assert!(
        !stale.exists(),
        "stale file of dead pid {stale_pid} still there\n{}",
        second.stderr()
    );
    assert!(
        second.stderr().contains("removed stale discovery file"),
        "{}",
        second.stderr()
    );
    second.close_stdin();
    assert!(second.wait_exit(TIMEOUT).await.success());
    assert!(!own.exists());

    // Same session id after a SIGKILL: the new plugin takes the name over.
    let mut third =
        McpClient::spawn(&support::http::http_args(dir.to_str().unwrap(), SESSION_ID)).await;
    let record = wait_for_discovery(&stale, &third).await;
    assert_eq!(record["pid"].as_u64(), Some(u64::from(third.pid())));
    third.close_stdin();
    assert!(third.wait_exit(TIMEOUT).await.success());
    assert!(!stale.exists());
}

/// Claude Code dies in the middle of writing a frame (half a JSON line,
/// then its end of the pipe closes), with the ws bridge: the plugin treats
/// the fragment as bad input, closes the bridge connection politely and
/// exits 0.
#[tokio::test]
async fn claude_killed_mid_frame_with_the_ws_bridge_closes_the_socket_and_exits() {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    use tokio_tungstenite::tungstenite::Message;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/bridge", listener.local_addr().unwrap());
    let (read_end, write_end) = cloexec_pipe();
    let mut cmd = tokio::process::Command::new(plugin_bin());
    cmd.args([
        "ws",
        "--url",
        &url,
        "--openclaw-session",
        "fault",
        "--claude-session",
        "c-fault",
    ])
    .env("RUST_LOG", "channel_plugin=debug")
    .stdin(Stdio::from(read_end))
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let mut plugin = cmd.spawn().expect("spawn channel-plugin ws");
    let (tcp, _) = tokio::time::timeout(TIMEOUT, listener.accept())
        .await
        .expect("plugin connects")
        .unwrap();
    let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
    let hello = tokio::time::timeout(TIMEOUT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(hello, Message::Text(ref t) if t.as_str().contains("\"hello\"")),
        "{hello:?}"
    );

    // A live bridge keeps reading (and so answers the close handshake).
    let bridge = tokio::spawn(async move {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(_)) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
        false
    });

    // "Claude Code": writes half a frame on the plugin's stdin and is killed.
    let mut claude_stdin = tokio::fs::File::from_std(std::fs::File::from(write_end));
    claude_stdin
        .write_all(br#"{"jsonrpc":"2.0","id":0,"method":"initial"#)
        .await
        .unwrap();
    claude_stdin.flush().await.unwrap();
    let killed_at = Instant::now();
    drop(claude_stdin);

    let status = tokio::time::timeout(TIMEOUT, plugin.wait())
        .await
        .expect("plugin exits")
        .unwrap();
    println!(
        "FAULT-FIGURE claude-killed-mid-frame-ws exit_ms={}",
        killed_at.elapsed().as_millis()
    );
    let mut stderr = String::new();
    use tokio::io::AsyncReadExt;
    plugin
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(status.success(), "exit {status}\n{stderr}");
    assert!(
        stderr.contains("not JSON") || stderr.contains("-32700"),
        "the fragment was not reported:\n{stderr}"
    );
    let closed = tokio::time::timeout(TIMEOUT, bridge)
        .await
        .expect("bridge task ends")
        .unwrap();
    assert!(
        closed,
        "the bridge connection was dropped without a close frame\n{stderr}"
    );
}
