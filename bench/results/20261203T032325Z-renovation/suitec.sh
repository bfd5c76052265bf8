#!/usr/bin/env bash
# Suite C before/after for issue 12: one llama-server child (started by this build's daemon),
# reached directly, through this build's daemon proxy, this build's `corral proxy --upstream`,
# and e021802's `corral proxy --upstream`, alternated in one run.
set -euo pipefail
NEW=${NEW:-/work/main/build/release/bin/corral}
OLD=${OLD:-/tmp/coldA/build/release/bin/corral}
RUNS=${RUNS:-60}
export CORRAL_MODEL_TTL=0 2>/dev/null || true
$NEW serve 2>/tmp/notes/suitec-daemon.log &
daemon=$!
p_old=; p_new=
trap 'kill $p_old $p_new 2>/dev/null; $NEW stop --all >/dev/null 2>&1; kill -TERM $daemon; wait' EXIT
for _ in $(seq 1 100); do $NEW status --no-spawn >/dev/null 2>&1 && break; sleep 0.1; done
$NEW start corral-tiny-spm >/dev/null
read -r name child < <($NEW ps --json | python3 -c 'import json,sys; m=json.load(sys.stdin)["models"][0]; print(m["name"], m["url"])')
echo "child: $name $child"
$OLD proxy --upstream $name=$child --listen 127.0.0.1:11460 2>/tmp/notes/suitec-old.log & p_old=$!
$NEW proxy --upstream $name=$child --listen 127.0.0.1:11470 2>/tmp/notes/suitec-new.log & p_new=$!
sleep 2
cd /work/main
$NEW bench --suite C --direct-url "$child" --proxy-url http://127.0.0.1:11450 \
  --extra-proxy "before-e021802=http://127.0.0.1:11460,pid=$p_old" \
  --extra-proxy "after-standalone=http://127.0.0.1:11470,pid=$p_new,vs=before-e021802" \
  --model $name --workload chat_turn --workload agent_decode --runs "$RUNS" --no-nginx \
  --idle-connections 0 --cold-starts 0 --out /tmp/notes/benchout
