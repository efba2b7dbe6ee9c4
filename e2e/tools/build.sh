#!/usr/bin/env bash
# Builds a Go tool the tests run (promtool, actionlint) from its Go module, pinned by the go.mod
# and go.sum in e2e/tools/TOOL/, into a cache outside the repo keyed by tool and version, so
# later runs and CI's fresh clones on the same machine reuse it; a cached binary is never rebuilt.
#
#   bash e2e/tools/build.sh TOOL          # build it if missing, print the binary's path
#   bash e2e/tools/build.sh TOOL --print  # only print the binary's path (builds nothing)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

tool=${1:?usage: build.sh promtool|actionlint [--print]}
case $tool in
  # `check rules` needs no service discovery: `remove_all_sd` drops every SD plugin (the cloud
  # SDKs), which is most of promtool's build time.
  promtool) module=github.com/prometheus/prometheus package=github.com/prometheus/prometheus/cmd/promtool tags=remove_all_sd ;;
  actionlint) module=github.com/rhysd/actionlint package=github.com/rhysd/actionlint/cmd/actionlint tags= ;;
  *) echo "build.sh: unknown tool $tool (promtool or actionlint)" >&2; exit 2 ;;
esac

# The version is read from go.mod, so the cache key cannot drift from what is built.
version=$(awk -v m="$module" '$1 == "require" && $2 == m { print $3 }' "$here/$tool/go.mod")
[ -n "$version" ] || { echo "build.sh: no $module version in $here/$tool/go.mod" >&2; exit 1; }

cache_root=${MMF_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmf-tools}
bin="$cache_root/$tool-$version${tags:+-$tags}/$tool"

if [ "${2:-}" = "--print" ]; then
  echo "$bin"
  exit 0
fi
if [ -x "$bin" ]; then
  echo "$tool: cached at $bin" >&2
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH=/usr/local/go/bin:$PATH
command -v go >/dev/null || { echo "build.sh: go is not on PATH (Go 1.26 or newer is needed)" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
mkdir -p "$(dirname "$bin")"
# Build into a temporary directory, then move: an interrupted build leaves no half-written binary.
tmp=$(mktemp -d "$(dirname "$bin")/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
echo "$tool $version: building (promtool is a large build: many minutes on 2 cores)..." >&2
(cd "$here/$tool" && nice -n 10 go build -tags "$tags" -trimpath -ldflags "-s -w" -o "$tmp/$tool" "$package")
mv "$tmp/$tool" "$bin"
echo "$tool $version: built in $(($(date +%s) - start)) s" >&2
echo "$bin"
