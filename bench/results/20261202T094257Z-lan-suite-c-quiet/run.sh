#!/usr/bin/env bash
# Issue 13: suite C with the TLS + key columns on a quiet machine. A private daemon listens on
# loopback (plain, no key) and on our own veth address 10.213.250.1 (TLS + key; plain + key).
set -euo pipefail
B=${B:-/work/main/build/release/bin/corral}
RUNS=${RUNS:-30}
OUT=${OUT:-/work/main/bench/results}
T=$(mktemp -d /tmp/lanc.XXXX)
export HOME=$T/home XDG_CONFIG_HOME=$T/config XDG_DATA_HOME=$T/data XDG_STATE_HOME=$T/state XDG_CACHE_HOME=$T/cache XDG_RUNTIME_DIR=$T/run
mkdir -p $HOME $XDG_CONFIG_HOME $XDG_DATA_HOME/corral/models $XDG_STATE_HOME $XDG_CACHE_HOME $XDG_RUNTIME_DIR; chmod 700 $XDG_RUNTIME_DIR
cp ~root/.local/share/corral/models/corral-tiny-spm-q8_0.gguf $XDG_DATA_HOME/corral/models/
ns=corral-lanc
cleanup() { $B daemon stop >/dev/null 2>&1 || true; ip link del clanc0 2>/dev/null || true; ip netns del $ns 2>/dev/null || true; }
trap cleanup EXIT
cleanup
ip netns add $ns; ip link add clanc0 type veth peer name clanc1; ip link set clanc1 netns $ns
ip addr add 10.213.250.1/24 dev clanc0; ip link set clanc0 up
ip netns exec $ns ip addr add 10.213.250.2/24 dev clanc1; ip netns exec $ns ip link set clanc1 up
export CORRAL_BENCH_KEY=$($B keys create --name bench --scope inference --json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"key\"])")
CORRAL_LISTEN='127.0.0.1:18450,https://10.213.250.1:18451,10.213.250.1:18452' $B daemon start
CA=$XDG_CONFIG_HOME/corral/tls/ca.pem
ls -la $CA
$B bench --suite C --model corral-tiny-spm-24m-q8_0 --workload chat_turn --runs $RUNS --warmup 2 \
  --cold-starts 0 --idle-connections 0 --load-streams 0 --out "$OUT" \
  --extra-proxy "proxy-tls-key=https://10.213.250.1:18451,ca=$CA,key-env=CORRAL_BENCH_KEY,vs=proxy" \
  --extra-proxy "proxy-key=http://10.213.250.1:18452,key-env=CORRAL_BENCH_KEY,vs=proxy"
