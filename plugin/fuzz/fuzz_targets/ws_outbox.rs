//! Fuzz target: see `../checks/ws_outbox.rs` for what it drives and checks.
#![no_main]

#[path = "../checks/ws_outbox.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
