//! The WebSocket bridge's delivery guarantee, model-checked: arbitrary
//! sequences of replies, connects, batched writes, partial reads by the
//! bridge, pongs and connection losses run against `ws::outbox::Outbox`,
//! with a model of the wire (frames written to a connection reach the bridge
//! in order, unless the connection dies first).
//!
//! Properties (the contract in `plugin/src/ws/outbox.rs`: at-least-once, in
//! order, `seq` to de-duplicate):
//! * the bridge never sees a gap: a `seq` arrives only after all smaller ones;
//! * a resend is byte-identical to the first copy;
//! * the store stays within its limits, and a refused reply burns no `seq`;
//! * nothing is lost: after a final clean connection every accepted reply
//!   has reached the bridge and the store is empty (0 bytes held).
//!
//! Shared by the fuzz target `fuzz_targets/ws_outbox.rs` and the stable replay test
//! `plugin/tests/regressions_fuzz.rs`.

use std::collections::{HashMap, VecDeque};

use channel_plugin::bridge::Reply;
use channel_plugin::ws::outbox::{Entry, EntryKind, Outbox, OutboxLimits};

#[derive(Default)]
struct Bridge {
    /// seq → first copy's bytes.
    seen: HashMap<u64, String>,
    highest: u64,
    /// Ids of entries read on the current connection, for pongs.
    read_ids: Vec<u64>,
}

impl Bridge {
    fn read(&mut self, entry: &Entry) {
        let EntryKind::Reply { seq } = entry.kind else {
            panic!("only replies are stored here");
        };
        assert!(
            seq <= self.highest + 1,
            "gap: seq {seq} before seq {}",
            self.highest + 1
        );
        match self.seen.get(&seq) {
            Some(first) => assert_eq!(first, &entry.text, "resend of seq {seq} differs"),
            None => {
                self.seen.insert(seq, entry.text.clone());
            }
        }
        self.highest = self.highest.max(seq);
        self.read_ids.push(entry.id);
    }
}

/// Run one input; panics when a property is broken.
pub fn check(data: &[u8]) {
    let limits = OutboxLimits {
        max_frames: 1 + usize::from(data.first().copied().unwrap_or(7) % 32),
        max_bytes: 64 + 16 * usize::from(data.get(1).copied().unwrap_or(255)),
    };
    let mut outbox = Outbox::new(limits);
    let mut bridge = Bridge::default();
    let mut wire: VecDeque<Entry> = VecDeque::new();
    let mut up = false;
    let mut accepted: Vec<u64> = Vec::new();
    let mut next_seq = 1u64;

    let mut ops = data.iter().skip(2).copied();
    while let Some(op) = ops.next() {
        let arg = ops.next().unwrap_or(0);
        match op % 6 {
            0 => {
                let reply = Reply {
                    text: "t".repeat(usize::from(arg) * 3),
                    chat_id: (arg % 3 == 0).then(|| "c".to_string()),
                    is_final: arg % 2 == 0,
                };
                match outbox.push_reply(&reply) {
                    Ok(a) => {
                        assert_eq!(a.seq, next_seq, "seq skipped or reused");
                        accepted.push(a.seq);
                        next_seq += 1;
                    }
                    Err(full) => assert!(full.frames > 0, "an empty store refused a reply"),
                }
            }
            1 if !up => {
                outbox.connected();
                up = true;
                bridge.read_ids.clear();
            }
            2 if up => {
                let batch = outbox.take_batch(1 + usize::from(arg % 20), 1 + usize::from(arg / 4));
                wire.extend(batch);
            }
            3 if up => {
                for _ in 0..=arg % 8 {
                    let Some(entry) = wire.pop_front() else { break };
                    bridge.read(&entry);
                }
            }
            4 if up => {
                // A pong for the last frame the bridge has read on this connection.
                if let Some(&id) = bridge.read_ids.last() {
                    outbox.confirm(id);
                }
            }
            5 if up => {
                // The connection dies: whatever is still on the wire is lost.
                wire.clear();
                outbox.connection_lost();
                up = false;
            }
            _ => {}
        }
        assert!(
            outbox.len() <= limits.max_frames,
            "store over its frame limit"
        );
    }

    // A final, clean connection: everything must get through.
    if up {
        wire.clear();
        outbox.connection_lost();
    }
    outbox.connected();
    bridge.read_ids.clear();
    for _ in 0..=accepted.len() + 1 {
        let batch = outbox.take_batch(16, 64);
        if batch.is_empty() {
            break;
        }
        for entry in &batch {
            bridge.read(entry);
        }
        outbox.confirm(batch.last().unwrap().id);
    }
    let mut delivered: Vec<u64> = bridge.seen.keys().copied().collect();
    delivered.sort_unstable();
    assert_eq!(delivered, accepted, "accepted replies lost");
    assert!(outbox.is_empty(), "frames left after a clean connection");
    assert_eq!(outbox.bytes(), 0, "byte accounting drifted");
}
