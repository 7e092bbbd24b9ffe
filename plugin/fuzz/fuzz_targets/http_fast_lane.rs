//! Fuzz target: see `../checks/http_fast_lane.rs` for what it drives and checks.
#![no_main]

#[path = "../checks/http_fast_lane.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
