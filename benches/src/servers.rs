//! The servers under test, where their programs are, and how to start one
//! the way Claude Code does (piped stdio, session env) with a fresh
//! discovery directory.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Deserialize;

/// One server implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `channel-plugin http` (this repo).
    Ours,
    /// `benches/reference-ts/server.mjs` under Node.
    Node,
    /// The same file under Bun.
    Bun,
    /// `benches/floor/floor.c`: prepared frames only.
    Floor,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Ours, Kind::Node, Kind::Bun, Kind::Floor];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::Node => "node",
            Kind::Bun => "bun",
            Kind::Floor => "floor",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Ours => "channel-plugin (Rust)",
            Kind::Node => "TS SDK on Node",
            Kind::Bun => "TS SDK on Bun",
            Kind::Floor => "C floor",
        }
    }

    pub fn parse(s: &str) -> anyhow::Result<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .with_context(|| format!("unknown server {s:?}; one of ours, node, bun, floor"))
    }
}

/// The workspace root (this crate's parent directory).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ has a parent")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("target"))
}

/// The `channel-plugin` binary: `$CHANNEL_PLUGIN_BIN`, else the release
/// build, else the debug build (with a warning: debug numbers mean nothing).
pub fn plugin_bin() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("CHANNEL_PLUGIN_BIN") {
        // Absolute: servers are spawned in another working directory.
        return std::fs::canonicalize(&p)
            .with_context(|| format!("CHANNEL_PLUGIN_BIN={}", PathBuf::from(&p).display()));
    }
    let release = target_dir().join("release").join("channel-plugin");
    if release.exists() {
        return Ok(release);
    }
    let debug = target_dir().join("debug").join("channel-plugin");
    if debug.exists() {
        eprintln!(
            "warning: using the DEBUG build {}; run `cargo build --release -p channel-plugin` for real numbers",
            debug.display()
        );
        return Ok(debug);
    }
    bail!(
        "no channel-plugin binary under {}; run `cargo build --release -p channel-plugin` (or set CHANNEL_PLUGIN_BIN)",
        target_dir().display()
    )
}

/// `benches/reference-ts/`.
pub fn reference_dir() -> PathBuf {
    workspace_dir().join("benches").join("reference-ts")
}

/// The program and arguments for `kind`.
pub fn command_for(kind: Kind) -> anyhow::Result<Vec<String>> {
    let script = reference_dir().join("server.mjs");
    let need_modules = || -> anyhow::Result<()> {
        if !reference_dir()
            .join("node_modules")
            .join("@modelcontextprotocol")
            .exists()
        {
            bail!(
                "benches/reference-ts/node_modules is missing; run `npm ci --prefix {}`",
                reference_dir().display()
            );
        }
        Ok(())
    };
    Ok(match kind {
        Kind::Ours => vec![plugin_bin()?.display().to_string(), "http".into()],
        Kind::Node => {
            need_modules()?;
            vec!["node".into(), script.display().to_string()]
        }
        Kind::Bun => {
            need_modules()?;
            // The npm `bun` package ships the real binary; spawn it directly so
            // the pid we measure is bun itself, not a shim.
            let bun = reference_dir()
                .join("node_modules")
                .join("bun")
                .join("bin")
                .join("bun.exe");
            if !bun.exists() {
                bail!(
                    "{} is missing (npm package `bun`); run `npm ci` in benches/reference-ts",
                    bun.display()
                );
            }
            vec![bun.display().to_string(), script.display().to_string()]
        }
        Kind::Floor => {
            let floor = env!("CHANNEL_FLOOR_BIN");
            if floor.is_empty() {
                bail!("the C floor was not built (no C compiler when building channel-benches)");
            }
            vec![floor.into()]
        }
    })
}

/// How long a server may write nothing on stdout while the driver waits for
/// a line before its round fails.
pub const STDOUT_SILENCE: Duration = Duration::from_secs(30);

/// Block until `fd` has something to read (or its writer closed), at most
/// `timeout`.
fn wait_readable(fd: &impl std::os::fd::AsRawFd, timeout: Duration) -> anyhow::Result<()> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd, count 1.
        match unsafe { libc::poll(&mut pfd, 1, ms) } {
            n if n > 0 => return Ok(()),
            0 => bail!("timed out"),
            _ => {
                let err = std::io::Error::last_os_error();
                if err.kind() != std::io::ErrorKind::Interrupted {
                    return Err(err.into());
                }
            }
        }
    }
}

/// The discovery record every server writes.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub port: u16,
    pub secret: String,
    pub pid: u32,
}

