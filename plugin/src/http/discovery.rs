//! The discovery file `<dir>/<session-id>.json`: how the opzero server (or a
//! human with `curl`) finds this plugin's port and secret.
//!
//! Written atomically (temp file + rename) with mode 0600 in a 0700
//! directory; removed on exit. Files left by dead plugins (SIGKILL, crash)
//! are removed at start; our own session's file is replaced unless its pid
//! is a live channel plugin still serving that session (see `owner`).

use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// The file's content. `secret` is sensitive: never log this struct.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveryRecord {
    pub port: u16,
    pub secret: String,
    pub pid: u32,
    pub session_id: String,
    pub version: String,
    pub created_at: String,
}

/// A written discovery file; [`DiscoveryFile::remove`] on exit.
#[derive(Debug)]
pub struct DiscoveryFile {
    path: PathBuf,
    pid: u32,
}

/// Create `dir` (mode 0700) if needed; tighten an existing one we own.
pub fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create discovery directory {}", dir.display()))?;
    }
    let meta = fs::metadata(dir)
        .with_context(|| format!("cannot inspect discovery directory {}", dir.display()))?;
    if !meta.is_dir() {
        bail!(
            "discovery path {} exists but is not a directory",
            dir.display()
        );
    }
    // Unwritable first: that error names the real obstacle.
    let c_dir = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .context("discovery directory path contains a NUL byte")?;
    // SAFETY: `c_dir` is a valid NUL-terminated path.
    if unsafe { libc::access(c_dir.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        let err = std::io::Error::last_os_error();
        bail!(
            "cannot write in discovery directory {}: {err}",
            dir.display()
        );
    }
    // Another user's directory: they could read, replace or pre-plant the
    // file that carries our secret. Refuse, whatever its mode.
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != euid {
        bail!(
            "discovery directory {} is owned by uid {}, not by this user (uid {euid}); \
             refusing to publish the secret there (pass --discovery-dir with a directory you own)",
            dir.display(),
            meta.uid()
        );
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).with_context(|| {
            format!(
                "cannot restrict discovery directory {} to mode 0700",
                dir.display()
            )
        })?;
        tracing::info!(dir = %dir.display(), "discovery directory permissions tightened to 0700");
    }
    Ok(())
}

/// Whether a process with this pid exists (EPERM means it does, owned by
/// someone else).
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false; // 0 and negatives address process groups
    }
    // SAFETY: signal 0 performs only the existence/permission check.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether the plugin recorded in an existing discovery file still serves
/// its session.
enum Owner {
    /// It does (or may: it is a channel plugin we could not rule out); the
    /// text says how we know.
    Live(String),
    /// It does not; the text says why.
    Stale(String),
}

/// How long to wait for a possible owner's `/status` at start. Loopback
/// answers in microseconds; this only bounds a wedged owner.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// Decide whether `pid` (from the discovery file of `session_id`, serving
/// `port`) is a live channel plugin for that session.
///
/// Why not just "the pid is alive": pids are reused (quickly in containers),
/// so a file left by a SIGKILLed plugin can name an unrelated process and
/// would block its session forever. Two cheap checks, in order:
///
/// 1. `/proc/<pid>/exe` must be a channel-plugin executable: the same file
///    as ours, or one with the same file name (another build or install).
///    No network, no waiting, and it rules out the common case (a shell, a
///    `sleep`, anything else that got the pid). An unreadable link means a
///    process of another user, which cannot own a file in our 0700 directory.
/// 2. It is a channel plugin, but maybe for another session (pids are also
///    reused by other plugins): its recorded port must answer
///    `GET /status` (no auth) with this session id and this pid. A refused
///    connection or another session/pid is stale. A port that accepts but
///    does not answer in time is taken as a wedged owner and refused:
///    starting a second plugin beside a genuine one is worse than a clear
///    error the user can act on.
fn owner(pid: u32, port: Option<u16>, session_id: &str) -> Owner {
    if !pid_alive(pid) {
        return Owner::Stale(format!("pid {pid} is not running"));
    }
    if !is_channel_plugin(pid) {
        return Owner::Stale(format!(
            "pid {pid} is alive but is not a channel-plugin (the pid was reused)"
        ));
    }
    let Some(port) = port.filter(|&p| p != 0) else {
        return Owner::Live(format!(
            "pid {pid} is a channel-plugin; the file has no port"
        ));
    };
    match probe_status(port) {
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => Owner::Stale(format!(
            "pid {pid} is a channel-plugin but nothing listens on its port {port}"
        )),
        Err(err) => Owner::Live(format!(
            "pid {pid} is a channel-plugin; GET /status on port {port} failed: {err}"
        )),
        Ok(body) => {
            let status = serde_json::from_str::<serde_json::Value>(&body).ok();
            let got_sid = status
                .as_ref()
                .and_then(|v| v.get("sessionId").and_then(|s| s.as_str()));
            let got_pid = status
                .as_ref()
                .and_then(|v| v.get("pid").and_then(|p| p.as_u64()));
            if got_sid == Some(session_id) && got_pid == Some(u64::from(pid)) {
                Owner::Live(format!("its port {port} answers /status for this session"))
            } else if status.is_none() {
                Owner::Live(format!(
                    "pid {pid} is a channel-plugin; /status on port {port} is not JSON"
                ))
            } else {
                Owner::Stale(format!(
                    "port {port} answers for session {got_sid:?} pid {got_pid:?}, not this one"
                ))
            }
        }
    }
}

