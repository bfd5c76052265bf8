#!/usr/bin/env bash
# Makes the embedded default models in the user's model directory when they are missing:
# two distinct synthetic models, so routing between models can be shown and tested.
set -euo pipefail
corral=${1:?usage: default-models.sh PATH-TO-CORRAL}
dir="${CORRAL_MODEL_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/corral/models}"
mkdir -p "$dir"
make_one() {
  local file=$1; shift
  if [ ! -f "$dir/$file" ]; then
    "$corral" model synth --out "$dir/$file" "$@"
  fi
}
make_one corral-tiny-spm-q8_0.gguf --preset tiny --vocab llama-spm --type q8_0 --seed 1 --name corral-tiny-spm
make_one corral-tiny-bpe-q4_0.gguf --preset tiny --vocab llama-bpe --type q4_0 --seed 2 --name corral-tiny-bpe
