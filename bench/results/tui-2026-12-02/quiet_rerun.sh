#!/bin/bash
# Suite C with `corral top` closed vs open (following a log), alternated, on a private daemon.
set -u
C=/work/main/build/release/bin/corral
B=/tmp/m/box; rm -rf $B; mkdir -p $B/run $B/state $B/config $B/cache
chmod 700 $B/run
export XDG_RUNTIME_DIR=$B/run XDG_STATE_HOME=$B/state XDG_CONFIG_HOME=$B/config XDG_CACHE_HOME=$B/cache LANG=C.UTF-8
export CORRAL_LISTEN=127.0.0.1:18450
$C serve 2>$B/daemon.log & D=$!
for i in $(seq 1 200); do $C status --no-spawn >/dev/null 2>&1 && break; sleep 0.05; done
$C start corral-tiny-bpe >/dev/null
DIRECT=$($C ps --json | python3 -c "import json,sys; d=json.load(sys.stdin); m=d[0] if isinstance(d,list) else d['models'][0]; print(m.get('url') or m.get('direct_url'))")
PROXY=http://127.0.0.1:18450
echo "direct=$DIRECT proxy=$PROXY"
OUT=$B/out; mkdir -p $OUT
ENVS="XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR XDG_STATE_HOME=$XDG_STATE_HOME XDG_CONFIG_HOME=$XDG_CONFIG_HOME XDG_CACHE_HOME=$XDG_CACHE_HOME LANG=C.UTF-8"
tui_open() { tmux -S $OUT/tmux.sock new-session -d -s t1 -x 80 -y 24 "env $ENVS $C top"; sleep 1; tmux -S $OUT/tmux.sock send-keys -t t1 l; sleep 0.5; }
tui_close() { tmux -S $OUT/tmux.sock kill-server 2>/dev/null; sleep 0.3; }
for i in $(seq 1 ${PAIRS:-5}); do
  for cond in closed open; do
    [ $cond = open ] && tui_open
    $C bench --suite C --direct-url $DIRECT --proxy-url $PROXY --no-nginx --idle-connections 0 --cold-starts 0 --load-streams 0 \
      --workload chat_turn --workload agent_decode --runs ${RUNS:-30} --warmup 2 --out $OUT/c --json > $OUT/c_${cond}_$i.json 2>$OUT/c_${cond}_$i.err
    echo "pair $i $cond rc=$?"
    [ $cond = open ] && { tmux -S $OUT/tmux.sock capture-pane -p -t t1 > $OUT/screen_$i.txt; tui_close; }
  done
done
$C stop --all >/dev/null; kill -TERM $D; wait $D
