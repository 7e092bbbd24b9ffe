//! The MCP session: [`Core`] runs it over any byte streams, [`CoreHandle`] is
//! how bridges push events and relay verdicts into it.
//!
//! Shape (after lsp-server): the core knows nothing about stdio, so tests and
//! benches run it in memory (see [`super::memory`]); `main` hands it
//! `tokio::io::stdin()`/`stdout()`.
//!
//! Readiness: Claude Code installs its channel handler only after it has
//! listed tools, and drops pushes that arrive earlier. So pushes are *held*
//! until `notifications/initialized` was received AND the `tools/list`
//! response was flushed (plus a short settle delay, because a client may
//! process a notification that shares a read with the response before the
//! code awaiting the response runs). A client that never lists tools gets the
//! held events `ready_fallback` after `initialized`. Held events are flushed
//! under the same lock `push` takes, so order is kept across the boundary.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::sync::{mpsc, oneshot};

use super::codec::{Frame, FrameReader, DEFAULT_MAX_LINE_BYTES};
use super::jsonrpc::{self, error_frame, notification_frame};
use super::meta::{has_repeated_key, key_is_valid};
use super::permissions::Permissions;
use super::writer::{run_writer, Backlog, Outgoing, Payload, WriterMsg};
use crate::bridge::{Behavior, Bridge, ChannelEvent, EventId, PushError, VerdictError};

/// Protocol versions we echo back when the client asks for them.
pub const SUPPORTED_PROTOCOL_VERSIONS: [&str; 5] = [
    "2024-10-07",
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
];
/// What we answer for any other requested version. Never 2026-07-28: that
/// revision has no unsolicited-notification path, so channels would be off.
pub const FALLBACK_PROTOCOL_VERSION: &str = "2025-11-25";

pub const CHANNEL_METHOD: &str = "notifications/claude/channel";
pub const PERMISSION_REQUEST_METHOD: &str = "notifications/claude/channel/permission_request";
pub const PERMISSION_VERDICT_METHOD: &str = "notifications/claude/channel/permission";

/// How a [`Core`] behaves. Build with [`CoreConfig::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Server name as the user configured it (shown in the instructions).
    pub server_name: String,
    /// Declare `claude/channel/permission` and forward permission requests.
    pub permission_relay: bool,
    /// Cap on channel notifications queued for stdout but not yet written.
    pub max_queued: usize,
    /// Cap on pushes held before the session is ready.
    pub max_held: usize,
    /// Cap on the bytes of held plus queued channel notifications (an event
    /// may be up to ~1 MiB, so a count alone would not bound memory).
    pub max_backlog_bytes: usize,
    /// Delay between flushing the `tools/list` response and releasing pushes.
    pub ready_settle: Duration,
    /// Release held pushes this long after `initialized` if no `tools/list` came.
    pub ready_fallback: Duration,
    /// Cap on one incoming line.
    pub max_line_bytes: usize,
}

