#!/usr/bin/env bash
# The main job of README.md: build everything, then run the conformance gate against our own
# plugin (both bridges) under every Claude Code profile in fixtures/profiles/.
#
#   bash ci/conformance.sh            # reports in target/conformance/{http,ws}/report.html
#
# Exit status is channel-conformance's: 0 all required checks pass, 1 a required check failed,
# 2 stale baseline, 3 the harness could not run, 4 usage error.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --workspace --bins
out="$target/conformance"
rm -rf "$out"

echo "==> channel-plugin http, every profile" >&2
"$target/debug/channel-conformance" \
  --plugin "$target/debug/channel-plugin http --permission-relay --discovery-dir {dir}" \
  --trigger "http-discovery:$out/discovery" \
  --profile all --baseline fixtures/baselines/channel-plugin.json \
  --out "$out/http"

echo "==> channel-plugin ws, every profile" >&2
"$target/debug/channel-conformance" \
  --plugin "$target/debug/channel-plugin ws --permission-relay" \
  --trigger ws-bridge \
  --profile all --baseline fixtures/baselines/channel-plugin.json \
  --out "$out/ws"

echo "reports: $out/http/report.html $out/ws/report.html" >&2
