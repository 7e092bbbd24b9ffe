//! [`WsBridge`]: the core's view of the WebSocket side. It only stores frames
//! in the [`Outbox`] and wakes the connection task; it never touches the
//! socket, so a slow or absent bridge cannot stall the stdio loop.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::bridge::{Behavior, Bridge, PermissionRequest, Reply, ReplyDelivery, ReplyError};

use super::outbox::{Outbox, OutboxLimits};

/// State shared by [`WsBridge`] (producer) and the connection task (consumer).
#[derive(Debug)]
pub struct Outbound {
    outbox: Mutex<Outbox>,
    /// Signalled whenever a frame was stored. `Notify` keeps one permit when
    /// nobody waits, so a wake-up between two polls is not lost.
    wake: Notify,
}

impl Outbound {
    pub fn new(limits: OutboxLimits) -> Arc<Self> {
        Arc::new(Outbound {
            outbox: Mutex::new(Outbox::new(limits)),
            wake: Notify::new(),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, Outbox> {
        // A panic elsewhere must not wedge replies for the rest of the session.
        self.outbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Resolves when a frame may be waiting.
    pub async fn stored(&self) {
        self.wake.notified().await
    }

    fn wake(&self) {
        self.wake.notify_one();
    }
}

/// The [`Bridge`] handed to the MCP core.
#[derive(Debug, Clone)]
pub struct WsBridge {
    outbound: Arc<Outbound>,
    permission_relay: bool,
}

impl WsBridge {
    pub fn new(outbound: Arc<Outbound>, permission_relay: bool) -> Self {
        WsBridge {
            outbound,
            permission_relay,
        }
    }
}

impl Bridge for WsBridge {
    fn reply(&self, reply: Reply) -> Result<ReplyDelivery, ReplyError> {
        let (chars, is_final) = (reply.text.chars().count(), reply.is_final);
        let result = self.outbound.lock().push_reply(&reply);
        match result {
            Ok(accepted) => {
                self.outbound.wake();
                if accepted.connected {
                    tracing::debug!(
                        seq = accepted.seq,
                        chars,
                        is_final,
                        "reply handed to the bridge connection"
                    );
                    Ok(ReplyDelivery::Sent {
                        detail: format!("sent to the bridge (seq {})", accepted.seq),
                    })
                } else {
                    tracing::info!(
                        seq = accepted.seq,
                        waiting = accepted.waiting,
                        "bridge not connected; reply queued"
                    );
                    Ok(ReplyDelivery::Queued {
                        detail: format!(
                            "the bridge is not connected right now; the reply is queued as seq {} \
                             ({} frame(s) waiting) and will be delivered in order when the \
                             connection is back. Do not send it again.",
                            accepted.seq, accepted.waiting
                        ),
                    })
                }
            }
            Err(full) => {
                tracing::error!(chars, is_final, "reply refused: {full}");
                Err(ReplyError(format!(
                    "reply NOT delivered and NOT queued: {full}. The bridge has been unreachable \
                     for a while; try again later."
                )))
            }
        }
    }

    fn permission_request(&self, request: &PermissionRequest) {
        if !self.permission_relay {
            // The core only forwards requests when the relay is on; if one
            // gets here anyway, say so rather than relaying an approval path
            // the operator did not enable.
            tracing::warn!(
                request_id = %request.request_id,
                "permission request ignored: started without --permission-relay"
            );
            return;
        }
        let result = self.outbound.lock().push_permission_request(request);
        match result {
            Ok(()) => {
                tracing::info!(request_id = %request.request_id, tool = %request.tool_name, "permission request stored for the bridge");
                self.outbound.wake();
            }
            Err(full) => tracing::error!(
                request_id = %request.request_id,
                "permission request not relayed to the bridge ({full}); \
                 it can still be answered in Claude Code"
            ),
        }
    }

    fn permission_resolved(&self, request_id: &str, behavior: Behavior) {
        if self
            .outbound
            .lock()
            .drop_pending_permission_request(request_id)
        {
            tracing::info!(request_id, %behavior, "permission request answered before it reached the bridge; not sending it");
        } else {
            tracing::debug!(request_id, %behavior, "permission request resolved");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(text: &str) -> Reply {
        Reply {
            text: text.into(),
            chat_id: None,
            is_final: true,
        }
    }

    #[test]
    fn tool_result_says_sent_or_queued_and_full_is_an_error() {
        let outbound = Outbound::new(OutboxLimits {
            max_frames: 2,
            max_bytes: 1 << 20,
        });
        let bridge = WsBridge::new(outbound.clone(), false);
        match bridge.reply(reply("a")).unwrap() {
            ReplyDelivery::Queued { detail } => assert!(detail.contains("seq 1"), "{detail}"),
            other => panic!("expected Queued, got {other:?}"),
        }
        outbound.lock().connected();
        match bridge.reply(reply("b")).unwrap() {
            ReplyDelivery::Sent { detail } => assert!(detail.contains("seq 2"), "{detail}"),
            other => panic!("expected Sent, got {other:?}"),
        }
        let err = bridge.reply(reply("c")).unwrap_err();
        assert!(
            err.0.contains("NOT queued") && err.0.contains("full"),
            "{err}"
        );
        assert_eq!(
            outbound.lock().len(),
            2,
            "a refused reply leaves the queue intact"
        );
    }

    #[test]
    fn permission_requests_need_the_relay() {
        let req = PermissionRequest {
            request_id: "abcde".into(),
            tool_name: "Bash".into(),
            description: "d".into(),
            input_preview: "{}".into(),
        };
        let outbound = Outbound::new(OutboxLimits::default());
        WsBridge::new(outbound.clone(), false).permission_request(&req);
        assert!(outbound.lock().is_empty());
        let bridge = WsBridge::new(outbound.clone(), true);
        bridge.permission_request(&req);
        assert_eq!(outbound.lock().len(), 1);
        bridge.permission_resolved("abcde", Behavior::Allow);
        assert!(outbound.lock().is_empty());
    }
}
