#!/usr/bin/env bash
# Installs the Debian packages listed in a package list that are missing: by default
# deps/debian-packages.txt (build, test, run); `scripts/setup.sh deps/bench-packages.txt`
# for the extras only `make bench` needs (nginx as the reference proxy).
# Works as root or through sudo; says what to do when neither is possible.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
list="${1:-$here/deps/debian-packages.txt}"
case "$list" in /*) ;; *) list="$here/$list" ;; esac
[ -f "$list" ] || { echo "corral setup: no package list $list" >&2; exit 1; }
# One stamp per list: deps/debian-packages.txt -> build/.deps-ok (as before), others by name.
if [ "$(basename "$list")" = debian-packages.txt ]; then
  stamp="$here/build/.deps-ok"
else
  stamp="$here/build/.deps-$(basename "$list" .txt)-ok"
fi

entries=$(grep -v -E '^\s*(#|$)' "$list" | tr -s ' \t' ' ')
# Fast path: nothing changed since the last successful check.
if [ -f "$stamp" ] && [ "$stamp" -nt "$list" ]; then exit 0; fi

missing=()
while read -r p alt; do
  [ -n "$p" ] || continue
  case "$alt" in cmd:*) command -v "${alt#cmd:}" >/dev/null 2>&1 && continue ;; esac
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$status" in *"install ok installed"*) ;; *) missing+=("$p") ;; esac
done <<< "$entries"

if [ ${#missing[@]} -gt 0 ]; then
  echo "corral setup: installing missing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    sudo_cmd=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo_cmd=(sudo -n)
  elif command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "corral setup: these packages are missing and I am neither root nor able to use sudo:" >&2
    echo "  apt-get install ${missing[*]}" >&2
    echo "Run that as root, then run the command again." >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Refresh the package lists once when they are absent or older than a day.
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n1)" ]; then
    "${sudo_cmd[@]}" apt-get update -q
  fi
  if ! "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    echo "corral setup: apt-get install failed; retrying after apt-get update" >&2
    "${sudo_cmd[@]}" apt-get update -q
    "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi
mkdir -p "$(dirname "$stamp")"
touch "$stamp"
