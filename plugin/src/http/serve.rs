//! Serving the router over TCP with limits `axum::serve` does not have.
//!
//! `axum::serve` has no header-read timeout and no connection cap, so any
//! local user (no secret needed) could hold connections open forever by never
//! finishing their request headers and exhaust the plugin's file descriptors.
//! Here each connection is driven by hyper's HTTP/1 server with a
//! header-read timeout, and at most [`MAX_CONNECTIONS`] are served at once;
//! past that, new connections are accepted and closed at once (logged).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Time a client has to send its complete request headers (per request,
/// including the wait for the next request on a kept-alive connection).
/// Generous for any real client on loopback.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections served at once. Long-lived SSE readers count too; a handful is
/// normal, so this only bites under abuse.
pub const MAX_CONNECTIONS: usize = 256;

/// Accept connections until the task is aborted. Aborting it (dropping this
/// future) also drops every connection task, so open SSE streams never hold
/// up shutdown.
pub async fn serve(listener: TcpListener, app: Router) {
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
        let service = TowerToHyperService::new(app.clone());
        connections.spawn(async move {
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                // A client that pipelines injects gets its 202s in one write
                // per batch instead of one per request: twice the sustained
                // rate in benches/RESULTS.md (hyper calls the option
                // experimental; the throughput run and load_inject check
                // every response arrives).
                .pipeline_flush(true)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(err) = conn.await {
                // Timeouts of half-open requests land here too.
                tracing::debug!(%peer, "HTTP connection ended with an error: {err}");
            }
            drop(permit);
        });
    }
}
