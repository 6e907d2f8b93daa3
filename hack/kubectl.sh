#!/usr/bin/env bash
# Makes kubectl of the version the envtest control plane runs available and
# prints its path as the last line of stdout, so that the documentation's
# snippets run with a known kubectl:
#   KUBECTL=$(hack/kubectl.sh | tail -n 1)
# Progress goes to stderr.
#
# Order: the cache; else a build from source through the Go module proxy
# (k8s.io/kubectl and k8s.io/component-base, about 3 minutes on 2 cores,
# once). No binary download: the machines this project is built on cannot.
# The cache lives outside the repository, keyed by version, next to
# hack/envtest.sh's.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-1.37.2}"
GO="${GO:-go}"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/kube-vip-cloud-provider/kubectl"
dir="$cache_root/v${KUBE_VERSION}"

log() { echo "kubectl: $*" >&2; }

if [ -x "$dir/kubectl" ]; then
  echo "$dir/kubectl"
  exit 0
fi

mkdir -p "$cache_root"
# One build at a time: a second caller waits for the first, then finds the cache.
exec 9>"$cache_root/.lock"
if command -v flock >/dev/null; then
  flock 9
fi
if [ -x "$dir/kubectl" ]; then
  echo "$dir/kubectl"
  exit 0
fi

# The throw-away module below must not see the caller's module settings.
export GOFLAGS= GOWORK=off CGO_ENABLED=0

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
staging_version="v0.${KUBE_VERSION#*.}"
log "building kubectl v${KUBE_VERSION} from source (k8s.io/kubectl ${staging_version}, about 3 minutes)"
(
  cd "$work"
  cat >main.go <<'GO'
// Command kubectl: k8s.io/kubectl's root command, as kubernetes/cmd/kubectl
// runs it.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}
GO
  "$GO" mod init kubectl.local/kubectl >/dev/null 2>&1
  "$GO" get "k8s.io/kubectl@${staging_version}" "k8s.io/component-base@${staging_version}" >&2
  "$GO" mod tidy >&2
  version="-X k8s.io/client-go/pkg/version.gitVersion=v${KUBE_VERSION} -X k8s.io/component-base/version.gitVersion=v${KUBE_VERSION}"
  "$GO" build -trimpath -ldflags "-s -w $version" -o "$work/kubectl" .
)
mkdir -p "$dir.tmp"
mv "$work/kubectl" "$dir.tmp/kubectl"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
log "kubectl ready in $dir"
echo "$dir/kubectl"
