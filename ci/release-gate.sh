#!/usr/bin/env bash
# Run the real-Claude-Code release gate for one release.
#
#   ci/release-gate.sh 2.1.330      # a given release
#   ci/release-gate.sh latest       # whatever npm calls latest
#   ci/release-gate.sh              # the newest release with a committed profile
#
# Thin on purpose: the gate is the Rust binary `release-gate` (crate conformance). This script
# builds it and the plugin, then runs it; the release is npm-installed into
# ~/.cache/claude-code/<VERSION> (override: CLAUDE_CODE_CACHE) unless already there.
# Reports land in reports/<VERSION>/ (report.json, report.md, recordings/, derived profile).
# Exit: 0 pass, 3 drift (profile changed), 2 a check failed, 1 error.
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-newest-committed}"
cargo build --quiet -p channel-conformance --bin release-gate
cargo build --quiet -p channel-plugin --bin channel-plugin
target_dir="${CARGO_TARGET_DIR:-target}"
exec "$target_dir/debug/release-gate" gate --version "$version" --install
