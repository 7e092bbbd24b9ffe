//! Fuzz target: see `../checks/stdio_lines.rs` for what it drives and checks.
#![no_main]

#[path = "../checks/stdio_lines.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
