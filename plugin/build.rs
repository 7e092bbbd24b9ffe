//! Link-time layout of the `channel-plugin` binary, for a small resident set.
//!
//! Most of the plugin's memory is its own code: the kernel maps executable
//! pages 64 KiB at a time around each one touched, and the functions a session
//! runs are scattered over ~4 MB of `.text`. Two linker options fix most of it:
//!
//! * `--symbol-ordering-file=link-order/symbols.txt`: the functions a session
//!   executes (recorded by `link-order/train.sh`) go first, together;
//! * `-z pack-relative-relocs` (DT_RELR): ~230 KB of relocation entries the
//!   loader would read at every start shrink to a few KB.
//!
//! Both are lld options (rust-lld is the default linker for
//! x86_64-unknown-linux-gnu since Rust 1.90). Anywhere else (another target,
//! an older rustc, a linker chosen by the user) the binary is linked as usual:
//! the layout changes memory use only, never behaviour. DT_RELR also needs a
//! glibc that understands it (2.36+), so it is used only when the build
//! machine's glibc does. `CHANNEL_PLUGIN_LINK_LAYOUT=0` turns both off.

use std::env;
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=link-order/symbols.txt");
    println!("cargo:rerun-if-env-changed=CHANNEL_PLUGIN_LINK_LAYOUT");
    if layout_unavailable().is_some() {
        // Not a warning: an ordinary build on another platform is fine as is.
        return;
    }
    let order = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("link-order/symbols.txt");
    let order = order.to_string_lossy();
    if order.contains(',') {
        println!("cargo:warning=channel-plugin: the checkout path contains a comma; linking without the symbol order");
    } else {
        println!("cargo:rustc-link-arg-bin=channel-plugin=-Wl,--symbol-ordering-file={order}");
        // Symbols of another toolchain or dependency set are skipped; the
        // bench smoke reports how many still match.
        println!("cargo:rustc-link-arg-bin=channel-plugin=-Wl,--no-warn-symbol-ordering");
    }
    if glibc_understands_relr() {
        println!("cargo:rustc-link-arg-bin=channel-plugin=-Wl,-z,pack-relative-relocs");
    }
}

/// Why the lld options cannot be used here, if they cannot.
fn layout_unavailable() -> Option<String> {
    if env::var("CHANNEL_PLUGIN_LINK_LAYOUT").as_deref() == Ok("0") {
        return Some("CHANNEL_PLUGIN_LINK_LAYOUT=0".into());
    }
    let target = env::var("TARGET").unwrap_or_default();
    if target != "x86_64-unknown-linux-gnu" {
        return Some(format!("target {target}"));
    }
    if env::var_os("RUSTC_LINKER").is_some() {
        return Some("a linker is configured".into());
    }
    let rustflags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if ["fuse-ld", "linker", "link-self-contained"]
        .iter()
        .any(|flag| rustflags.contains(flag))
    {
        return Some("RUSTFLAGS choose the linker".into());
    }
    match rustc_minor() {
        Some(minor) if minor >= 90 => None,
        Some(minor) => Some(format!("rustc 1.{minor} links with the system linker")),
        None => Some("rustc version unknown".into()),
    }
}

fn rustc_minor() -> Option<u32> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("-vV").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let release = text.lines().find_map(|l| l.strip_prefix("release: "))?;
    release.split('.').nth(1)?.parse().ok()
}

/// glibc 2.36+ exports the `GLIBC_ABI_DT_RELR` version a DT_RELR binary needs.
fn glibc_understands_relr() -> bool {
    [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/libc.so.6",
        "/usr/lib64/libc.so.6",
    ]
    .iter()
    .find_map(|path| std::fs::read(path).ok())
    .is_some_and(|libc| {
        libc.windows(b"GLIBC_ABI_DT_RELR".len())
            .any(|w| w == b"GLIBC_ABI_DT_RELR")
    })
}
