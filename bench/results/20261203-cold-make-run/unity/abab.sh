#!/usr/bin/env bash
# A/B/A/B cold make run: A = e021802 (/tmp/coldA), B = main HEAD (fresh clone each round).
set -u
OUT=${1:-/tmp/cold-abab}; mkdir -p $OUT
T=$(cd "$(dirname "$0")/.." && pwd)/time-run.sh
export CCACHE_DISABLE=1
clean_state() { rm -rf ~/.local/share/corral ~/.config/corral ~/.local/state/corral; }
for r in 1 2; do
  (cd /tmp/coldA && git rev-parse --short HEAD && rm -rf build); clean_state; sleep 5
  bash $T /tmp/coldA $OUT/A$r; cp /tmp/coldA/build/release/.ninja_log $OUT/A$r.ninja_log
  rm -rf /tmp/coldB && git clone -q /work/main /tmp/coldB; clean_state; sleep 5
  bash $T /tmp/coldB $OUT/B$r; cp /tmp/coldB/build/release/.ninja_log $OUT/B$r.ninja_log
done
echo ALLDONE >> $OUT/done
