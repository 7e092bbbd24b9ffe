//! mock-claude's stdout frame reader and everything behind it (line splitting with the
//! profile's size cap, JSON/junk classification, responses, server requests, channel pushes
//! and their drop rules, permission verdicts), through the public `Session::connect` over an
//! in-memory pipe.
//!
//! A tiny in-process server answers the handshake properly; once the handshake is done it
//! writes the input, raw, to its stdout and closes it. Byte 0 odd: the line cap drops to
//! 256 bytes, so the over-long-line path runs too.
//!
//! Properties: no panic, no hang (the reader reaches end of input); every turn the session
//! produced parses back to the event it came from; stray bytes are accounted for.
//!
//! Shared by the fuzz target `fuzz_targets/frame_reader.rs` and the stable replay test
//! `mock-claude/tests/regressions_fuzz.rs` (seeds and every crash input, on every CI run).

use std::sync::OnceLock;
use std::time::Duration;

use mock_claude::render::{parse_turn, render_content};
use mock_claude::{fixtures_dir, LaunchOptions, Profile, Session};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn profile() -> &'static Profile {
    static P: OnceLock<Profile> = OnceLock::new();
    P.get_or_init(|| Profile::latest(fixtures_dir()).expect("profiles load"))
}

fn answer(request: &Value) -> Option<Value> {
    let id = request.get("id")?.clone();
    let method = request.get("method")?.as_str()?;
    Some(match method {
        "initialize" => json!({"jsonrpc": "2.0", "id": id, "result": {
            "protocolVersion": request["params"]["protocolVersion"],
            "capabilities": {"tools": {}, "experimental": {"claude/channel": {}, "claude/channel/permission": {}}},
            "serverInfo": {"name": "fuzz", "version": "0"}}}),
        "tools/list" => json!({"jsonrpc": "2.0", "id": id, "result": {"tools": [{
            "name": "reply", "inputSchema": {"type": "object"}}]}}),
        "ping" => json!({"jsonrpc": "2.0", "id": id, "result": {}}),
        _ => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}})
        }
    })
}

/// Run one input; panics when a property is broken.
pub fn check(data: &[u8]) {
    let mut profile = profile().clone();
    if data.first().is_some_and(|b| b & 1 == 1) {
        // Small cap, so the over-long-line path runs too.
        profile.stdout.max_line_bytes = 256;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client_io, server_io) = tokio::io::duplex(1 << 20);
        let (client_read, client_write) = tokio::io::split(client_io);
        let (server_read, mut server_write) = tokio::io::split(server_io);
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let input = data.to_vec();
        tokio::spawn(async move {
            let mut lines = BufReader::new(server_read).lines();
            let mut go = Some(go_rx);
            loop {
                tokio::select! {
                    line = lines.next_line() => {
                        let Ok(Some(line)) = line else { break };
                        let Ok(request) = serde_json::from_str::<Value>(&line) else { continue };
                        if let Some(reply) = answer(&request) {
                            let _ = server_write.write_all(format!("{reply}\n").as_bytes()).await;
                        }
                    }
                    Ok(()) = async { go.as_mut().unwrap().await }, if go.is_some() => {
                        go = None;
                        let _ = server_write.write_all(&input).await;
                        let _ = server_write.shutdown().await;
                        // Keep reading what the client sends (answers to server requests).
                    }
                }
            }
        });

        let mut session = Session::connect(
            &profile,
            LaunchOptions::dev("zoo", vec![]),
            client_read,
            client_write,
        );
        session
            .handshake()
            .await
            .expect("the in-process server answers the handshake");
        go_tx.send(()).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while session.is_alive() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the reader did not reach the end of input"
            );
            tokio::task::yield_now().await;
        }
        let rules = &session.profile().render;
        while let Ok(turn) = session.next_turn(Duration::ZERO).await {
            if turn.batched {
                continue;
            }
            let [event] = turn.events.as_slice() else {
                panic!("unbatched turn with {} events", turn.events.len())
            };
            let parsed = parse_turn(rules, &turn.text)
                .unwrap_or_else(|| panic!("turn does not parse: {:?}", turn.text));
            assert_eq!(parsed.source, event.source);
            assert_eq!(parsed.attributes, event.meta);
            assert_eq!(parsed.content, render_content(rules, &event.content));
        }
        let transcript = session.transcript();
        let lines = data.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        assert!(transcript.stray_stdout_bytes() <= data.len() as u64 + lines);
    });
}
