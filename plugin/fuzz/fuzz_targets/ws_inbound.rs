//! Fuzz target: see `../checks/ws_inbound.rs` for what it drives and checks.
#![no_main]

#[path = "../checks/ws_inbound.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
