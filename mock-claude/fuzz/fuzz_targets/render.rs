//! Fuzz target: see `../checks/render.rs` for what it drives and checks.
#![no_main]

#[path = "../checks/render.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
