//! Claude Code's memory of servers that never answered the `server/discover` probe.
//!
//! CHANNELS.md §3.2: "No answer → fallback after the probe timeout (3 s ...), remembered for 7
//! days per server command so later starts skip the probe". FINDINGS 16 (2.1.300, 2.1.330): a
//! second start in the same HOME after a *silent* probe sends no `server/discover` and goes
//! straight to `initialize`; after a `-32601` answer the second start probes again. So only an
//! unanswered probe is remembered, keyed by the server command, for the profile's
//! `discover.remember_unanswered_days`.
//!
//! The real client keeps this in its HOME; [`ProbeMemory::in_dir`] keeps it in a JSON file under
//! a directory you give (one directory = one HOME), [`ProbeMemory::in_process`] only in this
//! process. Sessions without a memory ([`crate::LaunchOptions::probe_memory`] = `None`) behave
//! like a fresh HOME: nothing remembered, nothing written. The clock is injectable
//! ([`ManualClock`]) so a test can step over the 7 days.
//!
//! What the key is exactly is not documented beyond "per server command": we use the full argv
//! (command and arguments), not the env or the server name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where "now" comes from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<SystemTime>>);

impl ManualClock {
    /// Starts at `at`.
    pub fn starting_at(at: SystemTime) -> Self {
        ManualClock(Arc::new(Mutex::new(at)))
    }
    /// Move forward by `by` (every clone sees it).
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

/// File name of the persisted memory inside the directory given to [`ProbeMemory::in_dir`].
pub const MEMORY_FILE: &str = "mock-claude-probe-memory.json";

/// On-disk shape: server command key → when its probe went unanswered (ms since the epoch).
#[derive(Debug, Default, Serialize, Deserialize)]
struct MemoryFile {
    unanswered_probe_at_ms: BTreeMap<String, u64>,
}

/// A (shared, cloneable) memory of unanswered probes.
#[derive(Debug, Clone)]
pub struct ProbeMemory {
    file: Option<PathBuf>,
    in_process: Arc<Mutex<MemoryFile>>,
    clock: Arc<dyn Clock>,
}

/// A remembered unanswered probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    /// When the probe went unanswered.
    pub at: SystemTime,
    /// How long ago that was.
    pub age: Duration,
}

fn to_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

impl ProbeMemory {
    /// Persisted as `<dir>/mock-claude-probe-memory.json` (created on first write), so
    /// sessions in other processes using the same directory share it, like one HOME.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        ProbeMemory {
            file: Some(dir.into().join(MEMORY_FILE)),
            in_process: Arc::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Kept in this process only (clones share it).
    pub fn in_process() -> Self {
        ProbeMemory {
            file: None,
            in_process: Arc::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Use `clock` instead of the wall clock.
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The file backing this memory, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The key for a server: its argv (command and arguments) as a JSON array.
    pub fn key(command: &[String]) -> String {
        serde_json::to_string(command).expect("strings serialise")
    }

    fn load(&self) -> Result<MemoryFile> {
        let Some(path) = &self.file else {
            let m = self.in_process.lock().unwrap();
            return Ok(MemoryFile {
                unanswered_probe_at_ms: m.unanswered_probe_at_ms.clone(),
            });
        };
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                Error::Options(format!(
                    "probe memory {} is not valid (delete it to start afresh): {e}",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(MemoryFile::default()),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    fn store(&self, m: MemoryFile) -> Result<()> {
        let Some(path) = &self.file else {
            *self.in_process.lock().unwrap() = m;
            return Ok(());
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        // Written whole and renamed into place: a reader never sees half a file.
        let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
        let text = serde_json::to_string_pretty(&m).expect("memory serialises");
        std::fs::write(&tmp, text)
            .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
        std::fs::rename(&tmp, path)
            .map_err(|e| Error::io(format!("renaming into {}", path.display()), e))
    }

    /// The unanswered probe remembered for `command`, if it is younger than `lifetime`.
    /// An expired entry is removed.
    pub fn remembered(&self, command: &[String], lifetime: Duration) -> Result<Option<Remembered>> {
        let key = Self::key(command);
        let mut m = self.load()?;
        let Some(&at_ms) = m.unanswered_probe_at_ms.get(&key) else {
            return Ok(None);
        };
        let at = UNIX_EPOCH + Duration::from_millis(at_ms);
        let age = self.clock.now().duration_since(at).unwrap_or_default();
        if age < lifetime {
            return Ok(Some(Remembered { at, age }));
        }
        tracing::debug!(%key, ?age, "remembered unanswered probe expired");
        m.unanswered_probe_at_ms.remove(&key);
        self.store(m)?;
        Ok(None)
    }

    /// Remember that `command`'s probe went unanswered now.
    pub fn remember_unanswered(&self, command: &[String]) -> Result<()> {
        let mut m = self.load()?;
        m.unanswered_probe_at_ms
            .insert(Self::key(command), to_ms(self.clock.now()));
        self.store(m)
    }

    /// Forget `command` (like deleting it from the client's state).
    pub fn forget(&self, command: &[String]) -> Result<()> {
        let mut m = self.load()?;
        if m.unanswered_probe_at_ms
            .remove(&Self::key(command))
            .is_some()
        {
            self.store(m)?;
        }
        Ok(())
    }
}
