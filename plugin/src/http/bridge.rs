//! The HTTP side of the [`Bridge`] contract: core events become SSE events.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::sse::Hub;
use crate::bridge::{Behavior, Bridge, PermissionRequest, Reply, ReplyDelivery, ReplyError};

pub struct HttpBridge {
    hub: Arc<Hub>,
}

impl HttpBridge {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }
}

/// The `data` of an SSE `reply` event: `{chat_id, text, final, ts}`.
#[derive(serde::Serialize)]
struct ReplyEvent<'a> {
    chat_id: Option<&'a str>,
    text: &'a str,
    #[serde(rename = "final")]
    is_final: bool,
    ts: u64,
}

/// Milliseconds since the Unix epoch (`new Date(ts)` in a browser).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What the model is told about a delivered reply. One client is the usual
/// case, so it skips the formatter (this runs on every reply).
fn sent_detail(clients: usize) -> String {
    if clients == 1 {
        "Reply sent to 1 connected client(s).".to_string()
    } else {
        format!("Reply sent to {clients} connected client(s).")
    }
}

impl Bridge for HttpBridge {
    fn reply(&self, reply: Reply) -> Result<ReplyDelivery, ReplyError> {
        let data = ReplyEvent {
            chat_id: reply.chat_id.as_deref(),
            text: &reply.text,
            is_final: reply.is_final,
            ts: now_ms(),
        };
        match self.hub.try_publish("reply", &data) {
            Ok(published) if published.clients > 0 => {
                tracing::debug!(
                    id = published.id,
                    clients = published.clients,
                    "reply sent to SSE clients"
                );
                Ok(ReplyDelivery::Sent {
                    detail: sent_detail(published.clients),
                })
            }
            Ok(published) => {
                tracing::info!(id = published.id, "reply buffered: no SSE client connected");
                Ok(ReplyDelivery::Queued {
                    detail: "No client is connected right now; the reply is buffered and will be \
                             delivered when one connects."
                        .into(),
                })
            }
            Err(full) => {
                tracing::warn!("reply refused: {full}");
                Err(ReplyError(format!(
                    "the reply could not be buffered: {full}"
                )))
            }
        }
    }

    fn permission_request(&self, request: &PermissionRequest) {
        let published = self.hub.publish(
            "permission_request",
            &json!({
                "request_id": request.request_id,
                "tool_name": request.tool_name,
                "description": request.description,
                "input_preview": request.input_preview,
                "ts": now_ms(),
            }),
        );
        tracing::debug!(id = published.id, "permission_request published");
    }

    fn permission_resolved(&self, request_id: &str, behavior: Behavior) {
        let published = self.hub.publish(
            "permission_resolved",
            &json!({ "request_id": request_id, "behavior": behavior }),
        );
        tracing::debug!(id = published.id, "permission_resolved published");
    }
}
