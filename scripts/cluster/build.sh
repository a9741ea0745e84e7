#!/usr/bin/env bash
# Builds the cluster's binaries with the machine's Go from the Go module proxy into the build
# cache, one directory per component and version; a directory that is complete is reused.
#   bash scripts/cluster/build.sh            # everything that is missing
#   bash scripts/cluster/build.sh kubernetes # only some of: kubernetes etcd containerd coredns
#                                            # local-path-provisioner helm pause
# Go's own caches (GOMODCACHE, GOCACHE) are used as they are set; none of this touches the repo.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The machine's Go (on PATH, or where its installer puts it).
command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin:/usr/lib/go/bin
export CGO_ENABLED=0 GOTOOLCHAIN=local GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=readonly"

# install_into DIR: builds into DIR.tmp, then renames it to DIR with a stamp, so a build that
# was interrupted is never taken for a complete one.
begin_build() { rm -rf "$1.tmp"; mkdir -p "$1.tmp/bin"; }
finish_build() { echo "$2" > "$1.tmp/.complete"; rm -rf "$1"; mv "$1.tmp" "$1"; }

# reports VERSION CMD...: CMD's output names VERSION (the version was linked in).
reports() {
  local want=$1 out
  shift
  out=$("$@" 2>&1) || die "$* failed: $out"
  [[ $out == *"$want"* ]] || die "$(basename "$1") reports \"$out\", not $want"
}

# go_download DIR: fetches every module DIR's build needs (network-bound, not CPU-bound).
go_download() { (cd "$CLUSTER_SCRIPTS/go/$1" && go mod download); }

build_kubernetes() {
  local d=$KUBE_CACHE minor ld p
  [ -f "$d/.complete" ] && { log "kubernetes $KUBE_VERSION: cached in $d"; return 0; }
  minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
  ld="-s -w"
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ld="$ld -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld="$ld -X $p.gitTreeState=clean -X $p.buildDate=$KUBE_BUILD_DATE"
  done
  begin_build "$d"
  phase kubernetes-download go_download kubernetes
  # One `go build` for all six commands: packages they share compile once, and Go runs
  # compiles and links in parallel up to the number of cores.
  phase kubernetes-compile bash -c "cd '$CLUSTER_SCRIPTS/go/kubernetes' && go build -trimpath \
    -tags selinux,notest,grpcnotrace -ldflags '$ld' -o '$d.tmp/bin/' \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl"
  reports "$KUBE_VERSION" "$d.tmp/bin/kubectl" version --client
  finish_build "$d" "$KUBE_VERSION"
}

build_etcd() {
  local d=$ETCD_CACHE
  [ -f "$d/.complete" ] && { log "etcd $ETCD_VERSION: cached in $d"; return 0; }
  begin_build "$d"
  phase etcd-download go_download etcd
  phase etcd-compile bash -c "cd '$CLUSTER_SCRIPTS/go/etcd' && go build -trimpath \
    -ldflags '-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=go-module-$ETCD_VERSION' \
    -o '$d.tmp/bin/etcd' go.etcd.io/etcd/server/v3"
  reports "${ETCD_VERSION#v}" "$d.tmp/bin/etcd" --version
  finish_build "$d" "$ETCD_VERSION"
}

build_helm() {
  local d=$HELM_CACHE kmajor kminor kver ld
  [ -f "$d/.complete" ] && { log "helm $HELM_VERSION: cached in $d"; return 0; }
  begin_build "$d"
  phase helm-download go_download helm
  # As helm's Makefile does: the Kubernetes version helm assumes for charts comes from the
  # client-go it is built with (v0.X.Y means Kubernetes 1.X).
  kver=$(cd "$CLUSTER_SCRIPTS/go/helm" && go list -m -f '{{.Version}}' k8s.io/client-go)
  kmajor=$(( $(echo "${kver#v}" | cut -d. -f1) + 1 ))
  kminor=$(echo "$kver" | cut -d. -f2)
  ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ld="$ld -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ld="$ld -X $p.k8sVersionMajor=$kmajor -X $p.k8sVersionMinor=$kminor"
  done
  phase helm-compile bash -c "cd '$CLUSTER_SCRIPTS/go/helm' && go build -trimpath \
    -ldflags '$ld' -o '$d.tmp/bin/helm' helm.sh/helm/v3/cmd/helm"
  reports "$HELM_VERSION" "$d.tmp/bin/helm" version --short
  finish_build "$d" "$HELM_VERSION"
}

