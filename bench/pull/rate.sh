#!/usr/bin/env bash
# The download rate of `corral pull` against curl on the same file from the same local server.
#
# Makes a synthetic GGUF-named file (random bytes, SIZE_MIB MiB, default 1024) in a temp dir,
# serves it from tests/pull/fake_hub.py (the hub API + a CDN that redirects, as the real hub
# does) and, as an honest upper bound, from `python3 -m http.server` (a plain static server).
# Then PAIRS alternated pairs (default 5) of:
#   pull : corral pull acme/bench-GGUF/bench-Q4_K_M.gguf with HF_ENDPOINT at fake_hub and a temp
#          HF_HOME (hashes on the write path, fsyncs, renames into the hub cache)
#   curl : curl -L -o FILE from the same resolve URL (same redirect), then sha256sum FILE and
#          an fsync of FILE (`sync FILE`): the same work pull does, done one after the other
#   curl -o + sync : the same download made durable, no hash (what pull's fsync costs alone)
# and, once per pair, raw `curl -o` (no hash, no sync) from fake_hub and from the static server:
# the ceiling (the bytes only reach the page cache).
# Prints one line per run and a summary (median MB/s, min..max, ratio pull/curl). MB = 10^6 B.
# Everything is deleted afterwards (trap). Needs: build/release/bin/corral, curl, python3.
#
#   bench/pull/rate.sh [--pairs N] [--size-mib N] [--corral PATH] [--out DIR]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PAIRS=5
SIZE_MIB=1024
CORRAL=$ROOT/build/release/bin/corral
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --pairs) PAIRS=$2; shift 2 ;;
    --size-mib) SIZE_MIB=$2; shift 2 ;;
    --corral) CORRAL=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "usage: $0 [--pairs N] [--size-mib N] [--corral PATH] [--out DIR]" >&2; exit 64 ;;
  esac
done
[ -x "$CORRAL" ] || { echo "no corral binary at $CORRAL (cmake --build --preset release --target corral)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/corral-pull-rate.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

REPO=$WORK/repos/acme/bench-GGUF
mkdir -p "$REPO" "$WORK/static"
FILE=$REPO/bench-Q4_K_M.gguf
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$FILE"
ln "$FILE" "$WORK/static/bench.gguf"
BYTES=$(stat -c %s "$FILE")

# fake_hub.py lives as long as its stdin is open: a fifo held by a sleep.
mkfifo "$WORK/hub.in"
sleep 1000000 > "$WORK/hub.in" &
PIDS+=($!)
python3 "$ROOT/tests/pull/fake_hub.py" --root "$WORK/repos" < "$WORK/hub.in" > "$WORK/hub.ports" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/hub.ports" ] && break; sleep 0.1; done
read -r HUB_PORT _CDN_PORT < "$WORK/hub.ports"
HUB=http://localhost:$HUB_PORT
URL=$HUB/acme/bench-GGUF/resolve/main/bench-Q4_K_M.gguf

STATIC_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$WORK/static" && exec python3 -m http.server "$STATIC_PORT" --bind 127.0.0.1 >/dev/null 2>&1) &
PIDS+=($!)
for _ in $(seq 100); do curl -sf -o /dev/null -r 0-0 "http://127.0.0.1:$STATIC_PORT/bench.gguf" && break; sleep 0.1; done

# Warm-up: fake_hub hashes the file once (cached after), and the page cache holds the source.
curl -sf -o /dev/null "$HUB/api/models/acme/bench-GGUF/tree/main?recursive=true"
cat "$FILE" > /dev/null

now() { date +%s.%N; }
mbps() { python3 -c "print('%.1f' % ($BYTES / 1e6 / ($2 - $1)))"; }

run_pull() {
  local home=$WORK/hf-home
  rm -rf "$home"
  local t0 t1
  t0=$(now)
  env -u HF_HUB_CACHE -u HF_TOKEN HF_ENDPOINT=$HUB HF_HOME=$home \
    "$CORRAL" pull acme/bench-GGUF/bench-Q4_K_M.gguf --json > "$WORK/pull.log" 2>&1 ||
    { cat "$WORK/pull.log" >&2; exit 1; }
  t1=$(now)
  rm -rf "$home"
  mbps "$t0" "$t1"
}

run_curl() {  # curl + sha256sum + fsync: what pull does, in sequence
  local f=$WORK/curl.gguf
  local t0 t1
  t0=$(now)
  curl -sSfL -o "$f" "$URL"
  sha256sum "$f" > /dev/null
  sync "$f"
  t1=$(now)
  rm -f "$f"
  mbps "$t0" "$t1"
}

run_curl_sync() {  # curl -o + fsync, no hash: the durability pull pays, without the verification
  local f=$WORK/curl.gguf
  local t0 t1
  t0=$(now)
  curl -sSfL -o "$f" "$URL"
  sync "$f"
  t1=$(now)
  rm -f "$f"
  mbps "$t0" "$t1"
}

run_curl_only() {  # curl -o alone (no hash, no fsync): the raw transfer from the same server
  local f=$WORK/curl.gguf
  local t0 t1
  t0=$(now)
  curl -sSfL -o "$f" "$1"
  t1=$(now)
  rm -f "$f"
  mbps "$t0" "$t1"
}

printf '# %s MiB (%s bytes); %d alternated pairs; load before: %s\n' "$SIZE_MIB" "$BYTES" "$PAIRS" \
  "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-5s %-28s %10s\n' pair kind MB/s
PULL=() CURL=() SYNC=() RAW=() STATIC=()
for i in $(seq "$PAIRS"); do
  if [ $((i % 2)) -eq 1 ]; then
    p=$(run_pull); c=$(run_curl)
  else
    c=$(run_curl); p=$(run_pull)
  fi
  y=$(run_curl_sync)
  r=$(run_curl_only "$URL")
  s=$(run_curl_only "http://127.0.0.1:$STATIC_PORT/bench.gguf")
  PULL+=("$p") CURL+=("$c") SYNC+=("$y") RAW+=("$r") STATIC+=("$s")
  printf '%-5s %-28s %10s\n' "$i" "corral pull" "$p" "$i" "curl+sha256sum+sync" "$c" "$i" "curl -o + sync" "$y" \
    "$i" "curl -o (fake_hub)" "$r" "$i" "curl -o (http.server)" "$s"
done

python3 - "${PULL[*]}" "${CURL[*]}" "${SYNC[*]}" "${RAW[*]}" "${STATIC[*]}" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'EOF' | tee "$WORK/summary"
import statistics, sys
names = ["corral pull", "curl+sha256sum+sync", "curl -o + sync", "curl -o (fake_hub)", "curl -o (http.server)"]
rows = [[float(x) for x in a.split()] for a in sys.argv[1:6]]
print("\n| kind | median MB/s | min..max | runs |\n|---|---|---|---|")
for n, r in zip(names, rows):
    print("| %s | %.1f | %.1f..%.1f | %d |" % (n, statistics.median(r), min(r), max(r), len(r)))
m = [statistics.median(r) for r in rows]
print("\nratio pull / (curl+sha256sum+sync): %.2f" % (m[0] / m[1]))
print("ratio pull / (curl -o + sync): %.2f" % (m[0] / m[2]))
print("ratio pull / (curl -o, same server): %.2f" % (m[0] / m[3]))
print("load after: %s" % sys.argv[6])
EOF
if [ -n "$OUT" ]; then mkdir -p "$OUT"; cp "$WORK/summary" "$OUT/summary.md"; fi
