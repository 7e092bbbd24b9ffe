//! A discovery directory or file the plugin must not use: refused at start
//! with a clear error on stderr and a non-zero exit, nothing written.
//!
//! These tests run as root in CI. Root ignores permission bits, so an
//! "unwritable" directory is tested by running the plugin as `nobody`
//! (uid 65534) against a root-owned 0700 directory; a "foreign-owned"
//! directory is one chowned to `nobody` while the plugin runs as root. When
//! not run as root, the tests that need it print why and pass vacuously.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use support::http::SESSION_ID;
use support::{plugin_bin, TIMEOUT};

const NOBODY: u32 = 65534;
/// A refusal happens at start; a plugin still running after this accepted.
const REFUSAL_WAIT: Duration = Duration::from_secs(5);

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Run `channel-plugin http` against `dir` with stdin open; a refusal makes
/// it exit by itself. Returns (exit code, stderr); a plugin that accepted
/// the directory is stopped and reported as exit code 0. `as_uid` drops
/// privileges.
async fn run_plugin(dir: &Path, as_uid: Option<u32>) -> (Option<i32>, String) {
    let mut cmd = tokio::process::Command::new(plugin_bin());
    cmd.args(support::http::http_args(dir.to_str().unwrap(), SESSION_ID))
        .env_remove("OPZERO_CHANNEL_DIR")
        .env_remove("CLAUDE_CODE_SESSION_ID")
        .env("RUST_LOG", "channel_plugin=debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(uid) = as_uid {
        cmd.uid(uid).gid(uid);
    }
    let mut child = cmd.spawn().expect("spawn channel-plugin");
    // Hold stdin open: a plugin that accepted the directory keeps running.
    let _stdin = child.stdin.take();
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr_task = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text).await;
        text
    });
    let code = match tokio::time::timeout(REFUSAL_WAIT, child.wait()).await {
        Ok(status) => status.unwrap().code(),
        Err(_) => {
            // Still serving: it accepted the directory. Stop it to collect its log.
            let _ = child.kill().await;
            Some(0)
        }
    };
    let stderr = tokio::time::timeout(TIMEOUT, stderr_task)
        .await
        .expect("stderr closed")
        .unwrap();
    (code, stderr)
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn symlink_in_place_of_the_discovery_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("channels");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, dir.join(format!("{SESSION_ID}.json"))).unwrap();

    let (code, stderr) = run_plugin(&dir, None).await;
    assert_ne!(code, Some(0), "started anyway:\n{stderr}");
    assert!(stderr.contains("symlink"), "unclear error:\n{stderr}");
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious",
        "symlink target was written"
    );
    assert!(
        std::fs::symlink_metadata(dir.join(format!("{SESSION_ID}.json")))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the symlink itself was replaced"
    );
}

#[tokio::test]
async fn a_file_in_place_of_the_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("channels");
    std::fs::write(&dir, "").unwrap();
    let (code, stderr) = run_plugin(&dir, None).await;
    assert_ne!(code, Some(0), "started anyway:\n{stderr}");
    assert!(
        stderr.contains("not a directory"),
        "unclear error:\n{stderr}"
    );
}

/// Root bypasses mode bits, so the plugin runs as nobody against a
/// root-owned 0700 directory it can neither write nor list.
#[tokio::test]
async fn unwritable_directory_is_refused_with_a_clear_error() {
    if !is_root() {
        eprintln!("skipped: needs root to run the plugin as nobody");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // nobody may walk to the directory, not write in it.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.path().join("channels");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    // The binary must be reachable by nobody too.
    let bin = Path::new(plugin_bin());
    if std::fs::metadata(bin)
        .map(|m| m.mode() & 0o001 == 0)
        .unwrap_or(true)
    {
        eprintln!("skipped: {} is not executable by others", bin.display());
        return;
    }

    let (code, stderr) = run_plugin(&dir, Some(NOBODY)).await;
    assert_ne!(code, Some(0), "started anyway:\n{stderr}");
    assert!(
        stderr.contains("Permission denied") && stderr.contains(dir.to_str().unwrap()),
        "the error should name the directory and the reason:\n{stderr}"
    );
    assert!(
        entries(&dir).is_empty(),
        "something was written: {:?}",
        entries(&dir)
    );
}

/// Root (or anyone) must not publish its secret into a directory another
/// user owns: that user can read, replace or pre-plant the file.
#[tokio::test]
async fn foreign_owned_directory_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root to chown a directory to nobody");
        return;
    }
    for mode in [0o700, 0o777] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("channels");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();

        let (code, stderr) = run_plugin(&dir, None).await;
        let written = entries(&dir);
        assert_ne!(
            code,
            Some(0),
            "mode {mode:o}: started in a directory owned by uid {NOBODY}:\n{stderr}"
        );
        assert!(
            stderr.contains("owned by") || stderr.contains("owner"),
            "mode {mode:o}: the error should say the directory belongs to someone else:\n{stderr}"
        );
        assert!(
            written.is_empty(),
            "mode {mode:o}: the secret was written there: {written:?}"
        );
    }
}

