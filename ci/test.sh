#!/usr/bin/env bash
# The test command of README.md: set up, build every binary, run every test.
#
#   bash ci/test.sh            # all tests
#   bash ci/test.sh -p mock-claude   # extra args go to `cargo nextest run`
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
# Tests spawn the binaries of other crates (mock-claude drives channel-plugin by path,
# never by linking it), so every binary is built before any test runs.
cargo build --workspace --bins
# setup.sh installed the newest profiled Claude Code release, so the real-client lane runs.
export RELEASE_GATE_REAL=1
cargo nextest run --workspace --no-fail-fast "$@"
