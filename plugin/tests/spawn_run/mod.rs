//! A `channel-plugin spawn` process under test, for `spawn_real_claude.rs`
//! (the only file that includes it, so nothing here is dead code elsewhere).
//!
//! Every spawn test needs the same three things around the child: a guard
//! that stops it if the test fails midway (so no failed run leaves claude
//! behind), its stderr read line by line on a thread (spawn reports what it
//! does there), and bounded waits for lines and for exit. [`SpawnRun`] bundles
//! them so each test states only its scenario.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A started `spawn`. Fields drop in order: the log reader first, then the
/// guard stops the process if it is still running.
pub struct SpawnRun {
    /// Stderr lines as they arrive; `None` once the test stops reading.
    log: Option<mpsc::Receiver<String>>,
    /// Every stderr line read so far, in order.
    pub seen: Vec<String>,
    _stop: StopOnDrop,
    pub child: Child,
}

impl SpawnRun {
    /// Starts `cmd` (which must pipe stderr), guarded, with its stderr read
    /// on a thread.
    pub fn start(cmd: &mut Command) -> Self {
        let mut child = cmd.spawn().unwrap();
        let stop = StopOnDrop(child.id() as i32);
        let log = stderr_lines(&mut child);
        SpawnRun {
            log: Some(log),
            seen: Vec::new(),
            _stop: stop,
            child,
        }
    }

    /// Reads lines until one contains `needle` (a line already seen counts);
    /// `None` if none does within `timeout` or stderr closes first.
    pub fn until(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return Some(l.clone());
        }
        let log = self.log.as_ref().expect("stderr is still being read");
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match log.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(_) => break,
            }
        }
        None
    }

    /// [`Self::until`], failing the test with the log so far if no line
    /// contains `needle`.
    pub fn expect_line(&mut self, needle: &str, timeout: Duration) -> String {
        match self.until(needle, timeout) {
            Some(line) => line,
            None => panic!(
                "no stderr line containing {needle:?} within {timeout:?}:\n{}",
                self.log_text()
            ),
        }
    }

    /// Reads the rest of stderr into [`Self::seen`], stopping when it closes
    /// or no line arrives for `idle`.
    pub fn read_rest(&mut self, idle: Duration) {
        let log = self.log.as_ref().expect("stderr is still being read");
        while let Ok(l) = log.recv_timeout(idle) {
            self.seen.push(l);
        }
    }

    /// Stops reading stderr: every later line spawn writes hits a closed pipe.
    pub fn stop_reading(&mut self) {
        self.log = None;
    }

    /// Everything read so far, one line per line.
    pub fn log_text(&self) -> String {
        self.seen.join("\n")
    }

    /// claude's process group, from spawn's "claude started" line.
    pub fn pgid(&self) -> i32 {
        pgid_from(&self.seen)
    }

    pub fn sigterm(&self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
    }

    /// Waits for spawn to exit; kills it and fails the test after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("spawn did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// claude's process group, from the "claude started (process group N)" line
/// among spawn's log `lines`.
pub fn pgid_from(lines: &[String]) -> i32 {
    let line = lines
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

/// Collects a child's stderr lines on a thread.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
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
