//! `ws-bridge`: the suite is the agent platform. It listens on loopback,
//! hands the plugin `SYNTHESIS_WS_URL` (and `{ws_url}` in the command), and
//! speaks the bridge frames: the plugin sends `hello`, `reply`,
//! `permission_request`; the suite sends `inbound` and `permission`.
//!
//! One listener per session keeps parallel sessions apart without routing.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Mutex};
use tokio_tungstenite::tungstenite::Message;

use super::{Kind, Outside, OutsideEvent, OutsidePermission, OutsideReply, Prepared};

type FrameSender = mpsc::UnboundedSender<Message>;

pub(crate) struct WsOutside {
    /// The connection the plugin opened most recently (after its hello).
    current: Arc<Mutex<Option<FrameSender>>>,
    connected: watch::Receiver<u64>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl Drop for WsOutside {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

pub(super) async fn prepare(label: &str) -> anyhow::Result<Prepared> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the WebSocket bridge")?;
    let addr = listener.local_addr()?;
    let url = format!("ws://127.0.0.1:{}/bridge", addr.port());
    let openclaw_session = format!("conformance-{}", label.replace('/', "-"));
    let claude_session = uuid::Uuid::new_v4().to_string();

    let current: Arc<Mutex<Option<FrameSender>>> = Arc::default();
    let (connected_tx, connected_rx) = watch::channel(0u64);
    let (reply_tx, reply_rx) = mpsc::unbounded_channel();
    let (perm_tx, perm_rx) = mpsc::unbounded_channel();
    let accept_current = current.clone();
    let accept_task = tokio::spawn(async move {
        let mut count = 0u64;
        while let Ok((stream, _)) = listener.accept().await {
            let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                continue;
            };
            let (mut sink, mut source) = ws.split();
            let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
            tokio::spawn(async move {
                while let Some(m) = rx.recv().await {
                    if sink.send(m).await.is_err() {
                        break;
                    }
                }
            });
            count += 1;
            let current = accept_current.clone();
            let connected_tx = connected_tx.clone();
            let reply_tx = reply_tx.clone();
            let perm_tx = perm_tx.clone();
            let this = count;
            tokio::spawn(async move {
                while let Some(Ok(msg)) = source.next().await {
                    let text = match msg {
                        Message::Text(t) => t.to_string(),
                        // Keep polling: tungstenite answers the close
                        // handshake while the stream is read, and a plugin
                        // may wait for that answer before it exits.
                        Message::Close(_) => continue,
                        _ => continue,
                    };
                    let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                        tracing::warn!(%text, "bridge: plugin sent a non-JSON frame");
                        continue;
                    };
                    match frame["type"].as_str() {
                        Some("hello") => {
                            *current.lock().await = Some(tx.clone());
                            let _ = connected_tx.send(this);
                        }
                        Some("reply") => {
                            let _ = reply_tx.send(OutsideReply {
                                text: frame["text"].as_str().unwrap_or_default().to_string(),
                                chat_id: frame["chat_id"].as_str().map(str::to_string),
                                is_final: frame["final"].as_bool().unwrap_or(true),
                            });
                        }
                        Some("permission_request") => {
                            let _ = perm_tx.send(OutsidePermission {
                                request_id: frame["request_id"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_string(),
                                raw: frame,
                            });
                        }
                        Some("error") => {
                            tracing::warn!(reason = %frame["reason"], "bridge: plugin sent an error frame")
                        }
                        other => tracing::debug!(?other, "bridge: ignoring frame"),
                    }
                }
            });
        }
    });
    Ok(Prepared {
        env: vec![
            ("SYNTHESIS_WS_URL".into(), url.clone()),
            (
                "SYNTHESIS_OPENCLAW_SESSION".into(),
                openclaw_session.clone(),
            ),
            ("SYNTHESIS_CLAUDE_SESSION".into(), claude_session.clone()),
        ],
        placeholders: vec![
            ("ws_url", url),
            ("openclaw_session", openclaw_session),
            ("claude_session", claude_session),
        ],
        outside: Outside::with_streams(
            Kind::Ws(WsOutside {
                current,
                connected: connected_rx,
                accept_task,
            }),
            reply_rx,
            perm_rx,
        ),
    })
}

impl WsOutside {
    pub(super) async fn connect(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let wait = self.connected.wait_for(|n| *n > 0);
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(_)) => Ok(()),
            _ => bail!("the plugin did not connect to the bridge and say hello within {timeout:?} (does it read SYNTHESIS_WS_URL?)"),
        }
    }

    async fn send(&self, frame: Value) -> anyhow::Result<()> {
        let guard = self.current.lock().await;
        let tx = guard
            .as_ref()
            .context("the plugin has not connected to the bridge")?;
        tx.send(Message::text(frame.to_string()))
            .map_err(|_| anyhow::anyhow!("the plugin's bridge connection is closed"))
    }

    pub(super) async fn inject(&self, event: &OutsideEvent) -> anyhow::Result<()> {
        let mut meta: serde_json::Map<String, Value> = event
            .meta
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        if let Some(chat) = &event.chat_id {
            meta.entry("chat_id").or_insert(json!(chat));
        }
        self.send(json!({ "type": "inbound", "content": event.content, "meta": meta }))
            .await
    }

    pub(super) async fn verdict(&self, request_id: &str, behavior: &str) -> anyhow::Result<()> {
        self.send(json!({ "type": "permission", "request_id": request_id, "behavior": behavior }))
            .await
    }
}
