#!/bin/bash
# Suite C with the web dashboard closed vs open (headless Chromium on /ui/#charts, charts
# redrawn every second from the event feed), alternated, on a private daemon. Like
# bench/results/tui-2026-12-02/quiet_rerun.sh for the terminal dashboard.
#   bench/results/web-2026-12-02/run.sh [PATH-TO-CORRAL]   (PAIRS=3 RUNS=15 by default; WORKLOADS="--workload chat_turn")
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
C=${1:-$root/build/release/bin/corral}
NPM=$root/build/web-npm/node_modules
B=/tmp/corral-web-bench; rm -rf $B; mkdir -p $B/run $B/state $B/config $B/cache
chmod 700 $B/run
export XDG_RUNTIME_DIR=$B/run XDG_STATE_HOME=$B/state XDG_CONFIG_HOME=$B/config XDG_CACHE_HOME=$B/cache LANG=C.UTF-8
export CORRAL_LISTEN=127.0.0.1:18451
$C serve 2>$B/daemon.log & D=$!
for i in $(seq 1 200); do $C status --no-spawn >/dev/null 2>&1 && break; sleep 0.05; done
$C start corral-tiny-bpe >/dev/null
DIRECT=$($C ps --json | python3 -c "import json,sys; d=json.load(sys.stdin); m=d[0] if isinstance(d,list) else d['models'][0]; print(m.get('url') or m.get('direct_url'))")
PROXY=http://127.0.0.1:18451
echo "direct=$DIRECT proxy=$PROXY"
OUT=${OUT:-$here/raw}; mkdir -p $OUT
W=""
web_open() { node $here/open_dashboard.mjs "$PROXY/ui/#charts" $NPM $OUT/charts_open_$i.png > $OUT/browser.log 2>&1 & W=$!; for _ in $(seq 1 100); do grep -q 'dashboard open' $OUT/browser.log && break; sleep 0.1; done; sleep 1; }
web_close() { [ -n "$W" ] && kill -TERM $W 2>/dev/null; wait $W 2>/dev/null; W=""; sleep 0.3; }
for i in $(seq 1 ${PAIRS:-3}); do
  for cond in closed open; do
    [ $cond = open ] && web_open
    $C bench --suite C --direct-url $DIRECT --proxy-url $PROXY --no-nginx --idle-connections 0 --cold-starts 0 --load-streams 0 \
      ${WORKLOADS:---workload chat_turn --workload agent_decode} --runs ${RUNS:-15} --warmup 2 --out $B/c --json > $OUT/c_${cond}_$i.json 2>$OUT/c_${cond}_$i.err
    echo "pair $i $cond rc=$?"
    [ $cond = open ] && web_close
  done
done
$C stop --all >/dev/null; kill -TERM $D; wait $D
