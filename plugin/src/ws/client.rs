//! The connection task: connect out to the bridge, say `hello`, move frames
//! both ways, and reconnect forever (with backoff) until the plugin shuts down.
//!
//! One connection at a time. Per connection: `hello` first, then what the
//! [`Outbox`](super::outbox::Outbox) holds, in order, in batches of at most
//! 16 frames, each followed by a ping carrying the id of its last frame; the
//! pong confirms delivery (see the outbox docs for the guarantee). At most 64
//! frames are unconfirmed at a time, so a bridge that dies mid-stream has
//! confirmed most of what it read and a backlog always drains. Reads are
//! served between batches. A keepalive ping goes out every `ping_interval`;
//! no pong for two intervals means the link is
//! dead even if TCP has not noticed, so we drop it and reconnect.
//!
//! Inbound size: tungstenite caps one message (and one frame) at
//! [`MAX_INBOUND_MESSAGE_BYTES`] (2 MiB). A message up to that is read whole and, if over
//! our own 1 MiB limit, refused with an `error` frame on a connection that
//! stays up; a larger one cannot be read at all, so we close with 1009
//! (Message Too Big) and reconnect, like any other lost connection.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::http::header::{HeaderValue, AUTHORIZATION};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::bridge::{Behavior, ChannelEvent, EventId, PushError, VerdictError};

use super::backoff::{Backoff, BackoffPolicy};
use super::frame::{InFrame, OutFrame, MAX_INBOUND_FRAME_BYTES};
use super::outbound::Outbound;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Largest inbound WebSocket message, and frame, tungstenite will buffer for
/// us; its defaults (64 MiB message, 16 MiB frame) let a hostile or broken
/// bridge make the plugin hold 64 MiB before [`InFrame::parse`] refuses
/// anything over [`MAX_INBOUND_FRAME_BYTES`] (1 MiB). Twice that limit, so
/// a frame a little over it (a bridge that miscounts, a long event) still
/// arrives whole and gets a clear `error` frame while the connection stays
/// up. Past this, tungstenite stops at the frame header (or at the fragment
/// that crosses it) and the connection is closed with 1009: see
/// `close_too_big`. Peak buffering for one message is about twice this
/// (the frame being read plus the fragments before it).
pub const MAX_INBOUND_MESSAGE_BYTES: usize = 2 * MAX_INBOUND_FRAME_BYTES;

/// The tungstenite settings of every bridge connection.
pub fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_INBOUND_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_INBOUND_MESSAGE_BYTES))
}

/// What the connection task needs from the MCP core. Implemented by
/// [`crate::mcp::CoreHandle`]; tests use a recording fake.
pub trait CoreLink: Send + Sync + 'static {
    fn push(&self, event: ChannelEvent) -> Result<EventId, PushError>;
    fn permission_verdict(&self, request_id: &str, behavior: Behavior) -> Result<(), VerdictError>;
}

impl CoreLink for crate::mcp::CoreHandle {
    fn push(&self, event: ChannelEvent) -> Result<EventId, PushError> {
        crate::mcp::CoreHandle::push(self, event)
    }
    fn permission_verdict(&self, request_id: &str, behavior: Behavior) -> Result<(), VerdictError> {
        crate::mcp::CoreHandle::permission_verdict(self, request_id, behavior)
    }
}

/// Everything the task needs to know, resolved from flags and env.
#[derive(Clone)]
pub struct ClientConfig {
    /// `ws://` or `wss://`.
    pub url: String,
    /// Sent as `Authorization: Bearer …` on the upgrade request. Never logged.
    pub token: Option<String>,
    /// The `hello` frame (the same on every connection).
    pub hello: OutFrame,
    pub backoff: BackoffPolicy,
    pub ping_interval: Duration,
    /// TLS settings for `wss://` when the operator added a CA (`--ca-file`);
    /// `None`: tokio-tungstenite's default (the webpki roots only).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Cap on TCP + TLS + upgrade handshake.
    pub connect_timeout: Duration,
    /// On shutdown, how long writing what is still pending plus the Close
    /// frame may take (a bridge that stopped reading must not hold us).
    pub close_flush_timeout: Duration,
    /// After the Close frame, how long to wait for the bridge's answer (and
    /// the pongs that confirm the last frames, which come before it).
    pub close_reply_timeout: Duration,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("url", &redact_url(&self.url))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("backoff", &self.backoff)
            .field("ping_interval", &self.ping_interval)
            .finish_non_exhaustive()
    }
}

