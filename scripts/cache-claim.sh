# shellcheck shell=bash
# Sourced by scripts/engine.sh and scripts/llama-ui.sh, which build into caches shared by
# every clone on this machine.
#
# cache_claim OUT MARKER: takes the cache folder's lock (one builder at a time; a second
# clone waits for the first), then prints OUT and exits 0 when OUT/MARKER appeared meanwhile;
# otherwise sets `work` to a fresh OUT.partial.PID folder, removed when the script exits, that
# the caller fills and moves to OUT as its last step (so OUT/MARKER means "finished").
cache_claim() {
  local out=$1 marker=$2
  mkdir -p "$(dirname "$out")"
  exec 9>"$(dirname "$out")/.lock"
  flock 9
  if [ -f "$out/$marker" ]; then
    echo "$out"
    exit 0
  fi
  work="$out.partial.$$"
  trap 'rm -rf "$work"' EXIT
  rm -rf "$out".partial.*
  mkdir -p "$work"
}
