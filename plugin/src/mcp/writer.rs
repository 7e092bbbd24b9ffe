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
    /// The writer is in the middle of a batch (between taking its first
    /// frame and the end of its flush), so a new frame waits for that batch,
    /// which may be waiting for a full output to drain.
    pub busy: AtomicBool,
}

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, oneshot};

/// One frame for stdout plus bookkeeping.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub payload: Payload,
    /// Fired once the frame has been flushed to the output.
    pub written: Option<oneshot::Sender<()>>,
    /// Fired when the writer takes the frame; on the one-thread runtime the
    /// waiter runs once the writer next waits, so after the frame is written
    /// or the output is full (see `CoreHandle::push_tracked`).
    pub tried: Option<oneshot::Sender<()>>,
}

#[derive(Debug)]
pub(crate) enum Payload {
    /// A channel notification, serialized when it was accepted (no trailing
    /// newline): its bytes are counted in the [`Backlog`] until written.
    Counted(Vec<u8>),
    /// A response or other frame, serialized here so the request's handler
    /// returns sooner.
    Value(serde_json::Value),
    /// A tool call's result, serialized here from its fields.
    ToolText(super::tools::ToolText),
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
    let mut scratch = Vec::with_capacity(1024);
    loop {
        let Some(mut msg) = rx.recv().await else {
            out.flush().await?;
            return Ok(());
        };
        backlog.busy.store(true, Ordering::Release);
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
                    // Told now, it runs once this task next waits: after the
                    // frame is written, or once the output is full.
                    if let Some(tried) = frame.tried {
                        let _ = tried.send(());
                    }
                    match &frame.payload {
                        Payload::Counted(line) => {
                            out.write_all(line).await?;
                            backlog.frames.fetch_sub(1, Ordering::AcqRel);
                            backlog.bytes.fetch_sub(line.len(), Ordering::AcqRel);
                        }
                        Payload::Value(value) => {
                            out.write_all(to_json(&mut scratch, value)).await?;
                        }
                        Payload::ToolText(tool_text) => {
                            out.write_all(to_json(&mut scratch, tool_text)).await?;
                        }
                    }
                    out.write_all(b"\n").await?;
                    acks.extend(frame.written);
                }
            }
            match rx.try_recv() {
                Ok(next) => msg = next,
                Err(_) => break,
            }
        }
        out.flush().await?;
        backlog.busy.store(false, Ordering::Release);
        acks.drain(..).for_each(|ack| {
            let _ = ack.send(());
        });
    }
}

/// `frame` as JSON in `scratch` (reused across frames).
fn to_json<'s>(scratch: &'s mut Vec<u8>, frame: &impl serde::Serialize) -> &'s [u8] {
    scratch.clear();
    // Values and plain structs of strings: nothing here can fail.
    serde_json::to_writer(&mut *scratch, frame).expect("a frame always serializes");
    scratch
}
