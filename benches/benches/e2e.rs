//! End to end through real processes on loopback, with an async (tokio)
//! client so each measured iteration awaits the real path:
//!
//! * `http/inject_to_stdout`: POST /inject → the notification line on the
//!   plugin's stdout (and the 202);
//! * `http/inject_to_mock_claude_turn`: the same, read by `mock-claude` as
//!   Claude Code 2.1.330 would (validation, gate, rendering) → the turn text;
//! * `http/reply_to_sse`: a `reply` tools/call on stdin → `event: reply` on
//!   GET /sse (and the tool result);
//! * `ws/inbound_to_stdout`: an `inbound` frame from the agent platform's
//!   WebSocket bridge → the notification line;
//! * `ws/reply_to_frame`: a `reply` call → the `reply` frame on the WebSocket.
//!
//! Needs the release `channel-plugin` binary (`cargo build --release -p
//! channel-plugin`) or `CHANNEL_PLUGIN_BIN`.

use std::time::{Duration, Instant};

use channel_benches::aio::{self, Http, Server, Sse, WsPeer};
use channel_benches::servers::plugin_bin;
use channel_benches::{frames, http};
use criterion::{criterion_group, criterion_main, Criterion};
use mock_claude::{fixtures_dir, LaunchOptions, MockClaude, Profile};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn plugin() -> String {
    plugin_bin()
        .expect("channel-plugin binary")
        .display()
        .to_string()
}

/// Inject and wait until a notification comes out (the first pushes are held
/// until the session is ready).
async fn inject_and_read(server: &mut Server, conn: &mut Http, request: &[u8]) {
    conn.send(request).await.unwrap();
    server.read_notification().await.unwrap();
    assert_eq!(conn.read_response().await.unwrap(), 202);
}

fn http_bridge(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("e2e/http");
    let (mut server, disc, mut conn, mut sse) = rt.block_on(async {
        let mut server = Server::spawn(&[plugin(), "http".into()]).await.unwrap();
        server.handshake().await.unwrap();
        let disc = server.discovery().await.unwrap();
        let conn = Http::connect(disc.port).await.unwrap();
        let sse = Sse::open(disc.port, &disc.secret).await.unwrap();
        (server, disc, conn, sse)
    });
    let request = http::inject_request(disc.port, &disc.secret, &frames::inject_body(1));
    rt.block_on(inject_and_read(&mut server, &mut conn, &request));

    g.bench_function("inject_to_stdout", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    inject_and_read(&mut server, &mut conn, &request).await;
                }
                t.elapsed()
            })
        })
    });

    let mut next_id = 2u64;
    g.bench_function("reply_to_sse", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let calls: Vec<(u64, Vec<u8>)> = (0..iters)
                    .map(|i| (next_id + i, frames::reply_call(next_id + i, "a reply")))
                    .collect();
                next_id += iters;
                let t = Instant::now();
                for (id, call) in &calls {
                    server.write(call).await.unwrap();
                    sse.next_named("reply").await.unwrap();
                    server.read_response(*id).await.unwrap();
                }
                t.elapsed()
            })
        })
    });
    drop((server, conn, sse));

    // The same inject, read by mock-claude as Claude Code 2.1.330 would.
    let profile = Profile::by_version(fixtures_dir(), "2.1.330").expect("profile");
    let dir = tempfile::tempdir().unwrap();
    let (session, disc, mut conn) = rt.block_on(async {
        let options = LaunchOptions::dev("opzero-channel", vec![plugin(), "http".into()])
            .env("OPZERO_CHANNEL_DIR", dir.path().display().to_string());
        let mut session = MockClaude::spawn(&profile, options).await.unwrap();
        let hs = session.handshake().await.unwrap();
        assert!(hs.gate.registered, "{}", hs.gate.log_line);
        let path = dir.path().join(format!("{}.json", session.session_id()));
        let deadline = Instant::now() + Duration::from_secs(20);
        let disc: channel_benches::servers::Discovery = loop {
            if let Ok(Ok(d)) = std::fs::read_to_string(&path).map(|t| serde_json::from_str(&t)) {
                break d;
            }
            assert!(Instant::now() < deadline, "no discovery file");
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let conn = Http::connect(disc.port).await.unwrap();
        (session, disc, conn)
    });
    let request = http::inject_request(disc.port, &disc.secret, &frames::inject_body(1));
    g.bench_function("inject_to_mock_claude_turn", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    conn.send(&request).await.unwrap();
                    let turn = session.next_turn(Duration::from_secs(20)).await.unwrap();
                    assert!(turn.text.starts_with("<channel"), "{}", turn.text);
                    assert_eq!(conn.read_response().await.unwrap(), 202);
                }
                t.elapsed()
            })
        })
    });
    drop(session);
    g.finish();
}

fn ws_bridge(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("e2e/ws");
    let (mut server, mut peer) = rt.block_on(async {
        let (listener, url) = aio::ws_listener().await.unwrap();
        let claude_session = uuid::Uuid::new_v4().to_string();
        let mut server = Server::spawn(&[
            plugin(),
            "ws".into(),
            "--url".into(),
            url,
            "--openclaw-session".into(),
            "bench::session".into(),
            "--claude-session".into(),
            claude_session,
        ])
        .await
        .unwrap();
        server.handshake().await.unwrap();
        let peer = WsPeer::accept(&listener).await.unwrap();
        (server, peer)
    });
    let inbound = r#"{"type":"inbound","content":"hello from the platform","meta":{"chat_id":"c1","user":"bench"}}"#;
    rt.block_on(async {
        peer.send_text(inbound.into()).await.unwrap();
        server.read_notification().await.unwrap();
    });
    g.bench_function("inbound_to_stdout", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    peer.send_text(inbound.into()).await.unwrap();
                    server.read_notification().await.unwrap();
                }
                t.elapsed()
            })
        })
    });
    let mut next_id = 2u64;
    g.bench_function("reply_to_frame", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let calls: Vec<(u64, Vec<u8>)> = (0..iters)
                    .map(|i| (next_id + i, frames::reply_call(next_id + i, "a reply")))
                    .collect();
                next_id += iters;
                let t = Instant::now();
                for (id, call) in &calls {
                    server.write(call).await.unwrap();
                    loop {
                        let frame = peer.next_text().await.unwrap();
                        if frame.contains("\"reply\"") {
                            break;
                        }
                    }
                    server.read_response(*id).await.unwrap();
                }
                t.elapsed()
            })
        })
    });
    drop((server, peer));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3));
    targets = http_bridge, ws_bridge
}
criterion_main!(benches);
