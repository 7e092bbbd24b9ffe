#!/usr/bin/env bash
# Install a Claude Code release into the cache the release gate uses (reused when present).
#
#   ci/install-claude-code.sh 2.1.330
#   ci/install-claude-code.sh latest
set -euo pipefail
version="${1:?usage: ci/install-claude-code.sh VERSION|latest}"
if [ "$version" = latest ]; then
  version="$(npm view @anthropic-ai/claude-code version)"
fi
cache="${CLAUDE_CODE_CACHE:-$HOME/.cache/claude-code}"
dir="$cache/$version/node_modules/@anthropic-ai"
if [ -x "$dir/claude-code-linux-x64/claude" ] || [ -f "$dir/claude-code/cli.js" ]; then
  echo "Claude Code $version already in $cache/$version" >&2
else
  mkdir -p "$cache/$version"
  npm install --prefix "$cache/$version" "@anthropic-ai/claude-code@$version" >&2
fi
echo "$version"
