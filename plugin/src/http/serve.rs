//! Serving the API over TCP with a header-read timeout and a connection cap.
//!
//! Without them (`axum::serve`, used before, had neither) any local user (no
//! secret needed) could hold connections open forever by never finishing
//! their request headers and exhaust the plugin's file descriptors.
//! Here each connection starts in the fast lane (`fast_lane.rs`, which keeps
//! the same header-read timeout) and is driven by hyper's HTTP/1 server with
//! a header-read timeout from the first request the lane hands over; at most
//! [`MAX_CONNECTIONS`] are served at once; past that, new connections are
//! accepted and closed at once (logged).

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::fast_lane::{self, FastLane};
use super::rewind::Rewind;
use super::routes::Api;

/// Time a client has to send its complete request headers (per request,
/// including the wait for the next request on a kept-alive connection).
/// Generous for any real client on loopback.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections served at once. Long-lived SSE readers count too; a handful is
/// normal, so this only bites under abuse.
pub const MAX_CONNECTIONS: usize = 256;

/// How long a closed connection keeps reading (and discarding) what the
/// client still sends, and how much of it.
pub const LINGER: Duration = Duration::from_secs(2);
const LINGER_MAX_BYTES: usize = 1024 * 1024;

/// Accept connections until the task is aborted. Aborting it (dropping this
/// future) also drops every connection task, so open SSE streams never hold
/// up shutdown.
///
/// `fast_lane: false` gives every connection to hyper from its first byte
/// (`channel-plugin http --no-fast-lane`; the tests compare both ways).
pub async fn serve(listener: TcpListener, api: Api, fast_lane: bool) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            // Reap finished connection tasks so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(err) => {
                // EMFILE/ENFILE and the like: the pending connection stays in
                // the backlog; back off instead of spinning on the error.
                tracing::warn!("HTTP accept failed: {err}; retrying in 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(
                %peer,
                limit = MAX_CONNECTIONS,
                "HTTP connection dropped: too many open connections"
            );
            drop(stream);
            continue;
        };
        let service = api.clone();
        connections.spawn(async move {
            let mut stream = stream;
            let read = if fast_lane {
                match fast_lane::serve(&mut stream, &service).await {
                    // The lane answers only complete requests, so nothing
                    // unread can turn this close into a reset.
                    FastLane::Closed => {
                        drop(permit);
                        return;
                    }
                    FastLane::HandOver(read) => read,
                }
            } else {
                Default::default()
            };
            let stream = Rewind::new(read, stream);
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                // Not `pipeline_flush(true)`: it batches pipelined responses
                // (twice the sustained inject rate here) but lost the 413
                // answer to a body over the cap when hyper then closed the
                // connection (security_http's chunked test caught it).
                .serve_connection(TokioIo::new(stream), service);
            match conn.without_shutdown().await {
                Ok(parts) => linger_close(parts.io.into_inner().into_inner()).await,
                // Timeouts of half-open requests land here too.
                Err(err) => tracing::debug!(%peer, "HTTP connection ended with an error: {err}"),
            }
            drop(permit);
        });
    }
}

/// Close a connection without destroying the response just written.
///
/// When the server answers before reading the whole request (a 413 for a
/// body over the cap), the client is still sending. Closing a socket with
/// unread input makes the kernel send a reset, which discards whatever of the
/// response is still in our send queue, and on BSD-derived stacks (macOS)
/// also what the client has received but not read: the caller sees
/// "connection reset" instead of the 413 that says why. So, as nginx and
/// Apache do: send FIN after the response, then read and discard for up to
/// [`LINGER`] (at most [`LINGER_MAX_BYTES`]; after that, just wait out the
/// time without reading, so a flood gains nothing), and close at the peer's
/// end of stream or when the time is up.
async fn linger_close(mut io: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = tokio::time::Instant::now() + LINGER;
    if io.shutdown().await.is_err() {
        return;
    }
    let mut buf = vec![0u8; 16 * 1024];
    let mut drained = 0usize;
    loop {
        match tokio::time::timeout_at(deadline, io.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(n)) => {
                drained += n;
                if drained > LINGER_MAX_BYTES {
                    tokio::time::sleep_until(deadline).await;
                    return;
                }
            }
        }
    }
}
