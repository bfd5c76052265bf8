#!/usr/bin/env bash
# Builds the pinned llama.cpp web UI (the engine's tools/ui, a SvelteKit app) into a cache
# shared by every clone on this machine, keyed by the git tree of tools/ui (its sources and
# package-lock.json). Prints the directory of the built UI (index.html, _app/, ...), which
# `corral serve --llama-ui DIR` serves (docs/proxy.md, "The stock llama.cpp web UI").
#
#   scripts/llama-ui.sh            build if needed (npm ci + vite build), print the directory
#   scripts/llama-ui.sh --print    print the directory the pinned engine maps to; build nothing
#
# Needs the engine's source tree (scripts/engine.sh), node and npm, and the npm registry for
# the first build. `make llama-ui` (and `make test`) run it; `make run` does not.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

engine=${CORRAL_ENGINE_DIR:-$("$here/engine.sh" --print)}
src="$engine/src/tools/ui"
cache_root="${CORRAL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/corral}"

fail() {
  echo "corral llama-ui: $1" >&2
  exit 1
}

key() {
  # The git tree hash of tools/ui covers every source file and the lockfile.
  local tree
  if tree=$(git -C "$engine/src" rev-parse -q --verify HEAD:tools/ui 2>/dev/null) &&
    [ -z "$(git -C "$engine/src" status --porcelain -- tools/ui 2>/dev/null)" ]; then
    echo "${tree:0:12}"
  else
    (cd "$src" && find . -type f -not -path './node_modules/*' -print0 | LC_ALL=C sort -z |
      xargs -0 sha256sum | sha256sum | cut -c1-12)
  fi
}

[ -f "$src/package-lock.json" ] || {
  [ "${1:-}" = "--print" ] && exit 0
  fail "$src/package-lock.json is missing: build the engine first (make engine)"
}
out="$cache_root/llama-ui/$(key)"
if [ "${1:-}" = "--print" ]; then echo "$out"; exit 0; fi
if [ -f "$out/index.html" ]; then echo "$out"; exit 0; fi

command -v npm >/dev/null || fail "npm is missing (scripts/setup.sh installs nodejs and npm)"
# shellcheck source=scripts/cache-claim.sh
. "$here/cache-claim.sh"
cache_claim "$out" index.html  # sets $work
cp -a "$src" "$work/ui"
rm -rf "$work/ui/node_modules" "$work/ui/dist" "$work/ui/.svelte-kit"

start=$(date +%s)
echo "corral llama-ui: npm ci in $work/ui (lockfile-pinned; about 1200 packages)" >&2
(cd "$work/ui" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1 \
  npm ci --no-audit --no-fund --loglevel=error >"$work/npm-ci.log" 2>&1) ||
  { tail -n 30 "$work/npm-ci.log" >&2; fail "npm ci failed (log above; is the npm registry reachable?)"; }
installed=$(date +%s)
echo "corral llama-ui: npm ci took $((installed - start)) s; building (vite)" >&2
(cd "$work/ui" && LLAMA_UI_OUT_DIR="$work/dist" npm run build >"$work/build.log" 2>&1) ||
  { tail -n 40 "$work/build.log" >&2; fail "the UI build failed (log above)"; }
[ -f "$work/dist/index.html" ] || fail "the UI build wrote no index.html"
echo "corral llama-ui: vite build took $(($(date +%s) - installed)) s" >&2

{
  echo "source $src"
  echo "engine $(head -n 1 "$engine/ENGINE" 2>/dev/null)"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) npm-ci-s $((installed - start)) build-s $(($(date +%s) - installed))"
} >"$work/dist/.corral-build"  # hidden: never served (src/proxy/llama_ui.h)
rm -rf "$out"
mv "$work/dist" "$out"
echo "$out"
