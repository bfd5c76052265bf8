#!/usr/bin/env bash
# Builds the pinned llama.cpp engine (CPU backend, RPC on) into a cache shared by every
# clone on this machine, keyed by commit and build flags. Prints the engine directory.
#
#   scripts/engine.sh            build if needed, print the directory
#   scripts/engine.sh --print    print the directory the current flags map to; build nothing
#
# Layout of a finished engine directory:
#   bin/      llama-server ggml-rpc-server llama-bench llama-quantize
#   lib/      libggml-base.a (ggml's gguf API, linked by `corral model synth`)
#   include/  ggml.h gguf.h ...
#   src/      the checked-out source tree (vocab files under src/models/)
#   ENGINE    commit, flags and build date; written last: its presence means "finished"
set -euo pipefail

readonly NPM_PACKAGE="node-llama-cpp@3.22.1"
readonly COMMIT="de3ff815ea7d559ee917f063901b8986f038abc6"
readonly TARGETS="llama-server ggml-rpc-server llama-bench llama-quantize ggml-base"
# Every flag that changes the binaries is part of the cache key.
# AMX is switched off: on the Sapphire Rapids VMs we run on, ggml's AMX kernels (enabled by
# -march=native) crash on Q4_0/Q8_0 matmuls; explicit -mno-amx-* override what -march=native implies.
NO_AMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
FLAGS=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_RPC=ON -DGGML_NATIVE=ON
  "-DCMAKE_C_FLAGS=$NO_AMX" "-DCMAKE_CXX_FLAGS=$NO_AMX"
  -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_TESTS=OFF
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON)
# Extra flags for experiments (e.g. a GPU backend); they change the cache key too.
if [ -n "${CORRAL_ENGINE_EXTRA_FLAGS:-}" ]; then
  read -r -a extra <<< "$CORRAL_ENGINE_EXTRA_FLAGS"
  FLAGS+=("${extra[@]}")
fi

cache_root="${CORRAL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/corral}"
key=$(printf '%s\n%s\n%s\n' "$COMMIT" "${FLAGS[*]}" "$(uname -m)" | sha256sum | cut -c1-12)
engine="$cache_root/engine/${COMMIT:0:12}-$key"

if [ "${1:-}" = "--print" ]; then echo "$engine"; exit 0; fi
if [ -f "$engine/ENGINE" ]; then echo "$engine"; exit 0; fi

fail() {
  echo "corral engine: $1" >&2
  echo "corral engine: nothing was cached; fix the cause and run 'make engine' (or make run/test) again." >&2
  exit 1
}

mkdir -p "$cache_root/downloads"
# shellcheck source=scripts/cache-claim.sh
. "$(dirname "$0")/cache-claim.sh"
cache_claim "$engine" ENGINE  # sets $work

tgz="$cache_root/downloads/node-llama-cpp-3.22.1.tgz"
if [ ! -s "$tgz" ]; then
  echo "corral engine: fetching $NPM_PACKAGE from the npm registry" >&2
  (cd "$work" && npm pack --silent "$NPM_PACKAGE" >/dev/null) || fail "npm pack $NPM_PACKAGE failed (is the npm registry reachable?)"
  mv "$work"/node-llama-cpp-3.22.1.tgz "$tgz.tmp" && mv "$tgz.tmp" "$tgz"
fi
tar -xzf "$tgz" -C "$work" package/llama/gitRelease.bundle || fail "$tgz has no llama/gitRelease.bundle"

echo "corral engine: checking out llama.cpp $COMMIT" >&2
git clone -q --no-checkout "$work/package/llama/gitRelease.bundle" "$work/src" || fail "cloning the bundle failed"
git -C "$work/src" -c advice.detachedHead=false checkout -q "$COMMIT" || fail "commit $COMMIT is not in the bundle"
got=$(git -C "$work/src" rev-parse HEAD)
[ "$got" = "$COMMIT" ] || fail "checked out $got, expected $COMMIT"
git -C "$work/src" fsck --no-dangling >/dev/null 2>&1 || fail "the bundle's objects do not verify (git fsck)"
rm -rf "$work/package"

jobs=${CORRAL_ENGINE_JOBS:-$(nproc)}
echo "corral engine: building llama.cpp ($jobs jobs; about 5 minutes on 2 cores)" >&2
cmake -S "$work/src" -B "$work/build" -G Ninja "${FLAGS[@]}" >"$work/cmake.log" 2>&1 \
  || { tail -n 30 "$work/cmake.log" >&2; fail "cmake configure failed (log above)"; }
# shellcheck disable=SC2086
cmake --build "$work/build" -j "$jobs" --target $TARGETS >"$work/build.log" 2>&1 \
  || { tail -n 40 "$work/build.log" >&2; fail "the llama.cpp build failed (log above)"; }

mkdir -p "$work/out/bin" "$work/out/lib" "$work/out/include"
for t in llama-server ggml-rpc-server llama-bench llama-quantize; do
  cp "$work/build/bin/$t" "$work/out/bin/" || fail "target $t was not produced"
done
find "$work/build" -name 'libggml-base.a' -exec cp {} "$work/out/lib/" \;
[ -f "$work/out/lib/libggml-base.a" ] || fail "libggml-base.a was not produced"
cp "$work/src"/ggml/include/*.h "$work/out/include/"
mv "$work/src" "$work/out/src"
"$work/out/bin/llama-server" --version >"$work/out/version.txt" 2>&1 || fail "the built llama-server does not run"
{ echo "commit=$COMMIT"; echo "flags=${FLAGS[*]}"; echo "built=$(date -u +%FT%TZ)"; } >"$work/out/ENGINE.tmp"
mv "$work/out/ENGINE.tmp" "$work/out/ENGINE"
rm -rf "$engine"
mv "$work/out" "$engine"
echo "corral engine: ready at $engine" >&2
echo "$engine"
