//! The ordered, bounded store of frames on their way to the bridge.
//!
//! Delivery guarantee (what a bridge may rely on): **at-least-once, in order,
//! with `seq` to de-duplicate replies** (`request_id` for permission requests).
//!
//! WebSocket has no application-level acknowledgement and the seed protocol
//! has none either, so a frame written to a socket that dies a moment later
//! may or may not have reached the bridge. We close that gap with the one
//! acknowledgement every WebSocket peer must give: a pong. After writing a
//! batch, the client sends a ping whose payload is the id of the last frame
//! written; the peer's WebSocket stack answers with a pong carrying the same
//! payload only after it has read everything before the ping (frames on one
//! connection are read in order). So:
//!
//! * a frame leaves this store only when a pong confirms it ([`Outbox::confirm`]);
//! * a frame written but not confirmed when the connection ends goes back to
//!   the front of the queue ([`Outbox::connection_lost`]) and is written
//!   again, with the same `seq`, after the next `hello`;
//! * frames go out in small batches, each with its own ping, and only so
//!   many may be unconfirmed at once (the client's window): a bridge that
//!   dies mid-stream has confirmed all but the last batch it read, so even a
//!   bridge that keeps dying drains the backlog instead of being sent the
//!   same frames forever;
//! * so a frame is never lost while the plugin runs, and a duplicate can only
//!   be a frame the bridge had read but whose pong never made it back — same
//!   `seq`, same bytes, which the bridge drops.
//!
//! The store is bounded (frames and bytes, written-but-unconfirmed included)
//! so a bridge that stays away cannot eat the plugin's memory; a full store
//! refuses new frames and the caller says so (the model gets `isError`).

use std::collections::VecDeque;

use crate::bridge::{PermissionRequest, Reply};

use super::frame::OutFrame;

/// Bounds of the store. Defaults: 1,024 frames, 1 MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLimits {
    pub max_frames: usize,
    pub max_bytes: usize,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        OutboxLimits {
            max_frames: 1024,
            max_bytes: 1024 * 1024,
        }
    }
}

/// One frame, serialized once when it is accepted (so a resend is
/// byte-identical to the first write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Internal position in the stream of stored frames; what pings carry.
    pub id: u64,
    pub text: String,
    pub kind: EntryKind,
    /// How many times the frame was written to a connection (0: never).
    pub writes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Reply { seq: u64 },
    PermissionRequest { request_id: String },
}

/// What the store still holds when the plugin stops: frames the bridge never
/// confirmed, named the way a bridge can look them up (`seq`, `request_id`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Undelivered {
    /// Written at least once, never confirmed: the bridge may or may not have them.
    pub unconfirmed: Vec<EntryKind>,
    /// Never written to any connection: the bridge certainly does not have them.
    pub never_sent: Vec<EntryKind>,
}

impl Undelivered {
    pub fn is_empty(&self) -> bool {
        self.unconfirmed.is_empty() && self.never_sent.is_empty()
    }
}

/// `replies seq 1-3, 7; permission requests abcde` (empty when `kinds` is).
pub fn describe(kinds: &[EntryKind]) -> String {
    let mut seqs: Vec<u64> = Vec::new();
    let mut requests: Vec<&str> = Vec::new();
    for kind in kinds {
        match kind {
            EntryKind::Reply { seq } => seqs.push(*seq),
            EntryKind::PermissionRequest { request_id } => requests.push(request_id),
        }
    }
    seqs.sort_unstable();
    let mut ranges: Vec<String> = Vec::new();
    let mut i = 0;
    while i < seqs.len() {
        let start = seqs[i];
        let mut end = start;
        while i + 1 < seqs.len() && seqs[i + 1] == end + 1 {
            i += 1;
            end = seqs[i];
        }
        ranges.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    let mut parts = Vec::new();
    if !ranges.is_empty() {
        let noun = if seqs.len() == 1 { "reply" } else { "replies" };
        parts.push(format!("{noun} seq {}", ranges.join(", ")));
    }
    if !requests.is_empty() {
        let noun = if requests.len() == 1 {
            "permission request"
        } else {
            "permission requests"
        };
        parts.push(format!("{noun} {}", requests.join(", ")));
    }
    parts.join("; ")
}

/// What happened to an accepted reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub seq: u64,
    /// A connection (with its `hello` sent) was up when the reply came in.
    pub connected: bool,
    /// Frames in the store, this one included.
    pub waiting: usize,
}

