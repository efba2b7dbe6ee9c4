#!/usr/bin/env bash
# Builds the real control plane used by the end-to-end suites: kube-apiserver,
# kube-controller-manager and kube-scheduler (k8s.io/kubernetes with every staging module
# replaced by its published version), etcd (a wrapper calling etcdmain) and the kwok controller.
#
# Binaries go to a cache outside the repo, keyed by the versions, so later runs and CI's fresh
# clones on the same machine reuse them; what is already there is never rebuilt.
#
#   bash e2e/control-plane/build.sh          # build what is missing, print the directory
#   bash e2e/control-plane/build.sh --print  # only print the directory (builds nothing)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# One place for the versions: the cache key and the ldflags come from here, the module
# requirements from the go.mod files beside this script (a test keeps them in step).
KUBE_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0

cache_root=${MMF_CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmf-control-plane}
dir="$cache_root/k8s-$KUBE_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"

if [ "${1:-}" = "--print" ]; then
  echo "$dir"
  exit 0
fi

command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH=/usr/local/go/bin:$PATH
command -v go >/dev/null || { echo "build.sh: go is not on PATH (Go 1.26 or newer is needed)" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
mkdir -p "$dir"

# build NAME MODULE_DIR LDFLAGS PACKAGE...: builds into a temporary directory, then moves the
# binaries into place, so an interrupted build never leaves a half-written binary in the cache.
build() {
  local name=$1 module=$2 ldflags=$3
  shift 3
  local missing=0 pkg
  for pkg in "$@"; do
    [ -x "$dir/$(basename "$pkg")" ] || missing=1
  done
  if [ $missing -eq 0 ]; then
    echo "$name: cached in $dir"
    return
  fi
  local tmp start
  tmp=$(mktemp -d "$dir/.build.XXXXXX")
  start=$(date +%s)
  echo "$name: building (the first build of kube-apiserver takes a long while on 2 cores)..."
  (cd "$here/$module" && go build -trimpath -tags=notest,grpcnotrace -ldflags "-s -w $ldflags" -o "$tmp/" "$@")
  for pkg in "$@"; do
    mv "$tmp/$(basename "$pkg")" "$dir/"
  done
  rmdir "$tmp"
  echo "$name: built in $(($(date +%s) - start)) s"
}

build etcd etcd "" mmf.marty.dev/e2e/control-plane/etcd
build kwok kwok "" sigs.k8s.io/kwok/cmd/kwok

# kwok starts only with Stage objects; take kwok's own "fast" stages from the module at the pinned
# version (nothing of kwok is copied into this repo).
stages="$dir/kwok-stages.yaml"
if [ ! -s "$stages" ]; then
  kwok_dir=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  tmp_stages=$(mktemp "$dir/.stages.XXXXXX")
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    printf -- '---\n' >>"$tmp_stages"
    cat "$kwok_dir/kustomize/stage/$f" >>"$tmp_stages"
  done
  mv "$tmp_stages" "$stages"
  echo "kwok stages: written to $stages"
fi

kube_minor=${KUBE_VERSION#v1.}
kube_minor=${kube_minor%%.*}
kube_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$kube_minor"
  kube_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
build kubernetes kube "$kube_ldflags" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler

echo "$dir"
