//! The meta validator every bridge runs on caller meta before a push.

use channel_plugin::mcp::meta::{key_is_valid, normalize};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Map, Value};

fn meta(c: &mut Criterion) {
    let small = json!({"chat_id": "c1", "user": "alice"});
    let mut wide = Map::new();
    for i in 0..32 {
        wide.insert(
            format!("key_{i}"),
            Value::String(format!("value number {i}")),
        );
    }
    let wide = Value::Object(wide);
    let scalars = json!({"chat_id": "c1", "n": 12, "f": 1.5, "ok": true});
    let invalid = json!({"ok": "1", "bad-key": "x", "obj": {}, "9x": [1], "nul": null});

    let mut g = c.benchmark_group("meta/normalize");
    for (name, value, keys) in [
        ("small_2_keys", &small, 2u64),
        ("wide_32_keys", &wide, 32),
        ("scalars_to_strings_4_keys", &scalars, 4),
        ("invalid_5_keys", &invalid, 5),
    ] {
        g.throughput(Throughput::Elements(keys));
        g.bench_function(name, |b| {
            b.iter(|| normalize(Some(std::hint::black_box(value))))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("meta/key_is_valid");
    g.throughput(Throughput::Elements(1));
    for key in [
        "chat_id",
        "a_rather_long_attribute_name_42",
        "bad-key",
        "ключ",
    ] {
        g.bench_function(key, |b| b.iter(|| key_is_valid(std::hint::black_box(key))));
    }
    g.finish();
}

criterion_group!(benches, meta);
criterion_main!(benches);
