//! The stdio line codec: decoding (the core's `FrameReader`, then JSON and
//! JSON-RPC classification as the core does for every incoming line) and
//! encoding (a channel notification to its line), in MB/s and frames/s;
//! plus push → stdout line through a whole in-memory `Core`.

use std::sync::Arc;
use std::time::Duration;

use channel_plugin::bridge::{
    Behavior, Bridge, ChannelEvent, PermissionRequest, Reply, ReplyDelivery, ReplyError,
};
use channel_plugin::mcp::codec::{Frame, FrameReader, DEFAULT_MAX_LINE_BYTES};
use channel_plugin::mcp::jsonrpc::{classify, notification_frame};
use channel_plugin::mcp::{memory, Core, CoreConfig, CHANNEL_METHOD};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::json;

const FRAMES: usize = 1000;

/// `FRAMES` lines as Claude Code writes them: tool calls of a few hundred bytes.
fn input(content_len: usize) -> Vec<u8> {
    let text = "x".repeat(content_len);
    let mut out = Vec::new();
    for id in 0..FRAMES {
        let frame = json!({"method":"tools/call","params":{"name":"reply","arguments":{"text":text,"chat_id":"c1"},
            "_meta":{"claudecode/toolUseId":format!("toolu_{id:020}"),"progressToken":id}},"jsonrpc":"2.0","id":id});
        out.extend(serde_json::to_vec(&frame).unwrap());
        out.push(b'\n');
    }
    out
}

fn decode(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for content_len in [64usize, 4096] {
        let data = input(content_len);
        for (unit, throughput) in [
            ("bytes", Throughput::Bytes(data.len() as u64)),
            ("frames", Throughput::Elements(FRAMES as u64)),
        ] {
            let mut g = c.benchmark_group(format!("codec/decode/{unit}"));
            g.throughput(throughput);
            g.bench_function(format!("lines/content_{content_len}"), |b| {
                b.to_async(&rt).iter(|| async {
                    let mut reader = FrameReader::new(&data[..], DEFAULT_MAX_LINE_BYTES);
                    let mut n = 0;
                    while let Some(Frame::Line(line)) = reader.next_frame().await.unwrap() {
                        n += line.len();
                    }
                    n
                })
            });
            g.bench_function(format!("lines+json+classify/content_{content_len}"), |b| {
                b.to_async(&rt).iter(|| async {
                    let mut reader = FrameReader::new(&data[..], DEFAULT_MAX_LINE_BYTES);
                    let mut n = 0;
                    while let Some(Frame::Line(line)) = reader.next_frame().await.unwrap() {
                        let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
                        n += classify(value).is_ok() as usize;
                    }
                    n
                })
            });
            g.finish();
        }
    }
}

fn encode(c: &mut Criterion) {
    for content_len in [64usize, 4096] {
        let content = "y".repeat(content_len);
        let params = json!({"content": content, "meta": {"chat_id": "c1", "user": "someone"}});
        let line_len = serde_json::to_vec(&notification_frame(CHANNEL_METHOD, params.clone()))
            .unwrap()
            .len()
            + 1;
        for (unit, throughput) in [
            ("bytes", Throughput::Bytes(line_len as u64)),
            ("frames", Throughput::Elements(1)),
        ] {
            let mut g = c.benchmark_group(format!("codec/encode/{unit}"));
            g.throughput(throughput);
            g.bench_function(format!("notification/content_{content_len}"), |b| {
                b.iter_batched(
                    || params.clone(),
                    |params| {
                        let mut line =
                            serde_json::to_vec(&notification_frame(CHANNEL_METHOD, params))
                                .unwrap();
                        line.push(b'\n');
                        line
                    },
                    BatchSize::SmallInput,
                )
            });
            g.finish();
        }
    }
}

/// A bridge that accepts every reply and ignores permission traffic.
struct NullBridge;

impl Bridge for NullBridge {
    fn reply(&self, _reply: Reply) -> Result<ReplyDelivery, ReplyError> {
        Ok(ReplyDelivery::Sent {
            detail: "bench".into(),
        })
    }
    fn permission_request(&self, _request: &PermissionRequest) {}
    fn permission_resolved(&self, _request_id: &str, _behavior: Behavior) {}
}

/// `CoreHandle::push` → the notification line read back by an in-memory
/// client: the whole encode path (meta map, JSON, queue, single writer).
fn core_push(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("codec/core_push_to_line");
    const BATCH: u64 = 256;
    g.throughput(Throughput::Elements(BATCH));
    let (handle, mut client) = rt.block_on(async {
        let mut config = CoreConfig::new("bench");
        config.ready_settle = Duration::ZERO;
        config.max_queued = 1 << 20;
        let (core, handle) = Core::new(config);
        let (io, mut client) = memory::memory(1 << 20);
        tokio::spawn(core.serve(io.input, io.output, Arc::new(NullBridge), std::future::pending()));
        client.send(&json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}})).await;
        client.recv().await.unwrap();
        client.send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"})).await;
        client.send(&json!({"jsonrpc":"2.0","id":1,"method":"tools/list"})).await;
        client.recv().await.unwrap();
        while !handle.status().ready {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        (handle, client)
    });
    g.bench_function("push_256", |b| {
        b.iter(|| {
            rt.block_on(async {
                for i in 0..BATCH {
                    handle
                        .push(ChannelEvent {
                            content: format!("event {i}"),
                            meta: vec![("chat_id".into(), "c1".into())],
                        })
                        .unwrap();
                }
                for _ in 0..BATCH {
                    client.recv().await.unwrap();
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, decode, encode, core_push);
criterion_main!(benches);
