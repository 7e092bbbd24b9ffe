//! The one stdout writer.
//!
//! Every frame goes through a single task that owns the output, so frames can
//! never interleave. Frames arrive on an unbounded channel; the *bound* on
//! memory is enforced upstream (see `core.rs`): channel pushes are counted in
//! a [`Backlog`] and refused when it reaches its caps, while
//! responses to requests are never refused.

/// Channel notifications accepted but not yet written: how many, and their
/// bytes (held ones included in `bytes`). Shared by `push` and the writer.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    pub frames: AtomicUsize,
    pub bytes: AtomicUsize,
}

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, oneshot};

/// One serialized frame (no trailing newline) plus bookkeeping.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub line: Vec<u8>,
    /// Counted against the notification cap; decremented once written.
    pub counted: bool,
    /// Fired once the frame has been flushed to the output.
    pub written: Option<oneshot::Sender<()>>,
}

#[derive(Debug)]
pub(crate) enum WriterMsg {
    Frame(Outgoing),
    /// Flush what is queued before this and stop.
    Close,
}

pub(crate) async fn run_writer<W: AsyncWrite + Unpin>(
    output: W,
    mut rx: mpsc::UnboundedReceiver<WriterMsg>,
    backlog: Arc<Backlog>,
) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(64 * 1024, output);
    let mut acks: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let Some(mut msg) = rx.recv().await else {
            out.flush().await?;
            return Ok(());
        };
        // Batch whatever is already queued into one flush.
        loop {
            match msg {
                WriterMsg::Close => {
                    out.flush().await?;
                    acks.drain(..).for_each(|ack| {
                        let _ = ack.send(());
                    });
                    return Ok(());
                }
                WriterMsg::Frame(frame) => {
                    out.write_all(&frame.line).await?;
                    out.write_all(b"\n").await?;
                    if frame.counted {
                        backlog.frames.fetch_sub(1, Ordering::AcqRel);
                        backlog.bytes.fetch_sub(frame.line.len(), Ordering::AcqRel);
                    }
                    acks.extend(frame.written);
                }
            }
            match rx.try_recv() {
                Ok(next) => msg = next,
                Err(_) => break,
            }
        }
        out.flush().await?;
        acks.drain(..).for_each(|ack| {
            let _ = ack.send(());
        });
    }
}