/// Log form of the URL: no query string and no user-info
/// (`ws://user:password@host`), either may carry credentials.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, _)) => (base, "?…"),
        None => (url, ""),
    };
    let base = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://…@{host}{path}"),
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    format!("{base}{query}")
}

/// Why one connection ended.
#[derive(Debug)]
enum Ended {
    Shutdown,
    Lost(String),
}

/// Run until `shutdown` turns true. Never returns early because the bridge
/// is down: it keeps retrying, and the MCP side keeps working meanwhile.
pub async fn run(
    config: ClientConfig,
    outbound: Arc<Outbound>,
    core: Arc<dyn CoreLink>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(config.backoff);
    let url = redact_url(&config.url);
    let mut failures_in_a_row = 0u32;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let connected = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            result = connect(&config) => result,
        };
        match connected {
            Ok(socket) => {
                failures_in_a_row = 0;
                tracing::info!(%url, "connected to the bridge");
                let up_since = Instant::now();
                let ended = drive(socket, &config, &outbound, core.as_ref(), &mut shutdown).await;
                let requeued = outbound.lock().connection_lost();
                backoff.connection_ended(up_since.elapsed());
                match ended {
                    Ended::Shutdown => break,
                    Ended::Lost(why) => tracing::warn!(
                        %url,
                        requeued,
                        up_ms = up_since.elapsed().as_millis() as u64,
                        "bridge connection lost: {why}"
                    ),
                }
            }
            Err(why) => {
                failures_in_a_row += 1;
                tracing::warn!(%url, attempt = failures_in_a_row, "cannot connect to the bridge: {why}");
            }
        }
        let ceiling = backoff.ceiling();
        let delay = backoff.next_delay(&mut rand::rng());
        let waiting = outbound.lock().len();
        tracing::info!(
            %url,
            delay_ms = delay.as_millis() as u64,
            ceiling_ms = ceiling.as_millis() as u64,
            attempt = backoff.attempt(),
            waiting,
            "reconnecting to the bridge in {} ms",
            delay.as_millis()
        );
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    report_undelivered(&outbound.lock());
}

/// The exit report: say exactly which frames the bridge never confirmed
/// (replies by `seq`, permission requests by `request_id`), and whether it
/// may have them anyway, so an operator can match them against the bridge.
fn report_undelivered(outbox: &super::outbox::Outbox) {
    use super::outbox::describe;
    let undelivered = outbox.undelivered();
    if undelivered.is_empty() {
        tracing::info!("bridge client stopped; the bridge confirmed every frame");
        return;
    }
    let mut parts = Vec::new();
    if !undelivered.never_sent.is_empty() {
        parts.push(format!("never sent: {}", describe(&undelivered.never_sent)));
    }
    if !undelivered.unconfirmed.is_empty() {
        parts.push(format!(
            "sent but not confirmed (the bridge may or may not have them): {}",
            describe(&undelivered.unconfirmed)
        ));
    }
    tracing::warn!(
        frames = outbox.len(),
        bytes = outbox.bytes(),
        "bridge client stopped; undelivered at exit, dropped: {}",
        parts.join("; ")
    );
}