/// Whether `/proc/<pid>/exe` is a channel-plugin executable (see [`owner`]).
fn is_channel_plugin(pid: u32) -> bool {
    let Ok(theirs) = fs::read_link(format!("/proc/{pid}/exe")) else {
        return false;
    };
    // A rebuilt or reinstalled binary shows as "<path> (deleted)".
    let theirs = match theirs.to_str().and_then(|s| s.strip_suffix(" (deleted)")) {
        Some(s) => PathBuf::from(s),
        None => theirs,
    };
    let Ok(ours) = std::env::current_exe() else {
        return false;
    };
    let canon = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if canon(&theirs) == canon(&ours) {
        return true;
    }
    theirs.file_name().is_some_and(|n| n == "channel-plugin")
}

/// Body of `GET http://127.0.0.1:<port>/status` (loopback only, bounded by
/// [`STATUS_TIMEOUT`]). `/status` answers with a Content-Length body.
fn probe_status(port: u16) -> std::io::Result<String> {
    use std::io::Read as _;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, STATUS_TIMEOUT)?;
    stream.set_read_timeout(Some(STATUS_TIMEOUT))?;
    stream.set_write_timeout(Some(STATUS_TIMEOUT))?;
    write!(
        stream,
        "GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    Ok(text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default())
}

/// Remove discovery files (and our temp files) whose pid is dead. Returns
/// how many were removed. Unreadable files are left alone, with a warning.
pub fn remove_stale(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = if let Some(pid) = temp_file_pid(&name) {
            pid
        } else if name.ends_with(".json") && !name.starts_with('.') {
            let Ok(ft) = entry.file_type() else { continue };
            if !ft.is_file() {
                continue;
            }
            match fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            {
                Some(v) => match v
                    .get("pid")
                    .and_then(|p| p.as_u64())
                    .and_then(|p| u32::try_from(p).ok())
                {
                    Some(pid) => pid,
                    None => {
                        tracing::warn!(file = %path.display(), "discovery file without a pid; left alone");
                        continue;
                    }
                },
                None => {
                    tracing::warn!(file = %path.display(), "unreadable discovery file; left alone");
                    continue;
                }
            }
        } else {
            continue;
        };
        if !pid_alive(pid) {
            match fs::remove_file(&path) {
                Ok(()) => {
                    removed += 1;
                    tracing::info!(file = %path.display(), pid, "removed stale discovery file of a dead plugin");
                }
                Err(err) => {
                    tracing::warn!(file = %path.display(), "cannot remove stale discovery file: {err}")
                }
            }
        }
    }
    removed
}

fn temp_file_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (_, pid) = rest.rsplit_once(".tmp-")?;
    pid.parse().ok()
}

