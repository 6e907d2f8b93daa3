#!/usr/bin/env bash
# Builds the kind node image of `make e2e` from Debian packages and Go source
# only (nothing is pulled from a container registry), and the images the
# cluster runs, preloaded into the node's containerd. Prints the node image's
# name as the last line of stdout. Progress goes to stderr.
#
#   hack/kindimage/build.sh [stage...]    stages: rootfs k8s etcd coredns cni
#                                         kube-vip node (default: all)
#
# Every stage keeps its result under the cache folder, keyed by version, and
# is skipped when that result is there: a second run only re-tags. Must run
# as root (debootstrap, docker). The versions and sources:
#   KUBE_VERSION (1.37.2)  kubelet, kubeadm, kubectl and the control plane
#   ETCD_VERSION (3.6.7)  COREDNS_VERSION (1.14.6)  CNI_PLUGINS_VERSION (1.9.1)
#   DEBIAN_SUITE (trixie: its systemd still boots on cgroup v1 hosts)
#   DEBIAN_MIRROR (http://deb.debian.org/debian)
#   CONTAINERD_SUITE (forky: containerd 2.x, which Kubernetes >= 1.36 needs)
#   KUBE_VIP_SOURCE  a copy of kube-vip's source (stage kube-vip)
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.6.7}"
COREDNS_VERSION="${COREDNS_VERSION:-1.14.6}"
CNI_PLUGINS_VERSION="${CNI_PLUGINS_VERSION:-1.9.1}"
DEBIAN_SUITE="${DEBIAN_SUITE:-trixie}"
CONTAINERD_SUITE="${CONTAINERD_SUITE:-forky}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
GO="${GO:-go}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kube-vip-cloud-provider/kind"
# The image names kubeadm, containerd and the e2e use (see node/).
REPO=kvcp.local
NODE_IMAGE="$REPO/node:v${KUBE_VERSION}"

log() { echo "kind-image: $*" >&2; }
die() { log "$*"; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap and docker need it)"
mkdir -p "$cache"
# Work folders (under the cache, on the same disk) go when the script ends.
workdirs=()
trap 'rm -rf "${workdirs[@]}"' EXIT
# workdir NAME: a new work folder, in $work.
workdir() {
  work="$(mktemp -d "$cache/$1.XXXX")"
  workdirs+=("$work")
}

# The throw-away modules below must not see the caller's module settings.
export GOFLAGS= GOWORK=off CGO_ENABLED=0

# timed NAME CMD...: runs a stage and logs how long it took.
timed() {
  local name="$1" start=$SECONDS
  shift
  # One build of a stage at a time: a second caller waits, then finds it.
  exec 9>"$cache/.lock-$name"
  command -v flock >/dev/null && flock 9
  log "== $name"
  "$@"
  exec 9>&-
  log "== $name done in $(((SECONDS - start) / 60))m$(((SECONDS - start) % 60))s"
}

rootfs_tar="$cache/rootfs-${DEBIAN_SUITE}.tar"
stage_rootfs() {
  [ -s "$rootfs_tar" ] && return 0
  command -v debootstrap >/dev/null || die "debootstrap is not installed: apt-get install debootstrap"
  workdir rootfs
  log "debootstrap $DEBIAN_SUITE from $DEBIAN_MIRROR (about 10 minutes)"
  debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,iptables,nftables,iproute2,ethtool,socat,conntrack,ebtables,kmod,mount,util-linux,ca-certificates,procps,libseccomp2,pigz,bash \
    "$DEBIAN_SUITE" "$work/root" "$DEBIAN_MIRROR" >&2
  # containerd 2.x and its runc from CONTAINERD_SUITE: they need no more
  # than DEBIAN_SUITE's libc and libseccomp.
  echo "deb $DEBIAN_MIRROR $CONTAINERD_SUITE main" >"$work/root/etc/apt/sources.list.d/containerd.list"
  printf 'Package: *\nPin: release n=%s\nPin-Priority: 100\n' "$CONTAINERD_SUITE" >"$work/root/etc/apt/preferences.d/containerd"
  chroot "$work/root" apt-get -o Acquire::Check-Valid-Until=false update >&2
  DEBIAN_FRONTEND=noninteractive chroot "$work/root" apt-get install -y --no-install-recommends "containerd/$CONTAINERD_SUITE" "runc/$CONTAINERD_SUITE" >&2
  rm -f "$work/root/etc/apt/sources.list.d/containerd.list"
  chroot "$work/root" apt-get clean
  rm -rf "$work/root/var/lib/apt/lists/"* "$work/root/usr/share/doc" "$work/root/usr/share/man" "$work/root/usr/share/locale"
  tar -C "$work/root" --numeric-owner -cf "$rootfs_tar.tmp" .
  mv "$rootfs_tar.tmp" "$rootfs_tar"
}

