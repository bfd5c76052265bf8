#!/usr/bin/env bash
# `make run`: the daemon with its proxy on loopback, the default synthetic models, and one
# streamed answer through the proxy; then it keeps serving until Ctrl+C.
set -euo pipefail
corral=${1:?usage: demo.sh PATH-TO-CORRAL}

owned=""
if "$corral" status --no-spawn >/dev/null 2>&1; then
  echo "corral: a daemon is already running; using it"
else
  "$corral" serve 2> >(sed 's/^/  [daemon] /' >&2) &
  owned=$!
  trap '[ -n "$owned" ] && kill -TERM $owned 2>/dev/null; wait 2>/dev/null' EXIT
  trap 'exit 0' INT TERM
  for _ in $(seq 1 200); do
    "$corral" status --no-spawn >/dev/null 2>&1 && break
    kill -0 "$owned" 2>/dev/null || { echo "corral: the daemon did not start (see above)" >&2; exit 65; }
    sleep 0.05
  done
fi

"$corral" --version | sed 's/^/  /'
echo "models:"
"$corral" list | sed 's/^/  /'
proxy=$("$corral" status --json | sed -n 's/.*"url": "\(http[^"]*\/v1\)".*/\1/p' | head -n1)
echo
echo "asking corral-tiny-spm through the proxy ($proxy), started on demand:"
printf '  '
"$corral" run corral-tiny-spm "Tell me about llamas." --max-tokens 48
echo
echo "(the models are synthetic: random weights, real tokenizers, real speed)"
echo "serving at $proxy - for example:"
echo "  curl -N $proxy/chat/completions -d '{\"model\":\"corral-tiny-bpe\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}'"
if [ -n "$owned" ]; then
  echo "press Ctrl+C to stop"
  wait "$owned"
fi