/// Write `<dir>/<session_id>.json` atomically with mode 0600.
pub fn write(dir: &Path, record: &DiscoveryRecord) -> anyhow::Result<DiscoveryFile> {
    let path = dir.join(format!("{}.json", record.session_id));
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            bail!(
                "refusing to write discovery file {}: a symlink is in its place",
                path.display()
            )
        }
        Ok(meta) if !meta.is_file() => {
            bail!(
                "refusing to write discovery file {}: something that is not a file is in its place",
                path.display()
            )
        }
        Ok(_) => {
            let existing = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
            let pid = existing
                .as_ref()
                .and_then(|v| v.get("pid").and_then(|p| p.as_u64()))
                .and_then(|p| u32::try_from(p).ok())
                .filter(|&pid| pid != std::process::id());
            let port = existing
                .as_ref()
                .and_then(|v| v.get("port").and_then(|p| p.as_u64()))
                .and_then(|p| u16::try_from(p).ok());
            if let Some(other) = pid {
                match owner(other, port, &record.session_id) {
                    Owner::Live(how) => bail!(
                        "another plugin (pid {other}) already serves session {} (discovery file {}; \
                         {how}); stop it, or remove the file if that pid is not a channel plugin",
                        record.session_id,
                        path.display()
                    ),
                    Owner::Stale(why) => tracing::info!(
                        file = %path.display(),
                        pid = other,
                        "replacing stale discovery file: {why}"
                    ),
                }
            }
        }
        Err(_) => {}
    }
    let temp = dir.join(format!(".{}.json.tmp-{}", record.session_id, record.pid));
    let _ = fs::remove_file(&temp);
    let bytes = serde_json::to_vec_pretty(record).expect("record serializes");
    let result = (|| -> std::io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        // The umask cannot loosen 0600, but be explicit in case it was preset.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        fs::rename(&temp, &path)
    })();
    if let Err(err) = result {
        let _ = fs::remove_file(&temp);
        return Err(err).with_context(|| format!("cannot write discovery file {}", path.display()));
    }
    Ok(DiscoveryFile {
        path,
        pid: record.pid,
    })
}

impl DiscoveryFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Remove the file, unless another plugin has since replaced it.
    pub fn remove(&self) {
        let ours = fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("pid").and_then(|p| p.as_u64()))
            == Some(u64::from(self.pid));
        if !ours {
            tracing::warn!(file = %self.path.display(), "discovery file is gone or no longer ours; not removed");
            return;
        }
        match fs::remove_file(&self.path) {
            Ok(()) => tracing::info!(file = %self.path.display(), "discovery file removed"),
            Err(err) => {
                tracing::warn!(file = %self.path.display(), "cannot remove discovery file: {err}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(session: &str, pid: u32) -> DiscoveryRecord {
        DiscoveryRecord {
            port: 1,
            secret: "s".into(),
            pid,
            session_id: session.into(),
            version: "0".into(),
            created_at: "now".into(),
        }
    }

    #[test]
    fn writes_0600_in_a_0700_dir_and_removes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        prepare_dir(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        let file = write(&dir, &record("s1", std::process::id())).unwrap();
        assert_eq!(fs::metadata(file.path()).unwrap().mode() & 0o777, 0o600);
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("s1.json")],
            "no temp file left"
        );
        file.remove();
        assert!(!file.path().exists());
    }

    #[test]
    fn refuses_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", tmp.path().join("s1.json")).unwrap();
        let err = write(tmp.path(), &record("s1", std::process::id())).unwrap_err();
        assert!(format!("{err:#}").contains("symlink"), "{err:#}");
        // The refusal of a genuine live owner needs a real channel-plugin:
        // see tests/fault_discovery.rs::a_live_plugin_for_the_session_is_refused.
    }

    #[test]
    fn a_live_pid_that_is_not_a_plugin_does_not_own_the_discovery_file() {
        let tmp = tempfile::tempdir().unwrap();
        // pid 1 is alive (init) but is not a channel plugin: a reused pid.
        write(tmp.path(), &record("s2", 1)).unwrap();
        let file = write(tmp.path(), &record("s2", std::process::id())).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&fs::read(file.path()).unwrap()).unwrap();
        assert_eq!(v["pid"], u64::from(std::process::id()), "file not replaced");
        assert!(matches!(owner(1, Some(1), "s2"), Owner::Stale(_)));
    }

    #[test]
    fn removes_only_stale_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dead = {
            let mut child = std::process::Command::new("true").spawn().unwrap();
            let pid = child.id();
            child.wait().unwrap();
            pid
        };
        write(tmp.path(), &record("dead", dead)).unwrap();
        write(tmp.path(), &record("alive", std::process::id())).unwrap();
        fs::write(tmp.path().join("junk.json"), "not json").unwrap();
        fs::write(tmp.path().join(format!(".x.json.tmp-{dead}")), "").unwrap();
        assert_eq!(remove_stale(tmp.path()), 2);
        assert!(!tmp.path().join("dead.json").exists());
        assert!(tmp.path().join("alive.json").exists());
        assert!(tmp.path().join("junk.json").exists());
    }

    #[test]
    fn unusable_dir_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("plain");
        fs::write(&file, "").unwrap();
        let err = prepare_dir(&file).unwrap_err();
        assert!(format!("{err:#}").contains("not a directory"), "{err:#}");
        let err = prepare_dir(&file.join("sub")).unwrap_err();
        assert!(
            format!("{err:#}").contains("cannot create discovery directory"),
            "{err:#}"
        );
    }
}
