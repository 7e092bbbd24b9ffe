//! The one stdout writer.
//!
//! Every frame goes through a single task that owns the output, so frames can
//! never interleave. Frames arrive on an unbounded channel; the *bound* on
//! memory is enforced upstream (see `core.rs`): channel pushes are counted in
//! `queued_notifications` and refused when the count reaches the cap, while
//! responses to requests are never refused.

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
    queued_notifications: Arc<AtomicUsize>,
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
                        queued_notifications.fetch_sub(1, Ordering::AcqRel);
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
