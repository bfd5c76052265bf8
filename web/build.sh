#!/usr/bin/env bash
# Builds the web dashboard and writes it as a C++ source for the proxy to embed.
#   web/build.sh OUT.cc DIST_DIR NPM_DIR
# NPM_DIR holds node_modules (npm ci from web/package-lock.json, once per lockfile change;
# shared by every build preset, under build/, ignored by git). Run by CMake (src/proxy).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1 dist=$2 npm_dir=$3
command -v node >/dev/null || { echo "web/build.sh: node is missing (scripts/setup.sh installs nodejs)" >&2; exit 1; }
mkdir -p "$npm_dir" "$dist"
(
  # One npm ci at a time when several presets build at once.
  flock 9
  if [ ! -x "$npm_dir/node_modules/.bin/esbuild" ] || ! cmp -s "$here/package-lock.json" "$npm_dir/package-lock.json"; then
    cp "$here/package.json" "$here/package-lock.json" "$npm_dir/"
    echo "web: npm ci in $npm_dir (once per lockfile change)"
    (cd "$npm_dir" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
) 9>"$npm_dir/.lock"
NODE_PATH="$npm_dir/node_modules" "$npm_dir/node_modules/.bin/esbuild" "$here/src/app.js" --bundle --minify \
  --format=esm --target=es2020 --legal-comments=none --log-level=warning --outdir="$dist"
cp "$here/src/index.html" "$dist/"
node "$here/embed.mjs" "$out" "$dist"