async fn connect(config: &ClientConfig) -> Result<Socket, String> {
    let mut request = config
        .url
        .as_str()
        .into_client_request()
        .map_err(|err| format!("bad bridge URL: {err}"))?;
    if let Some(token) = &config.token {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            "the token contains characters not allowed in an HTTP header".to_string()
        })?;
        value.set_sensitive(true);
        request.headers_mut().insert(AUTHORIZATION, value);
    }
    match tokio::time::timeout(
        config.connect_timeout,
        // No Nagle: frames here are small and latency-bound (a reply, a
        // ping, the close on shutdown); waiting for the previous segment's
        // ACK would hold them up to the peer's delayed-ACK timer (~40 ms).
        tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(websocket_config()),
            true,
            config.tls.clone().map(tokio_tungstenite::Connector::Rustls),
        ),
    )
    .await
    {
        Ok(Ok((socket, _response))) => Ok(socket),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!(
            "no WebSocket handshake within {} ms",
            config.connect_timeout.as_millis()
        )),
    }
}

/// Frames written between two confirmation pings: small enough that a
/// bridge which dies mid-stream has still confirmed most of what it read.
const BATCH_FRAMES: usize = 16;
/// Written-but-unconfirmed frames allowed on one connection. Without a
/// window, a large backlog would be written in one go and a bridge that dies
/// before the final ping would confirm nothing: every reconnect would resend
/// everything, and a bridge that keeps dying would never see progress.
const WINDOW_FRAMES: usize = 64;
/// After a failed write, how long to keep reading what the bridge had
/// already sent (pongs that confirm frames, inbound events).
const DRAIN_AFTER_WRITE_ERROR: Duration = Duration::from_millis(500);

/// One connection, from `hello` to its end.
async fn drive(
    socket: Socket,
    config: &ClientConfig,
    outbound: &Outbound,
    core: &dyn CoreLink,
    shutdown: &mut watch::Receiver<bool>,
) -> Ended {
    let (mut sink, mut stream) = socket.split();
    if let Err(err) = sink.send(Message::text(config.hello.to_json())).await {
        return Ended::Lost(format!("sending hello failed: {err}"));
    }
    let waiting = {
        let mut outbox = outbound.lock();
        outbox.connected();
        outbox.len()
    };
    tracing::info!(waiting, "hello sent");

    let mut writer = Writer {
        sink: &mut sink,
        last_written: 0,
    };
    let mut ping = tokio::time::interval(config.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await; // the first tick is immediate
    let mut last_pong = Instant::now();

    let why = loop {
        let can_write = outbound.lock().can_write(WINDOW_FRAMES);
        // `biased`: reading comes first, so pongs and inbound frames are
        // handled between write batches; a write batch runs in the handler,
        // never as a branch future, so it cannot be cancelled half-written.
        tokio::select! {
            biased;
            _ = shutdown.changed() => {
                writer.close(outbound, &mut stream, config).await;
                return Ended::Shutdown;
            }
            message = stream.next() => {
                let message = match message {
                    None => break "the bridge closed the TCP connection".to_string(),
                    Some(Err(WsError::Capacity(err))) => {
                        break close_too_big(&mut *writer.sink, err, config.close_flush_timeout).await;
                    }
                    Some(Err(err)) => break format!("read failed: {err}"),
                    Some(Ok(message)) => message,
                };
                if let Message::Close(frame) = message {
                    let why = match frame {
                        Some(f) => format!(
                            "the bridge closed the connection ({} {:?})",
                            u16::from(f.code),
                            f.reason.as_str()
                        ),
                        None => "the bridge closed the connection".to_string(),
                    };
                    // Let tungstenite send the close reply, briefly.
                    let _ = tokio::time::timeout(Duration::from_secs(1), writer.sink.close()).await;
                    break why;
                }
                if let Message::Pong(_) = &message {
                    last_pong = Instant::now();
                }
                if let Some(answer) = writer.on_message(message, outbound, core) {
                    if let Err(err) = writer.send_now(answer).await {
                        writer.drain(&mut stream, outbound, core).await;
                        break err;
                    }
                }
            }
            _ = ping.tick() => {
                let silent = last_pong.elapsed();
                if silent >= config.ping_interval * 2 {
                    break format!(
                        "no pong for {} ms (two ping intervals); the link is dead",
                        silent.as_millis()
                    );
                }
                if let Err(err) = writer.ping().await {
                    writer.drain(&mut stream, outbound, core).await;
                    break err;
                }
            }
            () = std::future::ready(()), if can_write => {
                if let Err(err) = writer.write_batch(outbound, BATCH_FRAMES, WINDOW_FRAMES).await {
                    writer.drain(&mut stream, outbound, core).await;
                    break err;
                }
            }
            // Nothing to write (or the window is full): wait for a new frame.
            () = outbound.stored(), if !can_write => {}
        }
    };
    Ended::Lost(why)
}

struct Writer<'a, S> {
    sink: &'a mut S,
    /// Outbox id of the last frame written on this connection (0: none).
    last_written: u64,
}