# gomodule DIR NAME: a throw-away module in DIR.
gomodule() {
  mkdir -p "$1"
  (cd "$1" && "$GO" mod init "kindimage.local/$2" >/dev/null 2>&1)
}

k8s_dir="$cache/k8s-${KUBE_VERSION}"
k8s_bins="kubelet kubeadm kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy"
stage_k8s() {
  local b missing=""
  for b in $k8s_bins; do [ -x "$k8s_dir/$b" ] || missing=1; done
  [ -z "$missing" ] && return 0
  workdir k8s
  log "building Kubernetes v$KUBE_VERSION ($k8s_bins) from source (about 20 minutes on 2 cores)"
  gomodule "$work/m" k8s
  (
    cd "$work/m"
    # kubernetes' go.mod replaces its staging modules with local paths; a
    # module that requires it must pin each to the matching v0.Y.Z instead.
    gomod="$("$GO" mod download -json "k8s.io/kubernetes@v${KUBE_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
    [ -f "$gomod" ] || die "could not download k8s.io/kubernetes@v${KUBE_VERSION}"
    "$GO" mod edit -require="k8s.io/kubernetes@v${KUBE_VERSION}"
    for m in $(grep -E '^[[:space:]]*k8s\.io/[A-Za-z0-9._-]+ => \./staging/' "$gomod" | awk '{print $1}'); do
      "$GO" mod edit -replace="$m=$m@v0.${KUBE_VERSION#*.}"
    done
    {
      echo '//go:build tools'
      echo
      echo 'package tools'
      echo
      for b in $k8s_bins; do echo "import _ \"k8s.io/kubernetes/cmd/$b\""; done
    } >tools.go
    "$GO" mod tidy >&2
    mkdir -p out
    # The version kubeadm and kubelet report (kubeadm checks it).
    local_ldflags="-s -w"
    for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      local_ldflags="$local_ldflags -X $v.gitVersion=v${KUBE_VERSION} -X $v.gitMajor=${KUBE_VERSION%%.*} -X $v.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2) -X $v.gitTreeState=clean"
    done
    pkgs=""
    for b in $k8s_bins; do pkgs="$pkgs k8s.io/kubernetes/cmd/$b"; done
    # shellcheck disable=SC2086
    "$GO" build -trimpath -ldflags "$local_ldflags" -o out/ $pkgs
    rm -rf "$k8s_dir.tmp" && mkdir -p "$k8s_dir.tmp" && cp out/* "$k8s_dir.tmp/"
  )
  rm -rf "$k8s_dir" && mv "$k8s_dir.tmp" "$k8s_dir"
}

etcd_bin="$cache/etcd-${ETCD_VERSION}/etcd"
stage_etcd() {
  [ -x "$etcd_bin" ] && return 0
  workdir etcd
  log "building etcd v$ETCD_VERSION from source"
  gomodule "$work/m" etcd
  (
    cd "$work/m"
    printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' >main.go
    "$GO" get "go.etcd.io/etcd/server/v3@v${ETCD_VERSION}" >&2
    "$GO" mod tidy >&2
    "$GO" build -trimpath -ldflags "-s -w" -o etcd .
    mkdir -p "$(dirname "$etcd_bin")" && cp etcd "$etcd_bin"
  )
}

coredns_bin="$cache/coredns-${COREDNS_VERSION}/coredns"
stage_coredns() {
  [ -x "$coredns_bin" ] && return 0
  workdir coredns
  log "building CoreDNS v$COREDNS_VERSION from source"
  gomodule "$work/m" coredns
  (
    cd "$work/m"
    printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/coredns/coredns"\n' >tools.go
    "$GO" get "github.com/coredns/coredns@v${COREDNS_VERSION}" >&2
    "$GO" mod tidy >&2
    "$GO" build -trimpath -ldflags "-s -w" -o coredns github.com/coredns/coredns
    mkdir -p "$(dirname "$coredns_bin")" && cp coredns "$coredns_bin"
  )
}

cni_dir="$cache/cni-plugins-${CNI_PLUGINS_VERSION}"
cni_plugins="loopback ptp host-local portmap"
stage_cni() {
  [ -x "$cni_dir/portmap" ] && return 0
  workdir cni
  log "building the CNI plugins v$CNI_PLUGINS_VERSION ($cni_plugins) from source"
  gomodule "$work/m" cni
  (
    cd "$work/m"
    {
      echo '//go:build tools'
      echo
      echo 'package tools'
      echo
      for p in $cni_plugins; do
        case $p in
        host-local) echo 'import _ "github.com/containernetworking/plugins/plugins/ipam/host-local"' ;;
        portmap) echo 'import _ "github.com/containernetworking/plugins/plugins/meta/portmap"' ;;
        *) echo "import _ \"github.com/containernetworking/plugins/plugins/main/$p\"" ;;
        esac
      done
    } >tools.go
    "$GO" get "github.com/containernetworking/plugins@v${CNI_PLUGINS_VERSION}" >&2
    "$GO" mod tidy >&2
    mkdir -p out
    "$GO" build -trimpath -ldflags "-s -w" -o out/ \
      github.com/containernetworking/plugins/plugins/main/loopback \
      github.com/containernetworking/plugins/plugins/main/ptp \
      github.com/containernetworking/plugins/plugins/ipam/host-local \
      github.com/containernetworking/plugins/plugins/meta/portmap
    rm -rf "$cni_dir.tmp" && mkdir -p "$cni_dir.tmp" && cp out/* "$cni_dir.tmp/"
  )
  rm -rf "$cni_dir" && mv "$cni_dir.tmp" "$cni_dir"
}

kube_vip_dir="$cache/kube-vip"
stage_kube_vip() {
  if [ -z "${KUBE_VIP_SOURCE:-}" ]; then
    [ -x "$kube_vip_dir/kube-vip" ] && { log "kube-vip: KUBE_VIP_SOURCE not set: using the one built before ($(cat "$kube_vip_dir/version"))"; return 0; }
    die "set KUBE_VIP_SOURCE to a copy of kube-vip's source (https://github.com/kube-vip/kube-vip: the Go module proxy does not serve it)"
  fi
  grep -qs '^module github.com/kube-vip/kube-vip$' "$KUBE_VIP_SOURCE/go.mod" ||
    die "KUBE_VIP_SOURCE=$KUBE_VIP_SOURCE is not kube-vip's source (no go.mod of module github.com/kube-vip/kube-vip)"
  local version
  version="$(git -C "$KUBE_VIP_SOURCE" describe --tags --always --dirty 2>/dev/null || echo unknown)"
  if [ -x "$kube_vip_dir/kube-vip" ] && [ "$(cat "$kube_vip_dir/version" 2>/dev/null)" = "$version" ] && [ "$version" != unknown ]; then
    return 0
  fi
  log "building kube-vip $version from $KUBE_VIP_SOURCE"
  mkdir -p "$kube_vip_dir"
  (cd "$KUBE_VIP_SOURCE" && "$GO" build -trimpath -ldflags "-s -w" -o "$kube_vip_dir/kube-vip.tmp" .)
  mv "$kube_vip_dir/kube-vip.tmp" "$kube_vip_dir/kube-vip"
  echo "$version" >"$kube_vip_dir/version"
}

# static_image DIR NAME ENTRYPOINT: imports DIR (a static binary or two) as
# an image.
static_image() {
  mkdir -p "$1/tmp" && chmod 1777 "$1/tmp"
  tar -C "$1" --numeric-owner --owner=0 --group=0 -c . |
    docker import --change "ENTRYPOINT $3" --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' - "$2" >/dev/null
}

# The images every node preloads, by name.
images() {
  echo "$REPO/kube-apiserver:v$KUBE_VERSION $REPO/kube-controller-manager:v$KUBE_VERSION $REPO/kube-scheduler:v$KUBE_VERSION"
  echo "$REPO/kube-proxy:v$KUBE_VERSION $REPO/etcd:$ETCD_VERSION-0 $REPO/coredns:v$COREDNS_VERSION $REPO/pause:3.10.2"
  echo "$REPO/kube-vip:dev $REPO/echo:dev"
}

# inputs_hash: what the node image is made of; it is rebuilt when it changes.
inputs_hash() {
  {
    echo "$KUBE_VERSION $ETCD_VERSION $COREDNS_VERSION $CNI_PLUGINS_VERSION $DEBIAN_SUITE $CONTAINERD_SUITE"
    sha256sum "$rootfs_tar" "$k8s_dir"/* "$etcd_bin" "$coredns_bin" "$cni_dir"/* "$kube_vip_dir/kube-vip"
    (cd "$here" && find node pause echo build.sh -type f | sort | xargs sha256sum)
  } | sha256sum | cut -c1-16
}

stage_node() {
  command -v docker >/dev/null || die "docker is not installed"
  local hash
  hash="$(inputs_hash)"
  if [ "$(docker image inspect -f '{{index .Config.Labels "kvcp.inputs"}}' "$NODE_IMAGE" 2>/dev/null)" = "$hash" ]; then
    log "$NODE_IMAGE is up to date (inputs $hash)"
    return 0
  fi
  local b
  workdir node
  log "making the images (inputs $hash)"
  for b in kube-apiserver kube-controller-manager kube-scheduler; do
    mkdir -p "$work/$b/usr/local/bin" && cp "$k8s_dir/$b" "$work/$b/usr/local/bin/"
    static_image "$work/$b" "$REPO/$b:v$KUBE_VERSION" "[\"/usr/local/bin/$b\"]"
  done
  mkdir -p "$work/etcd/usr/local/bin" && cp "$etcd_bin" "$work/etcd/usr/local/bin/"
  static_image "$work/etcd" "$REPO/etcd:$ETCD_VERSION-0" '["/usr/local/bin/etcd"]'
  mkdir -p "$work/coredns" && cp "$coredns_bin" "$work/coredns/"
  static_image "$work/coredns" "$REPO/coredns:v$COREDNS_VERSION" '["/coredns"]'
  mkdir -p "$work/kube-vip" && cp "$kube_vip_dir/kube-vip" "$work/kube-vip/"
  static_image "$work/kube-vip" "$REPO/kube-vip:dev" '["/kube-vip"]'
  mkdir -p "$work/pause" "$work/echo"
  (cd "$root" && "$GO" build -trimpath -ldflags "-s -w" -o "$work/pause/pause" ./hack/kindimage/pause &&
    "$GO" build -trimpath -ldflags "-s -w" -o "$work/echo/echo" ./hack/kindimage/echo)
  static_image "$work/pause" "$REPO/pause:3.10.2" '["/pause"]'
  static_image "$work/echo" "$REPO/echo:dev" '["/echo"]'

  log "unpacking the rootfs"
  mkdir -p "$work/root"
  tar -C "$work/root" --numeric-owner -xf "$rootfs_tar"
  # kube-proxy runs iptables and conntrack: its image is the node's rootfs
  # without systemd, containerd and runc.
  cp "$k8s_dir/kube-proxy" "$work/root/usr/local/bin/"
  tar -C "$work/root" --numeric-owner \
    --exclude=./usr/bin/containerd --exclude='./usr/bin/containerd-*' --exclude=./usr/bin/ctr \
    --exclude=./usr/sbin/runc --exclude=./usr/lib/systemd --exclude=./usr/bin/systemd --exclude='./var/cache/*' -c . |
    docker import --change 'ENTRYPOINT ["/usr/local/bin/kube-proxy"]' - "$REPO/kube-proxy:v$KUBE_VERSION" >/dev/null
  rm "$work/root/usr/local/bin/kube-proxy"

  log "saving the images into the node's /kind/images"
  mkdir -p "$work/root/kind/images"
  # shellcheck disable=SC2046
  docker save -o "$work/root/kind/images/all.tar" $(images)

  log "assembling the node"
  for b in kubelet kubeadm kubectl; do cp "$k8s_dir/$b" "$work/root/usr/local/bin/"; done
  mkdir -p "$work/root/opt/cni/bin" "$work/root/etc/cni/net.d" "$work/root/etc/containerd"
  cp "$cni_dir"/* "$work/root/opt/cni/bin/"
  local n="$here/node" sd="$work/root/etc/systemd/system"
  install -m 0755 "$n/entrypoint" "$n/kvcp-preload" "$n/kvcp-cni" "$work/root/usr/local/bin/"
  install -m 0644 "$n/containerd.toml" "$work/root/etc/containerd/config.toml"
  install -D -m 0644 "$n/kvcp-audit/policy.yaml" "$work/root/etc/kubernetes/kvcp-audit/policy.yaml"
  install -m 0644 "$n/kubelet.service" "$n/kvcp-preload.service" "$n/kvcp-cni.service" "$sd/"
  mkdir -p "$sd/kubelet.service.d" "$sd/containerd.service.d" "$sd/multi-user.target.wants"
  install -m 0644 "$n/kubelet.service.d/"* "$sd/kubelet.service.d/"
  install -m 0644 "$n/containerd.service.d/"* "$sd/containerd.service.d/"
  for u in kvcp-preload kvcp-cni containerd; do
    ln -sf "/etc/systemd/system/$u.service" "$sd/multi-user.target.wants/$u.service"
  done
  [ -e "$sd/containerd.service" ] || ln -sf /usr/lib/systemd/system/containerd.service "$sd/multi-user.target.wants/containerd.service"
  echo "v$KUBE_VERSION" >"$work/root/kind/version"
  # What a container does not need, or must not start.
  for u in systemd-udevd systemd-udev-trigger systemd-networkd systemd-resolved systemd-timesyncd getty@tty1 console-getty apt-daily apt-daily-upgrade; do
    ln -sf /dev/null "$sd/$u.service"
  done
  ln -sf /dev/null "$sd/apt-daily.timer"; ln -sf /dev/null "$sd/apt-daily-upgrade.timer"
  echo "" >"$work/root/etc/machine-id"

  log "importing $NODE_IMAGE"
  tar -C "$work/root" --numeric-owner -c . |
    docker import \
      --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
      --change 'ENV container=docker' \
      --change "LABEL kvcp.inputs=$hash" \
      - "$NODE_IMAGE" >/dev/null
}

stages="${*:-rootfs k8s etcd coredns cni kube-vip node}"
for s in $stages; do
  timed "$s" "stage_${s//-/_}"
done
echo "$NODE_IMAGE"