impl CoreConfig {
    pub fn new(server_name: impl Into<String>) -> Self {
        Self {
            server_name: server_name.into(),
            permission_relay: false,
            max_queued: 4096,
            max_held: 4096,
            max_backlog_bytes: 32 * 1024 * 1024,
            ready_settle: Duration::from_millis(100),
            ready_fallback: Duration::from_secs(1),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// A snapshot of the session, for `/status` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreStatus {
    /// `notifications/initialized` was received.
    pub initialized: bool,
    /// Pushes go straight to stdout (no longer held).
    pub ready: bool,
    /// Pushes held until ready.
    pub held: usize,
    /// Channel notifications queued for stdout, not yet written.
    pub queued: usize,
    pub pending_permissions: usize,
    /// `clientInfo.name`/`version` from `initialize`, if any.
    pub client: Option<String>,
}

/// Why [`Core::serve`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeEnd {
    /// The input reached end of file (Claude Code went away): the usual end.
    InputClosed,
    /// Writing the output failed (the reader is gone).
    OutputClosed,
    /// The shutdown future completed (a signal, or the bridge asked).
    Shutdown,
}

/// The session, before it runs. Consumed by [`Core::serve`].
pub struct Core {
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<WriterMsg>,
}

/// Bridges' side of the core. Cheap to clone; every method is synchronous and
/// never blocks on I/O.
#[derive(Clone)]
pub struct CoreHandle {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub config: CoreConfig,
    tx: mpsc::UnboundedSender<WriterMsg>,
    /// Channel notifications accepted and not yet written.
    backlog: Arc<Backlog>,
    state: Mutex<State>,
}

#[derive(Default)]
pub(crate) struct State {
    pub initialized: bool,
    pub tools_listed: bool,
    pub ready: bool,
    pub shutting_down: bool,
    pub next_event_id: EventId,
    pub held: VecDeque<Vec<u8>>,
    pub permissions: Permissions,
    pub bridge: Option<Arc<dyn Bridge>>,
    pub client: Option<String>,
}

impl Core {
    pub fn new(config: CoreConfig) -> (Core, CoreHandle) {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            config,
            tx,
            backlog: Arc::new(Backlog::default()),
            state: Mutex::new(State::default()),
        });
        (
            Core {
                shared: shared.clone(),
                rx,
            },
            CoreHandle { shared },
        )
    }

    /// Run the session until the input ends, the output fails, or `shutdown`
    /// completes. Bad input never ends it. On return, pushes are refused with
    /// [`PushError::ShuttingDown`] and queued frames were flushed (bounded wait).
    pub async fn serve<R, W, S>(
        self,
        input: R,
        output: W,
        bridge: Arc<dyn Bridge>,
        shutdown: S,
    ) -> ServeEnd
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin + Send + 'static,
        S: Future<Output = ()>,
    {
        let Core { shared, rx } = self;
        shared.lock().bridge = Some(bridge);
        let mut writer = tokio::spawn(run_writer(output, rx, shared.backlog.clone()));
        let mut writer_done = false;
        let mut reader = FrameReader::new(BufReader::new(input), shared.config.max_line_bytes);
        tokio::pin!(shutdown);
        let end = loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break ServeEnd::Shutdown,
                result = &mut writer => {
                    writer_done = true;
                    match result {
                        Ok(Ok(())) => tracing::warn!("stdout writer stopped"),
                        Ok(Err(err)) => tracing::warn!("writing to stdout failed: {err}"),
                        Err(err) => tracing::error!("stdout writer task failed: {err}"),
                    }
                    break ServeEnd::OutputClosed;
                }
                frame = reader.next_frame() => match frame {
                    Ok(Some(Frame::Line(line))) => shared.handle_line(line),
                    Ok(Some(Frame::TooLong { len })) => {
                        tracing::warn!(
                            len, cap = shared.config.max_line_bytes,
                            "incoming message over the size cap; discarded"
                        );
                        shared.send(
                            error_frame(
                                &Value::Null,
                                jsonrpc::INVALID_REQUEST,
                                format!(
                                    "message of {len} bytes exceeds the {} byte limit; discarded",
                                    shared.config.max_line_bytes
                                ),
                            ),
                            None,
                        );
                    }
                    Ok(None) => break ServeEnd::InputClosed,
                    Err(err) => {
                        tracing::warn!("reading stdin failed: {err}; ending the session");
                        break ServeEnd::InputClosed;
                    }
                },
            }
        };
        {
            let mut state = shared.lock();
            state.shutting_down = true;
            if !state.held.is_empty() {
                tracing::warn!(
                    held = state.held.len(),
                    "session ended before it became ready; held channel events were not delivered"
                );
                let bytes: usize = state.held.drain(..).map(|line| line.len()).sum();
                shared.backlog.bytes.fetch_sub(bytes, Ordering::AcqRel);
            }
        }
        if !writer_done {
            let _ = shared.tx.send(WriterMsg::Close);
            match tokio::time::timeout(Duration::from_millis(500), &mut writer).await {
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!("stdout did not drain within 500 ms; unwritten frames dropped");
                    writer.abort();
                }
            }
        }
        tracing::info!(?end, "MCP session ended");
        end
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock must not wedge the session.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queue a frame that is not counted against the notification cap
    /// (responses, verdicts, errors). The writer serializes it: work woken by
    /// the request (a reply's SSE event, say) goes out first.
    pub(crate) fn send(&self, frame: Value, written: Option<oneshot::Sender<()>>) {
        self.send_uncounted(Payload::Value(frame), written);
    }

    /// Queue a tool call's result; the writer serializes it.
    pub(crate) fn send_tool_text(&self, answer: super::tools::ToolText) {
        self.send_uncounted(Payload::ToolText(answer), None);
    }

    fn send_uncounted(&self, payload: Payload, written: Option<oneshot::Sender<()>>) {
        if self
            .tx
            .send(WriterMsg::Frame(Outgoing {
                payload,
                written,
                tried: None,
            }))
            .is_err()
        {
            tracing::debug!("stdout writer is gone; frame not sent");
        }
    }

    /// Hand an accepted channel notification to the writer. Its bytes are
    /// already in `backlog.bytes` (added when `push` accepted it).
    fn send_counted(&self, line: Vec<u8>, tried: Option<oneshot::Sender<()>>) {
        self.backlog.frames.fetch_add(1, Ordering::AcqRel);
        let len = line.len();
        let msg = WriterMsg::Frame(Outgoing {
            payload: Payload::Counted(line),
            written: None,
            tried,
        });
        if self.tx.send(msg).is_err() {
            self.backlog.frames.fetch_sub(1, Ordering::AcqRel);
            self.backlog.bytes.fetch_sub(len, Ordering::AcqRel);
            tracing::debug!("stdout writer is gone; channel event not sent");
        }
    }

    /// `notifications/initialized` arrived.
    pub(crate) fn on_initialized(self: &Arc<Self>) {
        let listed = {
            let mut state = self.lock();
            if state.initialized {
                tracing::debug!("duplicate notifications/initialized ignored");
                return;
            }
            state.initialized = true;
            state.tools_listed
        };
        if listed {
            self.schedule_ready(self.config.ready_settle, "initialized after tools/list");
        } else {
            self.schedule_ready(
                self.config.ready_fallback,
                "the client did not list tools after initialized",
            );
        }
    }

    /// The `tools/list` response was flushed to the output.
    pub(crate) fn on_tools_listed(self: &Arc<Self>) {
        let initialized = {
            let mut state = self.lock();
            state.tools_listed = true;
            state.initialized
        };
        if initialized {
            self.schedule_ready(self.config.ready_settle, "tools/list answered");
        }
    }

    fn schedule_ready(self: &Arc<Self>, after: Duration, why: &'static str) {
        let shared = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            shared.become_ready(why);
        });
    }

    fn become_ready(&self, why: &str) {
        let mut state = self.lock();
        if state.ready || state.shutting_down {
            return;
        }
        let held = std::mem::take(&mut state.held);
        let count = held.len();
        for line in held {
            self.send_counted(line, None);
        }
        state.ready = true;
        tracing::info!(
            flushed = count,
            "session ready ({why}); channel events now go out"
        );
    }
}

