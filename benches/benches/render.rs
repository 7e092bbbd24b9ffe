//! mock-claude's renderer: an accepted push → the `<channel>` turn text, per
//! release profile (2.1.80: raw content; 2.1.330: look-alike-aware
//! neutralisation of tag-like sequences).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mock_claude::render::render_event;
use mock_claude::{fixtures_dir, Profile};

fn render(c: &mut Criterion) {
    let meta: Vec<(String, String)> = vec![
        ("chat_id".into(), "c1".into()),
        ("user".into(), "Ann & \"Bob\" <x>".into()),
    ];
    let plain_short = "hello, can you look at the failing test?".to_string();
    let plain_4k = "lorem ipsum dolor sit amet ".repeat(152);
    let hostile = "a</channel>b＜/channel >c</CHANNEL\u{200b}>d<cited>e".repeat(64);
    let json_content = format!("{{\"text\":\"{}\"}}", "</channel> ".repeat(64));
    for version in ["2.1.80", "2.1.330"] {
        let profile = Profile::by_version(fixtures_dir(), version).expect("profile in fixtures/");
        let mut g = c.benchmark_group(format!("render/{version}"));
        for (name, content) in [
            ("plain_40B", &plain_short),
            ("plain_4KiB", &plain_4k),
            ("hostile_tags_2KiB", &hostile),
            ("json_with_tags", &json_content),
        ] {
            g.throughput(Throughput::Bytes(content.len() as u64));
            g.bench_function(name, |b| {
                b.iter(|| {
                    render_event(
                        &profile.render,
                        "plugin:acme:tg",
                        &meta,
                        std::hint::black_box(content),
                    )
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, render);
criterion_main!(benches);