/// A running server with piped stdio.
pub struct Running {
    pub kind: Kind,
    pub child: Child,
    pub stdin: ChildStdin,
    pub stdout: BufReader<ChildStdout>,
    pub spawned_at: Instant,
    pub session_id: String,
    pub dir: tempfile::TempDir,
}

impl Running {
    /// Spawn `kind` as Claude Code would (stderr to `stderr_log`, or dropped).
    pub fn spawn(kind: Kind, stderr_log: Option<&Path>) -> anyhow::Result<Running> {
        let argv = command_for(kind)?;
        let dir = tempfile::Builder::new()
            .prefix("channel-bench-")
            .tempdir()?;
        let session_id = uuid::Uuid::new_v4().to_string();
        let stderr = match stderr_log {
            Some(p) => Stdio::from(std::fs::File::create(p)?),
            None => Stdio::null(),
        };
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .current_dir(reference_dir().parent().expect("benches/"))
            .env("OPZERO_CHANNEL_DIR", dir.path())
            .env("CLAUDE_CODE_SESSION_ID", &session_id)
            .env("CLAUDECODE", "1")
            .env("CLAUDE_CODE_ENTRYPOINT", "cli")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let spawned_at = Instant::now();
        let mut child = cmd.spawn().with_context(|| format!("spawning {argv:?}"))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::with_capacity(256 * 1024, child.stdout.take().expect("piped"));
        Ok(Running {
            kind,
            child,
            stdin,
            stdout,
            spawned_at,
            session_id,
            dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stdin
            .write_all(bytes)
            .context("writing to the server's stdin")?;
        self.stdin.flush()?;
        Ok(())
    }

    /// The next stdout line (without `\n`) into `line`. A server silent for
    /// [`STDOUT_SILENCE`] fails the call (and so its round) with an error,
    /// instead of hanging the run on a lost event or a stuck server.
    pub fn read_line(&mut self, line: &mut Vec<u8>) -> anyhow::Result<()> {
        line.clear();
        loop {
            if self.stdout.buffer().is_empty() {
                wait_readable(self.stdout.get_ref(), STDOUT_SILENCE).with_context(|| {
                    format!(
                        "{} wrote nothing on stdout for {STDOUT_SILENCE:?} (a lost event, or a stuck server)",
                        self.kind.name()
                    )
                })?;
            }
            let available = self.stdout.fill_buf()?;
            if available.is_empty() {
                bail!("{} closed stdout", self.kind.name());
            }
            match available.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    line.extend_from_slice(&available[..end]);
                    self.stdout.consume(end + 1);
                    return Ok(());
                }
                None => {
                    let n = available.len();
                    line.extend_from_slice(available);
                    self.stdout.consume(n);
                }
            }
        }
    }

    /// Read lines until the response to `id`; other lines are skipped.
    pub fn read_response(&mut self, id: u64, line: &mut Vec<u8>) -> anyhow::Result<()> {
        loop {
            self.read_line(line)?;
            if crate::frames::is_response_to(line, id) {
                return Ok(());
            }
        }
    }

    /// Wait for the discovery file (bounded).
    pub fn discovery(&self, timeout: Duration) -> anyhow::Result<Discovery> {
        let path = self.dir.path().join(format!("{}.json", self.session_id));
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(text) = std::fs::read_to_string(&path) {
                if let Ok(d) = serde_json::from_str::<Discovery>(&text) {
                    return Ok(d);
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: no discovery file {} after {timeout:?}",
                    self.kind.name(),
                    path.display()
                );
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// SIGINT, then wait for the exit (SIGKILL after `limit`): the time from
    /// the signal to the reaped exit, or `None` if it had to be killed.
    pub fn sigint_exit(mut self, limit: Duration) -> anyhow::Result<Option<Duration>> {
        let pid = self.child.id() as libc::pid_t;
        let t0 = Instant::now();
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(pid, libc::SIGINT) };
        loop {
            if self.child.try_wait()?.is_some() {
                return Ok(Some(t0.elapsed()));
            }
            if t0.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Ok(None);
            }
            // Poll finely: this is what we measure.
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod wait_tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn waiting_for_a_silent_stream_times_out_and_data_or_a_close_ends_it() {
        let (mut near, far) = UnixStream::pair().unwrap();
        let err = wait_readable(&far, Duration::from_millis(50)).unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err:#}");
        near.write_all(b"x").unwrap();
        wait_readable(&far, Duration::from_secs(30)).unwrap();
        let (near, far) = UnixStream::pair().unwrap();
        drop(near);
        wait_readable(&far, Duration::from_secs(30)).unwrap();
    }
}