/// The store refused a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the outgoing queue to the bridge is full ({frames} frames, {bytes} bytes waiting; \
     limit {max_frames} frames / {max_bytes} bytes)"
)]
pub struct QueueFull {
    pub frames: usize,
    pub bytes: usize,
    pub max_frames: usize,
    pub max_bytes: usize,
}

#[derive(Debug)]
pub struct Outbox {
    limits: OutboxLimits,
    /// Written on the current connection, waiting for a pong. Always older
    /// than everything in `pending`.
    in_flight: VecDeque<Entry>,
    /// Not written on the current connection yet.
    pending: VecDeque<Entry>,
    bytes: usize,
    next_id: u64,
    next_seq: u64,
    connected: bool,
}

impl Outbox {
    pub fn new(limits: OutboxLimits) -> Self {
        Outbox {
            limits,
            in_flight: VecDeque::new(),
            pending: VecDeque::new(),
            bytes: 0,
            next_id: 1,
            next_seq: 1,
            connected: false,
        }
    }

    /// Frames held (pending and unconfirmed).
    pub fn len(&self) -> usize {
        self.in_flight.len() + self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Store a reply; its `seq` is assigned here (a refused reply uses none,
    /// so the bridge sees no gap).
    pub fn push_reply(&mut self, reply: &Reply) -> Result<Accepted, QueueFull> {
        let seq = self.next_seq;
        let text = OutFrame::Reply {
            text: reply.text.clone(),
            is_final: reply.is_final,
            seq,
            chat_id: reply.chat_id.clone(),
        }
        .to_json();
        self.push(text, EntryKind::Reply { seq })?;
        self.next_seq += 1;
        Ok(Accepted {
            seq,
            connected: self.connected,
            waiting: self.len(),
        })
    }

    pub fn push_permission_request(
        &mut self,
        request: &PermissionRequest,
    ) -> Result<(), QueueFull> {
        let text = OutFrame::permission_request(request).to_json();
        self.push(
            text,
            EntryKind::PermissionRequest {
                request_id: request.request_id.clone(),
            },
        )
    }

    fn push(&mut self, text: String, kind: EntryKind) -> Result<(), QueueFull> {
        // One frame larger than the byte limit is still taken into an empty
        // store: otherwise a long reply could never be delivered at all.
        let fits_bytes = self.bytes + text.len() <= self.limits.max_bytes || self.is_empty();
        if self.len() >= self.limits.max_frames || !fits_bytes {
            return Err(QueueFull {
                frames: self.len(),
                bytes: self.bytes,
                max_frames: self.limits.max_frames,
                max_bytes: self.limits.max_bytes,
            });
        }
        self.bytes += text.len();
        self.pending.push_back(Entry {
            id: self.next_id,
            text,
            kind,
            writes: 0,
        });
        self.next_id += 1;
        Ok(())
    }

    /// Forget a permission request that was answered before it could be
    /// written (asking the bridge would be pointless). Written ones stay: the
    /// bridge already has them.
    pub fn drop_pending_permission_request(&mut self, request_id: &str) -> bool {
        let before = self.pending.len();
        let mut freed = 0;
        self.pending.retain(|e| match &e.kind {
            EntryKind::PermissionRequest { request_id: id } if id == request_id => {
                freed += e.text.len();
                false
            }
            _ => true,
        });
        self.bytes -= freed;
        self.pending.len() != before
    }

    /// A connection is up and its `hello` was written.
    pub fn connected(&mut self) {
        self.connected = true;
    }

    /// Whether a write may start: something is pending and fewer than
    /// `window` frames are written-but-unconfirmed.
    pub fn can_write(&self, window: usize) -> bool {
        !self.pending.is_empty() && self.in_flight.len() < window
    }

    /// The next frames to write on this connection, in order: at most `max`,
    /// and no more than keep the unconfirmed count within `window`. From now
    /// on they count as in flight until a pong confirms them.
    pub fn take_batch(&mut self, max: usize, window: usize) -> Vec<Entry> {
        let room = window.saturating_sub(self.in_flight.len());
        let n = max.min(room).min(self.pending.len());
        let batch: Vec<Entry> = self
            .pending
            .drain(..n)
            .map(|mut e| {
                e.writes += 1;
                e
            })
            .collect();
        self.in_flight.extend(batch.iter().cloned());
        batch
    }

    /// Everything not yet written on this connection (see [`Self::take_batch`]).
    pub fn take_pending(&mut self) -> Vec<Entry> {
        self.take_batch(usize::MAX, usize::MAX)
    }

    /// The bridge's WebSocket stack has read every frame up to `id`.
    /// Returns how many frames were released.
    pub fn confirm(&mut self, id: u64) -> usize {
        let mut released = 0;
        while self.in_flight.front().is_some_and(|e| e.id <= id) {
            let entry = self.in_flight.pop_front().expect("front exists");
            self.bytes -= entry.text.len();
            released += 1;
        }
        released
    }

    /// Everything still held, for the exit report (see [`Undelivered`]).
    pub fn undelivered(&self) -> Undelivered {
        let mut out = Undelivered::default();
        for e in self.in_flight.iter().chain(&self.pending) {
            if e.writes > 0 {
                out.unconfirmed.push(e.kind.clone());
            } else {
                out.never_sent.push(e.kind.clone());
            }
        }
        out
    }

    /// The connection ended: unconfirmed frames go back to the front, in
    /// order, to be written again after the next `hello`. Returns how many.
    pub fn connection_lost(&mut self) -> usize {
        self.connected = false;
        let requeued = self.in_flight.len();
        while let Some(entry) = self.in_flight.pop_back() {
            self.pending.push_front(entry);
        }
        requeued
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

    fn texts(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| {
                let v: serde_json::Value = serde_json::from_str(&e.text).unwrap();
                format!("{}#{}", v["text"].as_str().unwrap(), v["seq"])
            })
            .collect()
    }

    #[test]
    fn seq_grows_and_connected_flag_is_reported() {
        let mut o = Outbox::new(OutboxLimits::default());
        let a = o.push_reply(&reply("a")).unwrap();
        assert_eq!((a.seq, a.connected, a.waiting), (1, false, 1));
        o.connected();
        let b = o.push_reply(&reply("b")).unwrap();
        assert_eq!((b.seq, b.connected, b.waiting), (2, true, 2));
        assert_eq!(texts(&o.take_pending()), ["a#1", "b#2"]);
    }

    #[test]
    fn confirmed_frames_leave_unconfirmed_come_back_in_order() {
        let mut o = Outbox::new(OutboxLimits::default());
        o.connected();
        for t in ["a", "b", "c"] {
            o.push_reply(&reply(t)).unwrap();
        }
        let batch = o.take_pending();
        assert_eq!(o.len(), 3, "written but unconfirmed frames are still held");
        // The pong for the ping sent after "a" arrives; then the socket dies.
        assert_eq!(o.confirm(batch[0].id), 1);
        o.push_reply(&reply("d")).unwrap();
        assert_eq!(o.connection_lost(), 2);
        assert!(!o.is_connected());
        let e = o.push_reply(&reply("e")).unwrap();
        assert!(!e.connected);
        o.connected();
        // b and c again (same seq, same bytes), then d and e; never a.
        let again = o.take_pending();
        assert_eq!(texts(&again), ["b#2", "c#3", "d#4", "e#5"]);
        assert_eq!(again[0].text, batch[1].text);
        assert_eq!(o.confirm(u64::MAX), 4);
        assert!(o.is_empty());
        assert_eq!(o.bytes(), 0);
    }

    #[test]
    fn batches_respect_the_window_of_unconfirmed_frames() {
        let mut o = Outbox::new(OutboxLimits::default());
        for i in 0..10 {
            o.push_reply(&reply(&i.to_string())).unwrap();
        }
        assert!(o.can_write(4));
        let first = o.take_batch(3, 4);
        assert_eq!(texts(&first), ["0#1", "1#2", "2#3"]);
        // Only one more fits in a window of 4.
        assert_eq!(texts(&o.take_batch(3, 4)), ["3#4"]);
        assert!(!o.can_write(4));
        assert!(o.take_batch(3, 4).is_empty());
        // A pong for the first batch opens the window again.
        o.confirm(first[2].id);
        assert!(o.can_write(4));
        assert_eq!(texts(&o.take_batch(8, 4)), ["4#5", "5#6", "6#7"]);
    }

    #[test]
    fn confirm_of_an_old_id_releases_nothing_new() {
        let mut o = Outbox::new(OutboxLimits::default());
        o.push_reply(&reply("a")).unwrap();
        let first = o.take_pending();
        o.push_reply(&reply("b")).unwrap();
        o.take_pending();
        assert_eq!(o.confirm(first[0].id), 1);
        assert_eq!(o.confirm(first[0].id), 0);
        assert_eq!(o.len(), 1);
    }

    #[test]
    fn frame_limit_refuses_with_a_clear_error_and_keeps_state() {
        let mut o = Outbox::new(OutboxLimits {
            max_frames: 3,
            max_bytes: 1 << 20,
        });
        for t in ["a", "b", "c"] {
            o.push_reply(&reply(t)).unwrap();
        }
        let err = o.push_reply(&reply("d")).unwrap_err();
        assert_eq!(err.frames, 3);
        assert!(
            err.to_string().contains("queue to the bridge is full"),
            "{err}"
        );
        // The refused reply burned no seq: the next accepted one is 4.
        o.connected();
        o.take_pending();
        o.confirm(u64::MAX);
        assert_eq!(o.push_reply(&reply("d")).unwrap().seq, 4);
    }

    #[test]
    fn byte_limit_counts_unconfirmed_frames_and_admits_one_big_frame() {
        let mut o = Outbox::new(OutboxLimits {
            max_frames: 100,
            max_bytes: 200,
        });
        let big = "x".repeat(500);
        // Empty store: a single oversized frame is still accepted.
        o.push_reply(&reply(&big)).unwrap();
        assert!(o.push_reply(&reply("small")).is_err());
        o.take_pending();
        assert!(
            o.push_reply(&reply("small")).is_err(),
            "in-flight bytes count"
        );
        o.confirm(u64::MAX);
        o.push_reply(&reply("small")).unwrap();
    }

    #[test]
    fn undelivered_names_every_held_frame_by_seq_or_request_id() {
        let mut o = Outbox::new(OutboxLimits::default());
        o.connected();
        for t in ["a", "b", "c", "d"] {
            o.push_reply(&reply(t)).unwrap();
        }
        let batch = o.take_batch(3, usize::MAX);
        o.confirm(batch[0].id);
        o.push_permission_request(&PermissionRequest {
            request_id: "abcde".into(),
            tool_name: "Bash".into(),
            description: "d".into(),
            input_preview: "{}".into(),
        })
        .unwrap();
        // A requeued frame still counts as written once.
        o.connection_lost();
        let u = o.undelivered();
        assert_eq!(describe(&u.unconfirmed), "replies seq 2-3");
        assert_eq!(
            describe(&u.never_sent),
            "reply seq 4; permission request abcde"
        );
        o.connected();
        o.take_pending();
        o.confirm(u64::MAX);
        assert!(o.undelivered().is_empty());
        assert_eq!(describe(&[]), "");
        let gaps = [1, 2, 3, 5, 7, 8].map(|seq| EntryKind::Reply { seq });
        assert_eq!(describe(&gaps), "replies seq 1-3, 5, 7-8");
    }

    #[test]
    fn answered_permission_request_is_not_sent_if_still_pending() {
        let mut o = Outbox::new(OutboxLimits::default());
        let req = PermissionRequest {
            request_id: "abcde".into(),
            tool_name: "Bash".into(),
            description: "d".into(),
            input_preview: "{}".into(),
        };
        o.push_permission_request(&req).unwrap();
        o.push_reply(&reply("a")).unwrap();
        assert!(o.drop_pending_permission_request("abcde"));
        assert!(!o.drop_pending_permission_request("abcde"));
        let batch = o.take_pending();
        assert_eq!(batch.len(), 1);
        assert_eq!(o.bytes(), batch[0].text.len());
    }
}
