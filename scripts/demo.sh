#!/usr/bin/env bash
# `make run`: starts the pinned llama-server on the default synthetic model, streams one
# chat answer to the terminal, then keeps serving until Ctrl+C.
# (This grows into `corral serve` + `corral run` through the proxy as those land.)
set -euo pipefail
corral=${1:?usage: demo.sh PATH-TO-CORRAL}
dir="${CORRAL_MODEL_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/corral/models}"
model="$dir/corral-tiny-spm-q8_0.gguf"
server=$("$corral" version --json | sed -n 's/.*"path": "\(.*llama-server\)".*/\1/p' | head -n1)
[ -x "$server" ] || { echo "demo: no llama-server found (corral version says why)" >&2; exit 70; }

log=$(mktemp -t corral-demo.XXXXXX.log)
"$server" -m "$model" --host 127.0.0.1 --port 0 -c 2048 >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
trap 'exit 0' INT TERM

url=""
for _ in $(seq 1 600); do
  url=$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$log" | head -n1 | sed 's/listening on //') || true
  [ -n "$url" ] && curl -sf "$url/health" >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || { cat "$log" >&2; exit 67; }
  sleep 0.05
done
"$corral" --version | sed 's/^/  /'
echo "model:   $model"
echo "serving: $url  (OpenAI API: $url/v1/chat/completions)"
printf 'answer:  '
curl -sN "$url/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"messages":[{"role":"user","content":"Tell me about llamas."}],"max_tokens":48,"stream":true,"temperature":0}' |
  while IFS= read -r line; do
    case "$line" in
      data:*'"content":"'*) chunk=${line#*\"content\":\"}; printf '%s' "${chunk%%\"*}" ;;
    esac
  done
echo
echo "(the model is synthetic: random weights, real tokenizer, real speed)"
echo "still serving at $url; press Ctrl+C to stop"
wait $pid
