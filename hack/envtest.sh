#!/usr/bin/env bash
# Makes the envtest control plane (kube-apiserver and etcd) available and
# prints the directory holding them as the last line of stdout, so that
#   KUBEBUILDER_ASSETS=$(hack/envtest.sh | tail -n 1) go test ./...
# works on a fresh machine. Progress goes to stderr.
#
# Order: $KUBEBUILDER_ASSETS if it already holds both binaries; the cache;
# setup-envtest (for machines that can download); else a build from source
# through the Go module proxy (about 10 minutes on 2 cores, once). The cache
# lives outside the repository, keyed by version.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.6.7}"
GO="${GO:-go}"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/kube-vip-cloud-provider/envtest"
dir="$cache_root/k8s-${KUBE_VERSION}-etcd-${ETCD_VERSION}"

log() { echo "envtest: $*" >&2; }
complete() { [ -x "$1/kube-apiserver" ] && [ -x "$1/etcd" ]; }

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && complete "$KUBEBUILDER_ASSETS"; then
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi
if complete "$dir"; then
  echo "$dir"
  exit 0
fi

mkdir -p "$cache_root"
# One build at a time: a second caller waits for the first, then finds the cache.
exec 9>"$cache_root/.lock"
if command -v flock >/dev/null; then
  flock 9
fi
if complete "$dir"; then
  echo "$dir"
  exit 0
fi

# The throw-away modules below must not see the caller's module settings.
export GOFLAGS= GOWORK=off CGO_ENABLED=0

try_setup_envtest() {
  local bin assets
  bin="$(mktemp -d)"
  if ! timeout 120 env GOBIN="$bin" "$GO" install sigs.k8s.io/controller-runtime/tools/setup-envtest@release-0.25 >/dev/null 2>&1; then
    rm -rf "$bin"
    return 1
  fi
  if ! assets="$(timeout 120 "$bin/setup-envtest" use -p path --bin-dir "$cache_root/setup-envtest" "$KUBE_VERSION" 2>/dev/null)" ||
    ! complete "$assets"; then
    rm -rf "$bin"
    return 1
  fi
  rm -rf "$bin"
  mkdir -p "$dir.tmp"
  cp "$assets/kube-apiserver" "$assets/etcd" "$dir.tmp/"
}

build_from_source() {
  local work stage
  work="$(mktemp -d)"
  stage="$work/out"
  mkdir -p "$stage" "$work/etcd" "$work/apiserver"
  trap 'rm -rf "$work"' RETURN

  log "building etcd v${ETCD_VERSION} from source (about 2 minutes)"
  (
    cd "$work/etcd"
    cat >main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    "$GO" mod init envtest.local/etcd >/dev/null 2>&1
    "$GO" get "go.etcd.io/etcd/server/v3@v${ETCD_VERSION}" >&2
    "$GO" mod tidy >&2
    "$GO" build -trimpath -ldflags "-s -w" -o "$stage/etcd" .
  )

  log "building kube-apiserver v${KUBE_VERSION} from source (about 9 minutes on 2 cores)"
  (
    cd "$work/apiserver"
    "$GO" mod init envtest.local/apiserver >/dev/null 2>&1
    # kubernetes' go.mod replaces its staging modules with local paths; a
    # module that requires it must pin each to the matching v0.Y.Z instead.
    gomod="$("$GO" mod download -json "k8s.io/kubernetes@v${KUBE_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
    [ -f "$gomod" ] || { log "could not download k8s.io/kubernetes@v${KUBE_VERSION}"; exit 1; }
    staging_version="v0.${KUBE_VERSION#*.}"
    "$GO" mod edit -require="k8s.io/kubernetes@v${KUBE_VERSION}"
    for m in $(grep -E '^[[:space:]]*k8s\.io/[A-Za-z0-9._-]+ => \./staging/' "$gomod" | awk '{print $1}'); do
      "$GO" mod edit -replace="$m=$m@$staging_version"
    done
    cat >tools.go <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
    "$GO" mod tidy >&2
    "$GO" build -trimpath -ldflags "-s -w" -o "$stage/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
  )
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  cp "$stage/etcd" "$stage/kube-apiserver" "$dir.tmp/"
}

rm -rf "$dir.tmp"
if try_setup_envtest; then
  log "installed with setup-envtest"
else
  log "setup-envtest cannot download here; building the control plane from source"
  build_from_source
fi
rm -rf "$dir"
mv "$dir.tmp" "$dir"
log "control plane ready in $dir"
echo "$dir"