impl<S> Writer<'_, S>
where
    S: futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    /// Write up to `batch` pending frames (fewer if the window is nearly
    /// full), then a ping whose pong confirms them.
    async fn write_batch(
        &mut self,
        outbound: &Outbound,
        batch: usize,
        window: usize,
    ) -> Result<(), String> {
        let frames = outbound.lock().take_batch(batch, window);
        self.write_frames(frames).await
    }

    /// Write everything pending, in batches, each followed by a ping (used
    /// on shutdown, where the window does not matter any more).
    async fn write_all(&mut self, outbound: &Outbound) -> Result<(), String> {
        loop {
            let frames = outbound.lock().take_batch(BATCH_FRAMES, usize::MAX);
            if frames.is_empty() {
                return Ok(());
            }
            self.write_frames(frames).await?;
        }
    }

    async fn write_frames(&mut self, frames: Vec<super::outbox::Entry>) -> Result<(), String> {
        let Some(last) = frames.last() else {
            return Ok(());
        };
        let last_id = last.id;
        for entry in frames {
            self.sink
                .feed(Message::text(entry.text))
                .await
                .map_err(|err| format!("write failed: {err}"))?;
        }
        self.sink
            .flush()
            .await
            .map_err(|err| format!("write failed: {err}"))?;
        self.last_written = last_id;
        tracing::debug!(last_id, "frames written; asking for a pong to confirm");
        self.ping().await
    }

    /// Handle one message other than Close; returns the error frame to
    /// answer with, if any.
    fn on_message(
        &mut self,
        message: Message,
        outbound: &Outbound,
        core: &dyn CoreLink,
    ) -> Option<OutFrame> {
        match message {
            Message::Text(text) => handle_text(text.as_str(), core),
            Message::Binary(data) => {
                tracing::warn!(len = data.len(), "binary frame from the bridge refused");
                Some(OutFrame::error(
                    "binary frames are not supported; send JSON text frames",
                ))
            }
            Message::Pong(payload) => {
                self.on_pong(&payload, outbound);
                None
            }
            // tungstenite queues the pong itself and flushes it on the next read.
            Message::Ping(_) | Message::Close(_) | Message::Frame(_) => None,
        }
    }

    /// A write failed: the bridge may still have sent things before it went
    /// away (pongs confirming frames, inbound events). Read what is already
    /// here, briefly, so confirmed frames are not sent again and events are
    /// not lost.
    async fn drain<R>(&mut self, stream: &mut R, outbound: &Outbound, core: &dyn CoreLink)
    where
        R: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
            + Unpin,
    {
        let _ = tokio::time::timeout(DRAIN_AFTER_WRITE_ERROR, async {
            while let Some(read) = stream.next().await {
                let message = match read {
                    Ok(message) => message,
                    Err(WsError::Capacity(err)) => {
                        // The connection is already lost; say what was refused.
                        tracing::warn!("{}; not read", too_big(&err));
                        break;
                    }
                    Err(_) => break,
                };
                if let Message::Close(_) = message {
                    break;
                }
                if let Some(OutFrame::Error { reason }) = self.on_message(message, outbound, core) {
                    tracing::warn!("cannot answer the bridge (connection lost): {reason}");
                }
            }
        })
        .await;
    }

    async fn ping(&mut self) -> Result<(), String> {
        let payload = Bytes::copy_from_slice(&self.last_written.to_be_bytes());
        self.sink
            .send(Message::Ping(payload))
            .await
            .map_err(|err| format!("ping failed: {err}"))
    }

    fn on_pong(&mut self, payload: &[u8], outbound: &Outbound) {
        let Ok(bytes) = <[u8; 8]>::try_from(payload) else {
            tracing::debug!(
                len = payload.len(),
                "pong without our payload (unsolicited?)"
            );
            return;
        };
        let id = u64::from_be_bytes(bytes);
        // Only frames actually written on this connection can be confirmed.
        if id == 0 || id > self.last_written {
            return;
        }
        let released = outbound.lock().confirm(id);
        if released > 0 {
            tracing::debug!(released, up_to = id, "bridge confirmed frames");
        }
    }

    /// A direct answer on this connection (error frames): not queued, since
    /// it only makes sense to the peer that sent the frame it answers.
    async fn send_now(&mut self, frame: OutFrame) -> Result<(), String> {
        self.sink
            .send(Message::text(frame.to_json()))
            .await
            .map_err(|err| format!("write failed: {err}"))
    }

    /// Orderly end, on a budget: Claude Code sends SIGTERM 100 ms after
    /// SIGINT, so write what is still pending (each batch with its
    /// confirming ping), send the Close frame, and wait only briefly for the
    /// bridge's answer. Whatever the bridge has not confirmed by then stays
    /// in the outbox and is named in the exit report.
    async fn close<R>(&mut self, outbound: &Outbound, stream: &mut R, config: &ClientConfig)
    where
        R: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
            + Unpin,
    {
        let flush = async {
            self.write_all(outbound).await?;
            let frame = CloseFrame {
                code: CloseCode::Normal,
                reason: "plugin shutting down".into(),
            };
            self.sink
                .send(Message::Close(Some(frame)))
                .await
                .map_err(|err| format!("close failed: {err}"))
        };
        match tokio::time::timeout(config.close_flush_timeout, flush).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!("closing the bridge connection: {err}");
                return;
            }
            Err(_) => {
                tracing::warn!(
                    "writing the last frames and the close took over {} ms (is the bridge reading?); closing without them",
                    config.close_flush_timeout.as_millis()
                );
                return;
            }
        }
        // Read until the bridge answers the close; pongs still confirm.
        let answer = async {
            while let Some(Ok(message)) = stream.next().await {
                match message {
                    Message::Pong(payload) => self.on_pong(&payload, outbound),
                    Message::Close(_) => return true,
                    Message::Text(text) => tracing::warn!(
                        len = text.len(),
                        "frame from the bridge after the close was sent: not handled (shutting down)"
                    ),
                    _ => {}
                }
            }
            false
        };
        match tokio::time::timeout(config.close_reply_timeout, answer).await {
            Ok(true) => tracing::info!("bridge connection closed"),
            Ok(false) => tracing::info!(
                "bridge connection closed (the bridge dropped it without answering the close)"
            ),
            Err(_) => tracing::info!(
                "the bridge did not answer the close within {} ms; not waiting longer",
                config.close_reply_timeout.as_millis()
            ),
        }
    }
}

