//! Outgoing events for SSE clients: a bounded ring with replay.
//!
//! Every event gets a monotonic id. A client that reconnects with
//! `Last-Event-ID: N` gets every event after N still in the ring. A client
//! that connects without it gets every event that no client has received
//! yet (replies made while nobody was listening), then live events. Each
//! client keeps its own cursor into the ring and wakes on a `watch` channel,
//! so a slow client never makes the hub drop anything for the others.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::watch;

/// Default ring size (the issue asks for at least 1024).
pub const DEFAULT_RING_CAPACITY: usize = 4096;

/// One event in the ring, encoded for the wire once, when published: every
/// client gets the same bytes (shared, not copied).
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: u64,
    pub name: &'static str,
    /// `id: <id>\nevent: <name>\ndata: <json>\n\n`
    wire: Bytes,
}

impl SseEvent {
    fn new(id: u64, name: &'static str, data: &impl Serialize) -> SseEvent {
        use std::io::Write;
        let mut wire = Vec::with_capacity(128);
        let _ = write!(wire, "id: {id}\nevent: {name}\ndata: ");
        // Our payloads are plain structs and `Value`s: always JSON, compact,
        // so never a raw newline that would end the `data:` line.
        serde_json::to_writer(&mut wire, data).expect("an SSE payload serializes");
        wire.extend_from_slice(b"\n\n");
        SseEvent {
            id,
            name,
            wire: Bytes::from(wire),
        }
    }
}

/// What happened to a published event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub id: u64,
    /// SSE clients connected at publish time.
    pub clients: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("{undelivered} events are waiting for an SSE client and the buffer holds {capacity}; connect a client to GET /sse")]
pub struct BufferFull {
    pub undelivered: usize,
    pub capacity: usize,
}

struct Ring {
    events: VecDeque<SseEvent>,
    capacity: usize,
    last_id: u64,
    /// Highest id written to at least one client.
    delivered: u64,
    clients: usize,
}

pub struct Hub {
    ring: Mutex<Ring>,
    latest: watch::Sender<u64>,
}

impl Hub {
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0);
        Hub {
            ring: Mutex::new(Ring {
                events: VecDeque::with_capacity(capacity.min(1024)),
                capacity,
                last_id: 0,
                delivered: 0,
                clients: 0,
            }),
            latest: watch::Sender::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn clients(&self) -> usize {
        self.lock().clients
    }

    /// Publish, refusing when the ring is full of events nobody received
    /// (so a caller can be told instead of an old reply being lost).
    pub fn try_publish(
        &self,
        name: &'static str,
        data: &impl Serialize,
    ) -> Result<Published, BufferFull> {
        let mut ring = self.lock();
        let undelivered = ring.last_id.saturating_sub(ring.delivered) as usize;
        if undelivered >= ring.capacity {
            return Err(BufferFull {
                undelivered,
                capacity: ring.capacity,
            });
        }
        Ok(self.publish_locked(&mut ring, name, data))
    }

    /// Publish unconditionally; evicting an undelivered event is logged.
    pub fn publish(&self, name: &'static str, data: &impl Serialize) -> Published {
        let mut ring = self.lock();
        self.publish_locked(&mut ring, name, data)
    }

    fn publish_locked(
        &self,
        ring: &mut Ring,
        name: &'static str,
        data: &impl Serialize,
    ) -> Published {
        ring.last_id += 1;
        let id = ring.last_id;
        if ring.events.len() == ring.capacity {
            if let Some(old) = ring.events.pop_front() {
                if old.id > ring.delivered {
                    tracing::warn!(
                        id = old.id,
                        event = old.name,
                        "SSE buffer full: an event no client received was evicted"
                    );
                }
            }
        }
        ring.events.push_back(SseEvent::new(id, name, data));
        self.latest.send_replace(id);
        Published {
            id,
            clients: ring.clients,
        }
    }

    /// A client's event stream, starting after `last_event_id` (or after what
    /// some client already received). `keepalive` sets the comment interval.
    pub fn subscribe(
        self: &Arc<Self>,
        last_event_id: Option<u64>,
        keepalive: Duration,
    ) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
        let cursor = {
            let mut ring = self.lock();
            ring.clients += 1;
            match last_event_id {
                Some(id) if id <= ring.last_id => id,
                Some(id) => {
                    tracing::warn!(id, latest = ring.last_id, "Last-Event-ID is from the future (another plugin run?); starting from undelivered events");
                    ring.delivered
                }
                None => ring.delivered,
            }
        };
        let client = Client {
            hub: self.clone(),
            cursor,
            rx: self.latest.subscribe(),
            keepalive: tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive),
            greeted: false,
        };
        futures_util::stream::unfold(client, |mut client| async move {
            let chunk = client.next_chunk().await?;
            Some((Ok(chunk), client))
        })
    }
}

struct Client {
    hub: Arc<Hub>,
    cursor: u64,
    rx: watch::Receiver<u64>,
    keepalive: tokio::time::Interval,
    greeted: bool,
}

