#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded time over its checked-in corpus (and any
# inputs it finds). A crash fails the run and leaves the reproducer in build/fuzz-crashes.
set -euo pipefail
build=${1:?usage: fuzz-smoke.sh BUILD-DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-20}
mkdir -p "$build/fuzz-crashes"
status=0
for target in "$build"/fuzz/fuzz_*; do
  [ -x "$target" ] || continue
  name=$(basename "$target")
  seeds="$here/tests/fuzz/corpus/$name"
  work="$build/fuzz-corpus/$name"
  mkdir -p "$work"
  if "$target" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
       -artifact_prefix="$build/fuzz-crashes/$name-" "$work" "$seeds" >"$build/$name.log" 2>&1; then
    echo "fuzz: $name ok ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/$name.log" | grep -o '[0-9]*$' || echo "?") runs in ${seconds}s)"
  else
    echo "fuzz: $name FAILED; log: $build/$name.log" >&2
    tail -n 40 "$build/$name.log" >&2
    status=1
  fi
done
exit $status