/// `notifications/claude/channel {content, meta}` as JSON bytes (no newline):
/// the same bytes as serializing the frame built as a `serde_json::Value`
/// (same key order), written straight from the borrowed parts into a buffer
/// sized up front. The fixed parts are literal bytes; only the content and
/// the meta keys and values go through serde_json's string escaping. This
/// runs once per event.
fn channel_notification_line(content: &str, meta: &[(String, String)]) -> Vec<u8> {
    const HEAD: &[u8] =
        br#"{"jsonrpc":"2.0","method":"notifications/claude/channel","params":{"content":"#;
    // Exact when nothing needs escaping (the usual case): quotes, `,` `:` `}`.
    let meta_len: usize = meta.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
    let mut out = Vec::with_capacity(HEAD.len() + content.len() + 2 + 9 + meta_len + 2);
    out.extend_from_slice(HEAD);
    push_json_str(&mut out, content);
    if !meta.is_empty() {
        out.extend_from_slice(br#","meta":{"#);
        for (at, (key, value)) in meta.iter().enumerate() {
            if at > 0 {
                out.push(b',');
            }
            push_json_str(&mut out, key);
            out.push(b':');
            push_json_str(&mut out, value);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"}}");
    out
}

/// A JSON string literal, escaped by serde_json.
fn push_json_str(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(&mut *out, text).expect("writing to a Vec cannot fail");
}

impl CoreHandle {
    /// Push an outside event as `notifications/claude/channel`. Held until the
    /// session is ready; refused (never dropped) when the queue is full.
    /// `event.meta` must come from [`super::meta::normalize`].
    pub fn push(&self, event: ChannelEvent) -> Result<EventId, PushError> {
        self.push_inner(event, false).map(|(id, _)| id)
    }

    /// [`CoreHandle::push`], and a signal that fires once the stdout writer
    /// has tried to write the notification (written, or waiting behind a
    /// full pipe); `None` when the event is held for the session to become
    /// ready (nothing will be written now) or the writer is busy (queued
    /// frames, or stdout full: the signal could wait on Claude Code). A caller that answers its own
    /// client after the notification waits for it instead of yielding to the
    /// scheduler, which costs a poll of the I/O driver per event.
    pub fn push_tracked(
        &self,
        event: ChannelEvent,
    ) -> Result<(EventId, Option<oneshot::Receiver<()>>), PushError> {
        self.push_inner(event, true)
    }

    fn push_inner(
        &self,
        event: ChannelEvent,
        track: bool,
    ) -> Result<(EventId, Option<oneshot::Receiver<()>>), PushError> {
        let shared = &self.shared;
        let mut meta = event.meta;
        meta.retain(|(key, _)| {
            let valid = key_is_valid(key);
            if !valid {
                // A bridge bug: meta must be normalized first. Claude Code would
                // drop the key anyway; say so loudly.
                debug_assert!(false, "meta key {key:?} was not validated by the bridge");
                tracing::error!(key, "invalid meta key reached the core; key dropped");
            }
            valid
        });
        if has_repeated_key(&meta) {
            // Also a bridge bug (normalized meta comes from a JSON object): a
            // JSON object keeps one value per key, the last, where the key
            // first appeared.
            tracing::error!("repeated meta key reached the core; the last value is kept");
            let mut first_at = std::collections::HashMap::<String, usize>::new();
            let mut distinct: Vec<(String, String)> = Vec::with_capacity(meta.len());
            for (key, value) in meta {
                match first_at.get(&key) {
                    Some(&at) => distinct[at].1 = value,
                    None => {
                        first_at.insert(key.clone(), distinct.len());
                        distinct.push((key, value));
                    }
                }
            }
            meta = distinct;
        }
        let line = channel_notification_line(&event.content, &meta);
        let mut state = shared.lock();
        if state.shutting_down {
            tracing::warn!("channel event refused: the session is shutting down");
            return Err(PushError::ShuttingDown);
        }
        let backlog_bytes = shared.backlog.bytes.load(Ordering::Acquire);
        let (count, cap, what) = if state.ready {
            (
                shared.backlog.frames.load(Ordering::Acquire),
                shared.config.max_queued,
                "stdout queue is full",
            )
        } else {
            (
                state.held.len(),
                shared.config.max_held,
                "too many events held before the session is ready",
            )
        };
        // One event is always admitted into an empty backlog, whatever its size.
        let over_bytes = count > 0 && backlog_bytes + line.len() > shared.config.max_backlog_bytes;
        if count >= cap || over_bytes {
            let why = if over_bytes {
                "backlog byte budget is spent"
            } else {
                what
            };
            tracing::warn!(
                queued = count,
                backlog_bytes,
                "channel event refused: {why}"
            );
            return Err(PushError::Busy {
                queued: count,
                retry_after_secs: 1,
            });
        }
        shared.backlog.bytes.fetch_add(line.len(), Ordering::AcqRel);
        state.next_event_id += 1;
        let id = state.next_event_id;
        let mut tried = None;
        if state.ready {
            // Only an idle writer signals soon: behind queued frames or a
            // batch in progress (perhaps waiting for a full stdout) the
            // signal could wait on Claude Code, and the caller would not
            // answer its own client meanwhile.
            let writer_idle = shared.backlog.frames.load(Ordering::Acquire) == 0
                && !shared.backlog.busy.load(Ordering::Acquire);
            let signal = (track && writer_idle).then(|| {
                let (tx, rx) = oneshot::channel();
                tried = Some(rx);
                tx
            });
            shared.send_counted(line, signal);
            tracing::debug!(id, "channel event queued");
        } else {
            state.held.push_back(line);
            tracing::debug!(
                id,
                held = state.held.len(),
                "channel event held until the session is ready"
            );
        }
        Ok((id, tried))
    }

    /// Relay a verdict for a pending permission request: sends
    /// `notifications/claude/channel/permission` and tells the bridge through
    /// [`Bridge::permission_resolved`]. Do not hold a bridge lock when calling.
    pub fn permission_verdict(
        &self,
        request_id: &str,
        behavior: Behavior,
    ) -> Result<(), VerdictError> {
        let shared = &self.shared;
        if !shared.config.permission_relay {
            tracing::warn!(request_id, "verdict refused: permission relay is off");
            return Err(VerdictError::RelayDisabled);
        }
        let (id, bridge) = {
            let mut state = shared.lock();
            if state.shutting_down {
                return Err(VerdictError::ShuttingDown);
            }
            match state.permissions.resolve(request_id) {
                Ok(id) => (id, state.bridge.clone()),
                Err(err) => {
                    tracing::warn!(request_id, "verdict refused: {err}");
                    return Err(err);
                }
            }
        };
        shared.send(
            notification_frame(
                PERMISSION_VERDICT_METHOD,
                json!({ "request_id": id, "behavior": behavior }),
            ),
            None,
        );
        tracing::info!(request_id = %id, %behavior, "permission verdict relayed");
        if let Some(bridge) = bridge {
            bridge.permission_resolved(&id, behavior);
        }
        Ok(())
    }

    pub fn status(&self) -> CoreStatus {
        let state = self.shared.lock();
        CoreStatus {
            initialized: state.initialized,
            ready: state.ready,
            held: state.held.len(),
            queued: self.shared.backlog.frames.load(Ordering::Acquire),
            pending_permissions: state.permissions.pending_count(),
            client: state.client.clone(),
        }
    }

    /// Whether `--permission-relay` is on (the capability was declared).
    pub fn permission_relay(&self) -> bool {
        self.shared.config.permission_relay
    }

    pub fn config(&self) -> &CoreConfig {
        &self.shared.config
    }
}

#[cfg(test)]
mod notification_tests {
    use super::*;
    use serde_json::Map;

    /// The direct writer must produce exactly what building the frame as a
    /// `Value` did (what the conformance goldens were written from).
    #[test]
    fn channel_notification_bytes_match_the_value_form() {
        let pairs = vec![
            ("chat_id".to_string(), "web".to_string()),
            ("user".to_string(), "ana \"<b>\" \u{e9}".to_string()),
            ("empty".to_string(), String::new()),
            ("ctl".to_string(), "\u{1}\t\\/\u{7f}\u{2028}".to_string()),
        ];
        let content = "line one\nline \"two\" \u{1F600}";
        for (content, pairs) in [
            (content, Vec::new()),
            (content, pairs.clone()),
            ("", pairs[..1].to_vec()),
            ("\u{0}\r\n", pairs),
        ] {
            let mut meta = Map::new();
            for (key, value) in &pairs {
                meta.insert(key.clone(), Value::String(value.clone()));
            }
            let mut params = json!({ "content": content });
            if !meta.is_empty() {
                params["meta"] = Value::Object(meta);
            }
            let expected = serde_json::to_vec(&notification_frame(CHANNEL_METHOD, params)).unwrap();
            let got = channel_notification_line(content, &pairs);
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }
}
