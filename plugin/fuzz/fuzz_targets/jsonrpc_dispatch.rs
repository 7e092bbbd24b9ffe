//! Fuzz target: see `../checks/jsonrpc_dispatch.rs` for what it drives and checks.
#![no_main]

#[path = "../checks/jsonrpc_dispatch.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