/// What tungstenite's capacity error means here, naming our limits.
fn too_big(err: &CapacityError) -> String {
    match err {
        CapacityError::MessageTooLong { size, max_size } => format!(
            "inbound message of at least {size} bytes exceeds the {max_size} byte WebSocket \
             message limit (frames over {MAX_INBOUND_FRAME_BYTES} bytes are refused with an \
             error frame; this one is too large to read)"
        ),
        other => format!("inbound message refused by the WebSocket layer: {other}"),
    }
}

/// tungstenite refused a message over [`MAX_INBOUND_MESSAGE_BYTES`] and
/// stopped reading mid-message: this connection cannot be read any further,
/// so it ends. Say so loudly, tell the bridge why with a Close 1009 (Message
/// Too Big) on a short budget (the bridge may be too busy writing to read),
/// and return the reason; the caller reconnects as for any lost connection,
/// and unconfirmed frames are resent on the next one.
async fn close_too_big<S>(sink: &mut S, err: CapacityError, budget: Duration) -> String
where
    S: futures_util::Sink<Message, Error = WsError> + Unpin,
{
    let why = too_big(&err);
    tracing::warn!(
        limit = MAX_INBOUND_MESSAGE_BYTES,
        "{why}; closing the connection with 1009 (Message Too Big) and reconnecting"
    );
    let frame = CloseFrame {
        code: CloseCode::Size,
        reason: close_reason(&err).into(),
    };
    match tokio::time::timeout(budget, sink.send(Message::Close(Some(frame)))).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!("sending the 1009 close failed: {err}"),
        Err(_) => tracing::warn!(
            "sending the 1009 close took over {} ms (is the bridge reading?); dropping the connection",
            budget.as_millis()
        ),
    }
    why
}

