#!/usr/bin/env bash
# Smoke of the benches for CI, so they never rot: every criterion bench runs once as a test
# (debug build), then channel-bench runs one round with tiny counts against all four servers.
# The numbers it prints mean nothing; it fails only when a bench or a server run breaks, or when
# the plugin's link order (plugin/link-order/) no longer matches the toolchain's symbols.
# Needs the workspace binaries (`cargo build --workspace --bins`), node and npm; builds the
# release plugin the way users do (alone: built with the benches, cargo would unify features).
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --prefix benches/reference-ts --no-audit --no-fund --loglevel=error
cargo test -p channel-benches --benches
cargo build -q --release -p channel-plugin
bash plugin/link-order/check.sh target/release/channel-plugin
cargo run -q -p channel-benches --bin channel-bench -- --rounds 1 --warmup 20 \
    --latency-events 200 --rss-events 300 --throughput-events 2000 --out target/channel-bench-smoke
