//! Start-up and shutdown of `channel-plugin http`: session ids, discovery
//! directory handling, and cleanup on every exit path.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::http::{wait_for_discovery, HttpPlugin, SESSION_ID};
use support::{McpClient, TIMEOUT};

async fn assert_clean_exit_on(signal: Option<i32>) {
    let mut p = HttpPlugin::start(&[]).await;
    p.mcp.handshake().await;
    // An SSE client is connected: its endless stream must not hold the exit.
    let _sse = p.sse(None).await;
    assert!(p.discovery_path().exists());
    let started = Instant::now();
    match signal {
        Some(sig) => p.mcp.signal(sig), // stdin stays open
        None => p.mcp.close_stdin(),
    }
    let status = p.mcp.wait_exit(TIMEOUT).await;
    eprintln!("exit after {:?}", started.elapsed());
    assert!(
        status.success(),
        "exit status {status:?}\nstderr:\n{}",
        p.mcp.stderr()
    );
    assert!(!p.discovery_path().exists(), "discovery file left behind");
    assert!(p.mcp.stderr().contains("discovery file removed"));
}

#[tokio::test]
async fn stdin_eof_cleans_up_and_exits_zero() {
    assert_clean_exit_on(None).await;
}

#[tokio::test]
async fn sigint_cleans_up_and_exits_zero() {
    assert_clean_exit_on(Some(libc::SIGINT)).await;
}

#[tokio::test]
async fn sigterm_cleans_up_and_exits_zero() {
    assert_clean_exit_on(Some(libc::SIGTERM)).await;
}

#[tokio::test]
async fn sighup_cleans_up_and_exits_zero() {
    assert_clean_exit_on(Some(libc::SIGHUP)).await;
}

#[tokio::test]
async fn the_port_is_closed_after_exit() {
    let mut p = HttpPlugin::start(&[]).await;
    p.mcp.handshake().await;
    p.mcp.close_stdin();
    assert!(p.mcp.wait_exit(TIMEOUT).await.success());
    let r = p
        .client
        .post(p.url("/inject"))
        .bearer_auth(&p.secret)
        .json(&json!({"content": "late"}))
        .send()
        .await;
    assert!(r.as_ref().is_err_and(|e| e.is_connect()), "{r:?}");
}

async fn start_failure(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut mcp = McpClient::spawn_with(args, env).await;
    let status = mcp.wait_exit(TIMEOUT).await;
    assert_eq!(
        status.code(),
        Some(1),
        "expected a start-up failure\nstderr:\n{}",
        mcp.stderr()
    );
    mcp.stderr()
}

#[tokio::test]
async fn session_id_must_be_a_uuid() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let err = start_failure(&support::http::http_args(dir, "../../etc/x"), &[]).await;
    assert!(err.contains("is not a UUID"), "{err}");
    let err = start_failure(
        &["http", "--discovery-dir", dir],
        &[("CLAUDE_CODE_SESSION_ID", "nope")],
    )
    .await;
    assert!(
        err.contains("CLAUDE_CODE_SESSION_ID") && err.contains("is not a UUID"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn session_id_and_dir_come_from_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let claude_id = "11111111-2222-4333-8444-555555555555";
    let opzero_id = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
    let dir_s = dir.to_str().unwrap();
    // CLAUDE_CODE_SESSION_ID when nothing else is given.
    let mut mcp = McpClient::spawn_with(
        &["http"],
        &[
            ("OPZERO_CHANNEL_DIR", dir_s),
            ("CLAUDE_CODE_SESSION_ID", claude_id),
        ],
    )
    .await;
    let d = wait_for_discovery(&dir.join(format!("{claude_id}.json")), &mcp).await;
    assert_eq!(d["sessionId"], claude_id);
    mcp.close_stdin();
    assert!(mcp.wait_exit(TIMEOUT).await.success());
    // OPZERO_CHANNEL_SESSION_ID wins over CLAUDE_CODE_SESSION_ID.
    let mut mcp = McpClient::spawn_with(
        &["http"],
        &[
            ("OPZERO_CHANNEL_DIR", dir_s),
            ("CLAUDE_CODE_SESSION_ID", claude_id),
            ("OPZERO_CHANNEL_SESSION_ID", opzero_id),
        ],
    )
    .await;
    wait_for_discovery(&dir.join(format!("{opzero_id}.json")), &mcp).await;
    mcp.close_stdin();
    assert!(mcp.wait_exit(TIMEOUT).await.success());
    // Neither: a fresh UUIDv4.
    let mut mcp = McpClient::spawn_with(&["http"], &[("OPZERO_CHANNEL_DIR", dir_s)]).await;
    let deadline = Instant::now() + TIMEOUT;
    let name = loop {
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        if let Some(n) = names.into_iter().find(|n| n.ends_with(".json")) {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "no discovery file\n{}",
            mcp.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let id = uuid::Uuid::parse_str(name.trim_end_matches(".json")).unwrap();
    assert_eq!(id.get_version_num(), 4);
    mcp.close_stdin();
    assert!(mcp.wait_exit(TIMEOUT).await.success());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[tokio::test]
async fn stale_discovery_files_are_removed_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("channels");
    std::fs::create_dir(&dir).unwrap();
    let dead_pid = {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    };
    let stale = dir.join("99999999-0000-4000-8000-000000000000.json");
    let live = dir.join("99999999-0000-4000-8000-000000000001.json");
    std::fs::write(
        &stale,
        json!({"port": 1, "secret": "s", "pid": dead_pid}).to_string(),
    )
    .unwrap();
    std::fs::write(
        &live,
        json!({"port": 1, "secret": "s", "pid": std::process::id()}).to_string(),
    )
    .unwrap();
    let mut mcp =
        McpClient::spawn(&support::http::http_args(dir.to_str().unwrap(), SESSION_ID)).await;
    wait_for_discovery(&dir.join(format!("{SESSION_ID}.json")), &mcp).await;
    assert!(!stale.exists(), "stale file of a dead pid kept");
    assert!(live.exists(), "file of a live pid removed");
    mcp.close_stdin();
    assert!(mcp.wait_exit(TIMEOUT).await.success());
}

#[tokio::test]
async fn refuses_a_symlink_in_place_of_the_discovery_file() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target.txt");
    std::fs::write(&target, "precious").unwrap();
    let dir = tmp.path().join("channels");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::symlink(&target, dir.join(format!("{SESSION_ID}.json"))).unwrap();
    let err = start_failure(
        &support::http::http_args(dir.to_str().unwrap(), SESSION_ID),
        &[],
    )
    .await;
    assert!(err.contains("symlink"), "{err}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
}

#[tokio::test]
async fn unusable_discovery_dir_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("plain-file");
    std::fs::write(&file, "").unwrap();
    let err = start_failure(&["http", "--discovery-dir", file.to_str().unwrap()], &[]).await;
    assert!(err.contains("not a directory"), "{err}");
    let below = file.join("channels");
    let err = start_failure(&["http", "--discovery-dir", below.to_str().unwrap()], &[]).await;
    assert!(err.contains("cannot create discovery directory"), "{err}");
}

#[tokio::test]
async fn a_second_plugin_for_the_same_session_is_refused() {
    let p = HttpPlugin::start(&[]).await;
    let err = start_failure(
        &support::http::http_args(p.dir.to_str().unwrap(), SESSION_ID),
        &[],
    )
    .await;
    assert!(err.contains("already serves"), "{err}");
    assert!(
        p.discovery_path().exists(),
        "the first plugin's file must stay"
    );
}