/// A directory we own but that others can enter is tightened to 0700 (not
/// refused): the usual state after `mkdir -p` with a 022 umask.
#[tokio::test]
async fn own_loose_directory_is_tightened_not_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("channels");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut mcp =
        support::McpClient::spawn(&support::http::http_args(dir.to_str().unwrap(), SESSION_ID))
            .await;
    let file = dir.join(format!("{SESSION_ID}.json"));
    support::http::wait_for_discovery(&file, &mcp).await;
    assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
    mcp.close_stdin();
    assert!(mcp.wait_exit(TIMEOUT).await.success());
}

/// A plugin was SIGKILLed long ago and its pid now belongs to an unrelated
/// process (pids are reused, quickly in containers). Its discovery file must
/// not keep the session from starting: the pid is alive, but it is not a
/// channel plugin serving this session (its port does not answer `/status`
/// with this session id).
#[tokio::test]
async fn stale_file_whose_pid_was_reused_does_not_block_the_session() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("channels");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    // The unrelated process that got the dead plugin's pid.
    let mut unrelated = std::process::Command::new("sleep")
        .arg("1000")
        .spawn()
        .unwrap();
    // A port nobody listens on.
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stale = serde_json::json!({
        "port": free_port, "secret": "00".repeat(32), "pid": unrelated.id(),
        "sessionId": SESSION_ID, "version": "0.1.0", "createdAt": "2026-01-01T00:00:00Z"
    });
    let file = dir.join(format!("{SESSION_ID}.json"));
    std::fs::write(&file, serde_json::to_vec(&stale).unwrap()).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();

    let (code, stderr) = run_plugin(&dir, None).await;
    unrelated.kill().unwrap();
    unrelated.wait().unwrap();
    assert_eq!(code, Some(0), "the plugin refused to start:\n{stderr}");
    assert!(
        stderr.contains("not a channel-plugin"),
        "the replacement of the stale file was not logged with its reason:\n{stderr}"
    );
}

fn owned_dir(tmp: &tempfile::TempDir, name: &str) -> std::path::PathBuf {
    let dir = tmp.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

async fn spawn_http_plugin(dir: &Path, session: &str) -> (support::McpClient, serde_json::Value) {
    let mcp =
        support::McpClient::spawn(&support::http::http_args(dir.to_str().unwrap(), session)).await;
    let record =
        support::http::wait_for_discovery(&dir.join(format!("{session}.json")), &mcp).await;
    (mcp, record)
}

/// The other side of the pid-reuse fix: a genuine channel-plugin still
/// serving the session keeps it, and a second one is refused with a clear
/// error, leaving the owner's file intact.
#[tokio::test]
async fn a_live_plugin_for_the_session_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = owned_dir(&tmp, "channels");
    let (mut owner, record) = spawn_http_plugin(&dir, SESSION_ID).await;
    assert_eq!(record["pid"], owner.pid());

    let (code, stderr) = run_plugin(&dir, None).await;
    assert_ne!(
        code,
        Some(0),
        "a second plugin started beside the owner:\n{stderr}"
    );
    assert!(
        stderr.contains("already serves") && stderr.contains(&owner.pid().to_string()),
        "the error should name the owner's pid:\n{stderr}"
    );
    let file = dir.join(format!("{SESSION_ID}.json"));
    let now: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(now, record, "the owner's discovery file was changed");

    owner.close_stdin();
    assert!(owner.wait_exit(TIMEOUT).await.success());
}

/// A stale file whose pid now belongs to ANOTHER channel-plugin (serving a
/// different session, on the port the file names): the exe check alone would
/// call it the owner; its `/status` says otherwise.
#[tokio::test]
async fn stale_file_whose_pid_went_to_another_sessions_plugin_does_not_block() {
    const OTHER_SESSION: &str = "11111111-2222-4333-8444-555555555555";
    let tmp = tempfile::tempdir().unwrap();
    let other_dir = owned_dir(&tmp, "other");
    let (mut other, other_record) = spawn_http_plugin(&other_dir, OTHER_SESSION).await;

    let dir = owned_dir(&tmp, "channels");
    let stale = serde_json::json!({
        "port": other_record["port"], "secret": "00".repeat(32), "pid": other.pid(),
        "sessionId": SESSION_ID, "version": "0.1.0", "createdAt": "2026-01-01T00:00:00Z"
    });
    let file = dir.join(format!("{SESSION_ID}.json"));
    std::fs::write(&file, serde_json::to_vec(&stale).unwrap()).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();

    let (code, stderr) = run_plugin(&dir, None).await;
    assert_eq!(code, Some(0), "the plugin refused to start:\n{stderr}");
    assert!(
        stderr.contains("not this one"),
        "the replacement of the stale file was not logged with its reason:\n{stderr}"
    );

    other.close_stdin();
    assert!(other.wait_exit(TIMEOUT).await.success());
}