/// The reason in the 1009 close: at most 123 bytes (it shares the 125-byte
/// payload of a control frame with the code).
fn close_reason(err: &CapacityError) -> String {
    match err {
        CapacityError::MessageTooLong { size, max_size } => {
            format!("message of at least {size} bytes exceeds the {max_size} byte limit")
        }
        _ => "message too big".to_string(),
    }
}

/// Handle one text frame; returns the error frame to answer with, if any.
fn handle_text(text: &str, core: &dyn CoreLink) -> Option<OutFrame> {
    match InFrame::parse(text) {
        Err(err) => {
            tracing::warn!(len = text.len(), "inbound frame refused: {err}");
            Some(OutFrame::error(err.0))
        }
        Ok(InFrame::Inbound(event)) => {
            let chars = event.content.chars().count();
            // Only for the per-event debug line: not built when it is off.
            let keys = tracing::enabled!(tracing::Level::DEBUG).then(|| {
                event
                    .meta
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            });
            match core.push(event) {
                Ok(id) => {
                    tracing::debug!(
                        id,
                        chars,
                        meta = keys.as_deref().unwrap_or(""),
                        "inbound event pushed to Claude Code"
                    );
                    None
                }
                Err(err) => {
                    tracing::warn!(chars, "inbound event refused by the core: {err}");
                    Some(OutFrame::error(format!("event not delivered: {err}")))
                }
            }
        }
        Ok(InFrame::Permission {
            request_id,
            behavior,
        }) => match core.permission_verdict(&request_id, behavior) {
            Ok(()) => {
                tracing::info!(%request_id, %behavior, "permission verdict from the bridge relayed");
                None
            }
            Err(err) => {
                tracing::warn!(%request_id, "permission verdict refused: {err}");
                Some(OutFrame::error(format!(
                    "verdict for {request_id:?} not relayed: {err}"
                )))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A core that records pushes and answers with scripted results.
    struct FakeCore {
        pushed: Mutex<Vec<ChannelEvent>>,
        push_result: Result<EventId, PushError>,
        verdict_result: Result<(), VerdictError>,
    }

    impl CoreLink for FakeCore {
        fn push(&self, event: ChannelEvent) -> Result<EventId, PushError> {
            self.pushed.lock().unwrap().push(event);
            self.push_result.clone()
        }
        fn permission_verdict(&self, _: &str, _: Behavior) -> Result<(), VerdictError> {
            self.verdict_result.clone()
        }
    }

    fn core(push: Result<EventId, PushError>, verdict: Result<(), VerdictError>) -> FakeCore {
        FakeCore {
            pushed: Mutex::default(),
            push_result: push,
            verdict_result: verdict,
        }
    }

    fn reason(frame: Option<OutFrame>) -> String {
        match frame {
            Some(OutFrame::Error { reason }) => reason,
            other => panic!("expected an error frame, got {other:?}"),
        }
    }

    #[test]
    fn accepted_inbound_needs_no_answer() {
        let c = core(Ok(1), Ok(()));
        assert_eq!(
            handle_text(r#"{"type":"inbound","content":"hi"}"#, &c),
            None
        );
        assert_eq!(c.pushed.lock().unwrap().len(), 1);
    }

    #[test]
    fn busy_core_is_answered_with_an_error_frame() {
        let c = core(
            Err(PushError::Busy {
                queued: 4096,
                retry_after_secs: 1,
            }),
            Ok(()),
        );
        let r = reason(handle_text(r#"{"type":"inbound","content":"hi"}"#, &c));
        assert!(
            r.contains("not delivered") && r.contains("queue is full"),
            "{r}"
        );
        let c = core(Err(PushError::ShuttingDown), Ok(()));
        let r = reason(handle_text(r#"{"type":"inbound","content":"hi"}"#, &c));
        assert!(r.contains("shutting down"), "{r}");
    }

    #[test]
    fn refused_verdicts_are_answered_with_the_reason() {
        let frame = r#"{"type":"permission","request_id":"abcde","behavior":"allow"}"#;
        let c = core(Ok(1), Err(VerdictError::AlreadyAnswered("abcde".into())));
        let r = reason(handle_text(frame, &c));
        assert!(r.contains("abcde") && r.contains("already answered"), "{r}");
        let c = core(Ok(1), Ok(()));
        assert_eq!(handle_text(frame, &c), None);
    }

    #[test]
    fn bad_meta_never_reaches_the_core() {
        let c = core(Ok(1), Ok(()));
        let r = reason(handle_text(
            r#"{"type":"inbound","content":"x","meta":{"a-b":"1"}}"#,
            &c,
        ));
        assert!(r.contains("a-b"), "{r}");
        assert!(c.pushed.lock().unwrap().is_empty());
    }

    #[test]
    fn tungstenite_buffers_little_more_than_we_accept() {
        let config = websocket_config();
        for cap in [config.max_message_size, config.max_frame_size] {
            let cap = cap.expect("a cap, not unlimited");
            // Above our refusal limit, so frames just over it still get an
            // error frame; far below tungstenite's 64 MiB default.
            assert!(cap > MAX_INBOUND_FRAME_BYTES, "{cap}");
            assert!(cap <= 4 * MAX_INBOUND_FRAME_BYTES, "{cap}");
        }
    }

    #[test]
    fn the_1009_reason_fits_a_close_frame_and_names_the_limit() {
        let err = CapacityError::MessageTooLong {
            size: usize::MAX,
            max_size: MAX_INBOUND_MESSAGE_BYTES,
        };
        let reason = close_reason(&err);
        assert!(reason.len() <= 123, "{} bytes: {reason}", reason.len());
        assert!(reason.contains("2097152 byte limit"), "{reason}");
        let logged = too_big(&err);
        assert!(
            logged.contains("2097152 byte") && logged.contains("1048576 bytes"),
            "{logged}"
        );
    }

    #[test]
    fn urls_are_logged_without_their_query() {
        assert_eq!(redact_url("wss://h/b?token=x"), "wss://h/b?…");
        assert_eq!(redact_url("ws://u:pw@h:1/b?k=v"), "ws://…@h:1/b?…");
        assert_eq!(redact_url("ws://u:pw@h"), "ws://…@h");
        assert_eq!(redact_url("ws://h/p@x"), "ws://h/p@x");
        assert_eq!(redact_url("ws://h/b"), "ws://h/b");
    }
}