impl Client {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if !self.greeted {
            self.greeted = true;
            // Sent at once so the client knows the stream is open.
            return Some(Bytes::from_static(b": connected\n\n"));
        }
        loop {
            self.rx.mark_unchanged();
            if let Some(chunk) = self.take_pending() {
                return Some(chunk);
            }
            tokio::select! {
                changed = self.rx.changed() => changed.ok()?,
                _ = self.keepalive.tick() => return Some(Bytes::from_static(b": keep-alive\n\n")),
            }
        }
    }

    fn take_pending(&mut self) -> Option<Bytes> {
        let mut ring = self.hub.lock();
        if let Some(first) = ring.events.front() {
            if first.id > self.cursor + 1 {
                tracing::warn!(
                    from = self.cursor + 1,
                    to = first.id - 1,
                    "SSE client resumed too far back; those events left the buffer"
                );
            }
        }
        let from = self.cursor;
        // Ids in the ring are consecutive: jump to the first unseen one
        // instead of scanning the whole ring (up to 4096) on every wake.
        let skip = ring
            .events
            .front()
            .map_or(0, |first| (from + 1).saturating_sub(first.id) as usize);
        let unseen = ring.events.range(skip.min(ring.events.len())..);
        let chunk = match unseen.len() {
            0 => return None,
            // The usual case, one new event: its bytes as they are.
            1 => unseen.last().map(|event| event.wire.clone())?,
            _ => {
                let mut out = Vec::with_capacity(unseen.clone().map(|e| e.wire.len()).sum());
                for event in unseen.clone() {
                    out.extend_from_slice(&event.wire);
                }
                Bytes::from(out)
            }
        };
        self.cursor = ring.events.back().map_or(self.cursor, |last| last.id);
        ring.delivered = ring.delivered.max(self.cursor);
        Some(chunk)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.hub.lock().clients -= 1;
        tracing::info!("SSE client disconnected");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use serde_json::json;

    async fn next_text(
        stream: &mut (impl Stream<Item = Result<Bytes, Infallible>> + Unpin),
    ) -> String {
        let chunk = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        String::from_utf8(chunk.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn buffers_until_a_client_connects_then_replays_by_id() {
        let hub = Arc::new(Hub::new(3));
        assert_eq!(
            hub.publish("reply", &json!({"n": 1})),
            Published { id: 1, clients: 0 }
        );
        hub.publish("reply", &json!({"n": 2}));
        let mut a = Box::pin(hub.subscribe(None, Duration::from_secs(60)));
        assert_eq!(next_text(&mut a).await, ": connected\n\n");
        let text = next_text(&mut a).await;
        assert_eq!(
            text,
            "id: 1\nevent: reply\ndata: {\"n\":1}\n\nid: 2\nevent: reply\ndata: {\"n\":2}\n\n"
        );
        assert_eq!(hub.publish("reply", &json!({"n": 3})).clients, 1);
        assert!(next_text(&mut a).await.starts_with("id: 3\n"));
        drop(a);
        assert_eq!(hub.clients(), 0);
        // A fresh client without Last-Event-ID gets nothing already delivered.
        hub.publish("reply", &json!({"n": 4}));
        let mut b = Box::pin(hub.subscribe(None, Duration::from_secs(60)));
        next_text(&mut b).await;
        assert!(next_text(&mut b).await.starts_with("id: 4\n"));
        // Replay from an id.
        let mut c = Box::pin(hub.subscribe(Some(2), Duration::from_secs(60)));
        next_text(&mut c).await;
        let text = next_text(&mut c).await;
        assert!(
            text.starts_with("id: 3\n") && text.contains("id: 4\n"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn resumes_at_any_cursor_after_the_ring_wrapped() {
        // Ids 1..=10 published into a ring of 4: 7..=10 remain.
        let hub = Arc::new(Hub::new(4));
        for n in 1..=10 {
            hub.publish("reply", &json!(n));
        }
        let ids = |text: &str| -> Vec<u64> {
            text.lines()
                .filter_map(|l| l.strip_prefix("id: "))
                .map(|id| id.parse().unwrap())
                .collect()
        };
        // Behind the ring (evicted events): everything still held.
        let mut far = Box::pin(hub.subscribe(Some(2), Duration::from_secs(60)));
        next_text(&mut far).await;
        assert_eq!(ids(&next_text(&mut far).await), vec![7, 8, 9, 10]);
        // Inside the ring: only what comes after the cursor.
        let mut mid = Box::pin(hub.subscribe(Some(8), Duration::from_secs(60)));
        next_text(&mut mid).await;
        assert_eq!(ids(&next_text(&mut mid).await), vec![9, 10]);
        // At the head: nothing until the next event, then only that one.
        let mut head = Box::pin(hub.subscribe(Some(10), Duration::from_secs(60)));
        next_text(&mut head).await;
        hub.publish("reply", &json!(11));
        assert_eq!(ids(&next_text(&mut head).await), vec![11]);
    }

    #[tokio::test]
    async fn refuses_when_full_of_undelivered_events() {
        let hub = Hub::new(2);
        hub.try_publish("reply", &json!(1)).unwrap();
        hub.try_publish("reply", &json!(2)).unwrap();
        let err = hub.try_publish("reply", &json!(3)).unwrap_err();
        assert_eq!((err.undelivered, err.capacity), (2, 2));
    }

    #[tokio::test]
    async fn sends_keepalive_comments() {
        let hub = Arc::new(Hub::new(4));
        let mut a = Box::pin(hub.subscribe(None, Duration::from_millis(200)));
        next_text(&mut a).await;
        assert_eq!(next_text(&mut a).await, ": keep-alive\n\n");
    }
}
