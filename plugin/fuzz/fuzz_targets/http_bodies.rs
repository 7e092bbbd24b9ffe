//! Fuzz target: see `../checks/http_bodies.rs` for what it drives and checks.
#![no_main]

#[path = "../checks/http_bodies.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