build_coredns() {
  local d=$COREDNS_CACHE
  [ -f "$d/.complete" ] && { log "coredns $COREDNS_VERSION: cached in $d"; return 0; }
  begin_build "$d"
  phase coredns-download go_download coredns
  # The same tags as the Kubernetes build, so the client libraries they share are reused
  # from Go's build cache.
  phase coredns-compile bash -c "cd '$CLUSTER_SCRIPTS/go/coredns' && go build -trimpath \
    -tags selinux,notest,grpcnotrace -ldflags '-s -w' -o '$d.tmp/bin/coredns' ."
  reports "${COREDNS_VERSION#v}" "$d.tmp/bin/coredns" -version
  finish_build "$d" "$COREDNS_VERSION"
}

build_pause() {
  local d=$PAUSE_CACHE
  [ -f "$d/.complete" ] && { log "pause $PAUSE_VERSION: cached in $d"; return 0; }
  begin_build "$d"
  phase pause-compile bash -c "cd '$CLUSTER_SCRIPTS/go/pause' && go build -trimpath \
    -ldflags '-s -w -X main.version=$PAUSE_VERSION' -o '$d.tmp/bin/pause' ."
  finish_build "$d" "$PAUSE_VERSION"
}

build_containerd() {
  local d=$CONTAINERD_CACHE p=github.com/containerd/containerd/v2
  [ -f "$d/.complete" ] && { log "containerd $CONTAINERD_VERSION: cached in $d"; return 0; }
  begin_build "$d"
  phase containerd-download go_download containerd
  # Without cgo the btrfs snapshotter (which needs it) is left out by its own build
  # constraint; the cluster uses overlayfs.
  phase containerd-compile bash -c "cd '$CLUSTER_SCRIPTS/go/containerd' && go build -trimpath \
    -tags osusergo,netgo,static_build,no_btrfs,no_devmapper,no_zfs \
    -ldflags '-s -w -X $p/version.Version=$CONTAINERD_VERSION -X $p/version.Package=$p' \
    -o '$d.tmp/bin/' $p/cmd/containerd $p/cmd/containerd-shim-runc-v2 $p/cmd/ctr"
  reports "$CONTAINERD_VERSION" "$d.tmp/bin/containerd" --version
  finish_build "$d" "$CONTAINERD_VERSION"
}

build_local_path() {
  local d=$LOCAL_PATH_CACHE
  [ -f "$d/.complete" ] && { log "local-path-provisioner $LOCAL_PATH_VERSION: cached in $d"; return 0; }
  begin_build "$d"
  phase local-path-download go_download local-path-provisioner
  phase local-path-compile bash -c "cd '$CLUSTER_SCRIPTS/go/local-path-provisioner' && go build -trimpath \
    -tags selinux,notest,grpcnotrace -ldflags '-s -w -X main.VERSION=$LOCAL_PATH_VERSION' \
    -o '$d.tmp/bin/local-path-provisioner' github.com/rancher/local-path-provisioner"
  reports "$LOCAL_PATH_VERSION" "$d.tmp/bin/local-path-provisioner" --version
  finish_build "$d" "$LOCAL_PATH_VERSION"
}

build_all() {
  command -v go >/dev/null || die "Go is needed to build the cluster (go not on PATH)"
  local what=("$@")
  [ ${#what[@]} -gt 0 ] || what=(pause etcd kubernetes containerd coredns local_path helm)
  for w in "${what[@]}"; do
    case $w in
      kubernetes|etcd|coredns|helm|pause|containerd) "build_$w" ;;
      local-path-provisioner|local_path) build_local_path ;;
      *) die "unknown component: $w" ;;
    esac
  done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  trap phase_report EXIT
  phase build build_all "$@"
fi
