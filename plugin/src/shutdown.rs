//! Process-level shutdown: the signals Claude Code (or a terminal) uses to
//! stop a stdio server, and a clean exit that does not wait for stdin.
//!
//! Claude Code sends SIGINT, then SIGTERM 100 ms later, then SIGKILL; stdin
//! closing is the other (and most reliable) death signal, handled by the core
//! as end of input. Install [`Signals`] before any slow start-up work so an
//! early signal is not lost.

use tokio::signal::unix::{signal, Signal, SignalKind};

/// SIGINT, SIGTERM and SIGHUP, installed together.
pub struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Wait for the first of the signals; returns its name (already logged).
    pub async fn recv(&mut self) -> &'static str {
        let name = tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        };
        tracing::info!("received {name}; shutting down");
        name
    }

    /// A future for [`crate::mcp::Core::serve`]'s `shutdown` argument.
    ///
    /// The signals are watched by a task of their own: the session polls its
    /// shutdown future on every stdin line, and polling three signal
    /// receivers there cost about 2,300 instructions per line; a join
    /// handle costs a few dozen.
    pub fn wait(mut self) -> impl std::future::Future<Output = ()> {
        let watcher = tokio::spawn(async move {
            self.recv().await;
        });
        async move {
            // An error would be a panic in `recv`: shut down all the same.
            let _ = watcher.await;
        }
    }
}
