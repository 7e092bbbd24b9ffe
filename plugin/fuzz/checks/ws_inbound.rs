//! WebSocket inbound frames (text messages from the bridge) through
//! `ws::frame::InFrame::parse`, and what the client then does with them: an
//! accepted `inbound` frame is pushed into a core, a refused one becomes an
//! `error` frame.
//!
//! Properties: no panic; an accepted event has non-empty content and only
//! meta keys Claude Code keeps (the core's debug assertion would fire
//! otherwise); a refusal serializes to `{"type":"error","reason":...}` with a
//! non-empty reason; a parse is deterministic.
//!
//! Shared by the fuzz target `fuzz_targets/ws_inbound.rs` and the stable replay test
//! `plugin/tests/regressions_fuzz.rs` (seeds and every crash input, on every CI run).

use channel_plugin::mcp::meta::key_is_valid;
use channel_plugin::mcp::{Core, CoreConfig};
use channel_plugin::ws::frame::{InFrame, OutFrame};
use serde_json::Value;

/// Run one input; panics when a property is broken.
pub fn check(data: &[u8]) {
    // WebSocket text messages are valid UTF-8 by the time they reach us.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = InFrame::parse(text);
    assert_eq!(parsed, InFrame::parse(text), "parse is not deterministic");
    match parsed {
        Ok(InFrame::Inbound(event)) => {
            assert!(!event.content.is_empty());
            for (key, _) in &event.meta {
                assert!(key_is_valid(key), "meta key {key:?} passed validation");
            }
            let (_core, handle) = Core::new(CoreConfig::new("fuzz"));
            handle
                .push(event)
                .expect("an accepted frame is held by a fresh core");
        }
        Ok(InFrame::Permission { request_id, .. }) => {
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(value["request_id"].as_str(), Some(request_id.as_str()));
        }
        Err(err) => {
            assert!(!err.0.is_empty(), "empty refusal reason");
            let frame: Value = serde_json::from_str(&OutFrame::error(err.0).to_json()).unwrap();
            assert_eq!(frame["type"], "error");
        }
    }
}
