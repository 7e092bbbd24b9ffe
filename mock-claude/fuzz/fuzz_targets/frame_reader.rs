//! Fuzz target: see `../checks/frame_reader.rs` for what it drives and checks.
#![no_main]

#[path = "../checks/frame_reader.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
