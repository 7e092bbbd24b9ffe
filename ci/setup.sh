#!/usr/bin/env bash
# Install everything the test suite needs beyond cargo/rustc/nextest/node/npm/python3.
# Idempotent and cache-friendly: re-running it on a prepared machine takes seconds.
#
#   bash ci/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

step "npm: official TypeScript MCP SDK for the interop test (plugin/tests/interop)"
npm ci --prefix plugin/tests/interop --no-audit --no-fund --loglevel=error

step "PyPI: websockets, the foreign WebSocket peer of the ws bridge tests"
if ! python3 -c 'import websockets' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check websockets
fi

step "npm: the real Claude Code release the real-client tests run (cached under ~/.cache/claude-code)"
# The newest profiled release (release gate, launch/spawn tests) and the first channels
# release 2.1.80 (launch test on the oldest supported client).
newest="$(ls fixtures/profiles | sed -n 's/^claude-code-\(.*\)\.json$/\1/p' | sort -t. -k1,1n -k2,2n -k3,3n | tail -n1)"
for version in "$newest" 2.1.80; do
  bash ci/install-claude-code.sh "$version" >/dev/null
  echo "Claude Code $version ready" >&2
done
