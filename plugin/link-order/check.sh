#!/usr/bin/env bash
# How much of plugin/link-order/symbols.txt a built channel-plugin still contains.
#
#   plugin/link-order/check.sh [BINARY]     (default target/release/channel-plugin)
#
# Symbol names carry hashes that change with the toolchain and dependency versions; names that
# no longer exist are skipped by the linker, and the layout (and the resident-memory figures in
# benches/RESULTS.md) quietly degrades. This says how far: it prints the match and exits 1 when
# under half the order file matches, so CI (benches/smoke.sh) notices. The fix is
# `plugin/link-order/train.sh`. Only meaningful for `cargo build --release -p channel-plugin`
# on x86_64-unknown-linux-gnu (see plugin/build.rs).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-target/release/channel-plugin}
[ -x "$bin" ] || { echo "check.sh: no binary at $bin (cargo build --release -p channel-plugin)" >&2; exit 1; }
command -v nm >/dev/null || { echo "check.sh: needs nm (binutils)" >&2; exit 1; }
ordered=$(grep -v '^#' plugin/link-order/symbols.txt | sort -u)
present=$(nm --defined-only "$bin" | awk '$2 ~ /^[tTwW]$/ {print $3}' | sort -u)
total=$(printf '%s\n' "$ordered" | grep -c . || true)
matched=$(comm -12 <(printf '%s\n' "$ordered") <(printf '%s\n' "$present") | grep -c . || true)
pct=$(( total > 0 ? matched * 100 / total : 0 ))
echo "link order: $matched of $total hot symbols found in $bin ($pct%)"
if (( pct < 50 )); then
    echo "link order: stale (toolchain or dependencies changed); run plugin/link-order/train.sh" >&2
    exit 1
fi
