#!/usr/bin/env bash
# Bounded fuzzing of every cargo-fuzz target in the repo (plugin/fuzz, mock-claude/fuzz).
#
#   ci/fuzz.sh [SECONDS_PER_TARGET]     default 30; 8 targets
#
# Needs the nightly toolchain and cargo-fuzz (installed from crates.io if missing).
# Build output and the growing corpora live under ~/.cache/channel-fuzz (reused between
# runs; the committed seeds in <crate>/fuzz/corpus/<target>/ are read, never written).
# A crash stops the script with a non-zero exit; the input is in
# <crate>/fuzz/artifacts/<target>/ and the reproduce command is printed. Each crash must
# become a regression test: copy the input into <crate>/fuzz/regressions/<target>/, which
# <crate>/tests/regressions_fuzz.rs replays on stable in every test run (exceptions in
# <crate>/fuzz/regressions/README.md).
#
# Env: FUZZ_SANITIZER (none | address, default none: 5-8x more inputs per second on the
# heavy targets; both crates are safe Rust but for a few libc calls. Use address for long runs), FUZZ_CACHE (default
# ~/.cache/channel-fuzz), FUZZ_TARGETS (space-separated subset, e.g. "stdio_lines render").
set -euo pipefail

secs=${1:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${FUZZ_CACHE:-$HOME/.cache/channel-fuzz}
sanitizer=${FUZZ_SANITIZER:-none}
export CARGO_TARGET_DIR=$cache/target
mkdir -p "$cache"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

start_all=$(date +%s)
summary=()
for crate in plugin mock-claude; do
  cd "$root/$crate"
  t0=$(date +%s)
  echo "== building $crate/fuzz (nightly, sanitizer=$sanitizer)"
  if ! cargo +nightly fuzz build -s "$sanitizer" >"$cache/$crate-build.log" 2>&1; then
    tail -n 40 "$cache/$crate-build.log"
    echo "!! fuzz build of $crate failed"
    exit 1
  fi
  summary+=("build $crate/fuzz: $(( $(date +%s) - t0 ))s")
  for target in $(cargo +nightly fuzz list); do
    if [[ -n "${FUZZ_TARGETS:-}" && " $FUZZ_TARGETS " != *" $target "* ]]; then
      continue
    fi
    corpus=$cache/corpus/$crate/$target
    mkdir -p "$corpus"
    log=$cache/$crate-$target.log
    echo "== fuzzing $crate/$target for ${secs}s"
    if ! cargo +nightly fuzz run -s "$sanitizer" "$target" "$corpus" "fuzz/corpus/$target" -- \
        -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
      tail -n 60 "$log"
      echo "!! $crate/$target found a failure. Input(s): $(ls -t fuzz/artifacts/"$target"/ 2>/dev/null | head -3 | tr '\n' ' ')"
      echo "!! reproduce: (cd $crate && cargo +nightly fuzz run $target fuzz/artifacts/$target/<file>)"
      echo "!! keep it as a regression test: copy it into $crate/fuzz/regressions/$target/ (see $crate/fuzz/regressions/README.md)"
      exit 1
    fi
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || true)
    cov=$(grep -oE 'DONE[[:space:]]+cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1 | sed -E 's/DONE[[:space:]]+//' || true)
    line="FUZZ-FIGURE $crate/$target seconds=$secs execs=${execs:-?} ${cov:-}"
    echo "$line"
    summary+=("$line")
  done
done
echo
echo "== fuzz summary (total $(( $(date +%s) - start_all ))s)"
printf '%s\n' "${summary[@]}"
