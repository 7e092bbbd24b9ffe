//! Replays fuzz inputs on stable, in every test run: the committed seed corpora
//! (`mock-claude/fuzz/corpus/<target>/`, the seeds `ci/fuzz.sh` starts from) and every
//! crash input kept under `mock-claude/fuzz/regressions/<target>/`, through the very
//! checks the cargo-fuzz targets run (`mock-claude/fuzz/checks/`). A crash found by
//! `ci/fuzz.sh` becomes a regression test by copying its input into
//! `mock-claude/fuzz/regressions/<target>/`.

#[path = "../fuzz/checks/frame_reader.rs"]
mod frame_reader;
#[path = "../fuzz/checks/render.rs"]
mod render;

use std::path::{Path, PathBuf};

/// The targets replayed here; `every_fuzz_target_is_replayed` keeps it in step with
/// `fuzz/Cargo.toml`.
const REPLAYED: [&str; 2] = ["frame_reader", "render"];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Every file of `<fuzz>/corpus/<target>` and `<fuzz>/regressions/<target>`.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let fuzz = fuzz_dir();
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
fn frame_reader_inputs_hold() {
    println!("replayed {}", replay("frame_reader", frame_reader::check));
}

#[test]
fn render_inputs_hold() {
    println!("replayed {}", replay("render", render::check));
}

/// A new `[[bin]]` in `fuzz/Cargo.toml` without a replay test here would leave its
/// crash inputs unchecked on stable.
#[test]
fn every_fuzz_target_is_replayed() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    let mut in_bin = false;
    let mut targets = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if let Some(name) = line.strip_prefix("name = ").filter(|_| in_bin) {
            targets.push(name.trim_matches('"').to_string());
        }
    }
    targets.sort();
    assert_eq!(targets, REPLAYED, "fuzz targets vs. replayed targets");
}
