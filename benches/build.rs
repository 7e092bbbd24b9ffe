//! Builds the C floor server (`floor/floor.c`) with the system C compiler so
//! the driver and the e2e benches find it at `env!("CHANNEL_FLOOR_BIN")`
//! without a separate set-up step. No compiler: the path is empty and the
//! floor is reported as unavailable at run time (never a build failure).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=floor/floor.c");
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("floor");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-O2", "-Wall", "-o"])
        .arg(&out)
        .arg("floor/floor.c")
        .status();
    match status {
        Ok(s) if s.success() => println!("cargo:rustc-env=CHANNEL_FLOOR_BIN={}", out.display()),
        other => {
            println!("cargo:warning=could not build the C floor server with {cc} ({other:?}); the floor will be skipped");
            println!("cargo:rustc-env=CHANNEL_FLOOR_BIN=");
        }
    }
}
