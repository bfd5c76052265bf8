#!/usr/bin/env bash
# time-run.sh CLONE OUTPREFIX: time a fresh clone's `make run` until the streamed answer ends
# ("(the models are synthetic" line), machine-wide CPU from /proc/stat, then stop it.
set -u
dir=$1; out=$2
cpu() { awk '/^cpu /{print ($2+$3+$4+$7+$8)/100}' /proc/stat; }
c0=$(cpu); t0=$(date +%s.%N)
( cd "$dir" && exec setsid make run ) >"$out.log" 2>&1 &
pid=$!
while ! grep -q "the models are synthetic" "$out.log"; do
  kill -0 $pid 2>/dev/null || { echo "make run exited early" >>"$out.result"; break; }
  sleep 0.5
done
t1=$(date +%s.%N); c1=$(cpu)
kill -TERM -- -$pid 2>/dev/null; sleep 2; kill -KILL -- -$pid 2>/dev/null
pkill -f 'llama-server' ; pkill -f 'corral serve'
echo "wall_s=$(echo "$t1 - $t0" | bc) cpu_s=$(echo "$c1 - $c0" | bc) load=$(cut -d' ' -f1-3 /proc/loadavg) start=$(date -d @${t0%.*} +%T)" | tee -a "$out.result"
