#!/bin/bash
# Suite C with the TUI closed vs open (alternated), then the daemon's CPU with 0 vs 5 TUIs.
cd /tmp/tuilive && . ./env.sh
DIRECT=$1; PROXY=$2; OUT=/tmp/tuibench
ENVS="XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR XDG_STATE_HOME=$XDG_STATE_HOME XDG_CONFIG_HOME=$XDG_CONFIG_HOME HOME=$HOME LANG=C.UTF-8"
tui_open() { for k in $(seq 1 $1); do tmux -S $OUT/tmux.sock new-session -d -s t$k -x 80 -y 24 "env $ENVS $C top"; done; sleep 1;
  tmux -S $OUT/tmux.sock send-keys -t t1 l; sleep 0.5; }   # the first one follows a log (re-read each second)
tui_close() { tmux -S $OUT/tmux.sock kill-server 2>/dev/null; sleep 0.3; }
for i in 1 2 3 4; do
  for cond in closed open; do
    [ $cond = open ] && tui_open 1
    $C bench --suite C --direct-url $DIRECT --proxy-url $PROXY --no-nginx --idle-connections 0 --cold-starts 0 --load-streams 0 \
      --workload chat_turn --workload agent_decode --runs 30 --warmup 2 --out $OUT/c --json > $OUT/c_${cond}_$i.json 2>/dev/null
    [ $cond = open ] && tmux -S $OUT/tmux.sock capture-pane -p -t t1 > $OUT/screen_during_$i.txt && tui_close
  done
done
DPID=$($C status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['daemon']['pid'])")
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
load() { end=$((SECONDS+$1)); n=0; while [ $SECONDS -lt $end ]; do curl -s -o /dev/null $PROXY/v1/chat/completions -d '{"model":"corral-tiny-bpe-4m-f16","messages":[{"role":"user","content":"hi"}],"max_tokens":32,"stream":true}'; n=$((n+1)); done; echo $n; }
for tuis in 0 5; do
  [ $tuis -gt 0 ] && tui_open $tuis
  a=$(ticks $DPID); sleep 20; b=$(ticks $DPID); echo "idle tuis=$tuis daemon_ticks_20s=$((b-a))"
  a=$(ticks $DPID); n=$(load 20); b=$(ticks $DPID); echo "load tuis=$tuis requests=$n daemon_ticks_20s=$((b-a))"
  if [ $tuis -gt 0 ]; then for p in $(pgrep -f "$C top"); do echo "tui pid $p ticks $(ticks $p)"; done; tui_close; fi
done
