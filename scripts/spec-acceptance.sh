#!/bin/bash
# By-hand acceptance of the synthetic speculative-decoding pair (docs/spec.md) with the pinned
# llama-server. Run from the repository root; PRESET=tiny (default) or another preset.
set -e
B=${CORRAL:-build/release/bin/corral}
LS=${LLAMA_SERVER:-$(scripts/engine.sh --print)/bin/llama-server}
D=${OUT:-$(mktemp -d)}
P=${PRESET:-tiny}
EXTRA=${EXTRA:-}
$B model synth --preset $P $EXTRA --identity-from 1 --seed 7 --name spec-target -o $D/target-$P.gguf --force >/dev/null
$B model synth --preset $P $EXTRA --n-layer 1 --seed 7 --name spec-draft -o $D/draft-$P.gguf --force >/dev/null
$B model synth --preset $P $EXTRA --seed 7 --name spec-plain -o $D/plain-$P.gguf --force >/dev/null
run() {  # model temp label
  $LS -m $1 --host 127.0.0.1 --port 18777 -c 2048 --spec-type draft-simple --spec-draft-model $D/draft-$P.gguf >$D/server.log 2>&1 &
  pid=$!
  for i in $(seq 1 120); do curl -sf 127.0.0.1:18777/health >/dev/null && break; sleep 0.5; done
  for t in $2; do
    curl -s 127.0.0.1:18777/v1/chat/completions -d "{\"messages\":[{\"role\":\"user\",\"content\":\"tell me a long story about a fox\"}],\"max_tokens\":128,\"temperature\":$t}" \
      | python3 -c "import json,sys; t=json.load(sys.stdin)['timings']; print('$3 temp=$t', 'predicted', t['predicted_n'], 'draft_n', t.get('draft_n'), 'accepted', t.get('draft_n_accepted'), 'rate %.3f' % (t.get('draft_n_accepted',0)/max(1,t.get('draft_n',0))), 'tok/s %.1f' % t['predicted_per_second'])"
  done
  kill $pid; wait $pid 2>/dev/null || true
}
run $D/target-$P.gguf "0 0.8" "identity-target"
run $D/plain-$P.gguf "0" "plain-target(control)"
