//! Replays fuzz inputs on stable, in every test run: the committed seed
//! corpora and every crash input kept under `plugin/fuzz/regressions/<target>/`,
//! through the very checks the fuzz targets run (`plugin/fuzz/checks/`).
//! A crash found by `ci/fuzz.sh` becomes a regression test by copying its
//! input into `plugin/fuzz/regressions/<target>/`.

#[path = "../fuzz/checks/http_bodies.rs"]
mod http_bodies;
#[path = "../fuzz/checks/http_fast_lane.rs"]
mod http_fast_lane;
#[path = "../fuzz/checks/jsonrpc_dispatch.rs"]
mod jsonrpc_dispatch;
#[path = "../fuzz/checks/stdio_lines.rs"]
mod stdio_lines;
#[path = "../fuzz/checks/ws_inbound.rs"]
mod ws_inbound;
#[path = "../fuzz/checks/ws_outbox.rs"]
mod ws_outbox;

use std::path::Path;

/// Every file of `<fuzz>/corpus/<target>` and `<fuzz>/regressions/<target>`.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in [
        fuzz.join("corpus").join(target),
        fuzz.join("regressions").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let inputs = inputs(target);
    assert!(!inputs.is_empty(), "no seeds for {target}");
    for (name, data) in &inputs {
        let result = std::panic::catch_unwind(|| check(data));
        assert!(
            result.is_ok(),
            "{target}: input {name} breaks a property (see the panic above)"
        );
    }
    inputs.len()
}

#[test]
fn stdio_lines_inputs_hold() {
    println!("replayed {}", replay("stdio_lines", stdio_lines::check));
}

#[test]
fn jsonrpc_dispatch_inputs_hold() {
    println!(
        "replayed {}",
        replay("jsonrpc_dispatch", jsonrpc_dispatch::check)
    );
}

#[test]
fn http_bodies_inputs_hold() {
    println!("replayed {}", replay("http_bodies", http_bodies::check));
}

#[test]
fn http_fast_lane_inputs_hold() {
    println!(
        "replayed {}",
        replay("http_fast_lane", http_fast_lane::check)
    );
}

#[test]
fn ws_inbound_inputs_hold() {
    println!("replayed {}", replay("ws_inbound", ws_inbound::check));
}

#[test]
fn ws_outbox_inputs_hold() {
    println!("replayed {}", replay("ws_outbox", ws_outbox::check));
}
