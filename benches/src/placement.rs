//! Where the client and the server run during the latency series.
//!
//! On a small machine the scheduler's placement decides more of a loopback
//! round trip than the server's own work does. Measured here on 2 cores, the
//! same server answers an inject in ~4.8 µs when it shares a CPU with the
//! client (the kernel switches straight from one to the other) and ~7.2 µs
//! when the two sit on different CPUs (each hand-off wakes the other CPU),
//! and left to itself the scheduler picks one or the other per process. A
//! ratio between two servers is then partly a ratio of placements. Pinning
//! both sides the same way for every server removes that.
//!
//! Only the latency series are pinned: start-up, memory, throughput and
//! SIGINT run where the scheduler puts them.

use std::fmt;

use anyhow::Context;

/// Placement of the client and the server for the latency series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// Client and server on different CPUs (CPU 0 and CPU 1).
    Split,
    /// Client and server on the same CPU (CPU 0).
    Same,
    /// No pinning: the scheduler decides, per process.
    Os,
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Placement::Split => "split (client on CPU 0, server on CPU 1)",
            Placement::Same => "same (client and server on CPU 0)",
            Placement::Os => "os (not pinned)",
        })
    }
}

impl Placement {
    /// Pin the calling thread and every thread of `server`.
    pub fn pin(self, server: u32) -> anyhow::Result<()> {
        let (client_cpu, server_cpu) = match self {
            Placement::Os => return Ok(()),
            Placement::Same => (0, 0),
            Placement::Split => (0, 1),
        };
        let server_cpu = if server_cpu >= online_cpus() {
            // One CPU: there is no other placement to pick.
            eprintln!("channel-bench: placement {self} needs 2 CPUs; this machine has 1, pinning both to CPU 0");
            0
        } else {
            server_cpu
        };
        set_affinity(0, &[client_cpu]).context("pinning the client")?;
        for tid in threads(server)? {
            // A thread that exited meanwhile is not an error.
            let _ = set_affinity(tid, &[server_cpu]);
        }
        Ok(())
    }

    /// Undo [`Placement::pin`]: the client and `server` may run anywhere again.
    pub fn unpin(self, server: u32) -> anyhow::Result<()> {
        if self == Placement::Os {
            return Ok(());
        }
        let all: Vec<usize> = (0..online_cpus()).collect();
        set_affinity(0, &all).context("unpinning the client")?;
        for tid in threads(server)? {
            let _ = set_affinity(tid, &all);
        }
        Ok(())
    }
}

/// CPUs online (not `available_parallelism`, which shrinks to the calling
/// thread's affinity once it is pinned).
fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

/// Thread ids of process `pid` (Node and Bun run several).
fn threads(pid: u32) -> anyhow::Result<Vec<i32>> {
    let dir = format!("/proc/{pid}/task");
    let mut tids = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {dir}"))? {
        if let Some(tid) = entry?.file_name().to_str().and_then(|s| s.parse().ok()) {
            tids.push(tid);
        }
    }
    Ok(tids)
}

/// `sched_setaffinity(tid, cpus)`; tid 0 is the calling thread.
fn set_affinity(tid: i32, cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET only write inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_setaffinity(tid, std::mem::size_of_val(&set), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
