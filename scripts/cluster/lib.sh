# shellcheck shell=bash
# Shared settings and helpers of the test-cluster scripts. Sourced, never run.
#
# Layout:
#   build cache (kept by cluster:down): ${CONVEYOR_CLUSTER_CACHE:-$HOME/.cache/conveyor-cluster}
#   cluster state, logs, kubeconfig, bin: <repo>/.cluster          (CONVEYOR_CLUSTER_DIR)
#   sockets and containerd's runtime state: /run/conveyor-cluster (short paths for sockets)

set -euo pipefail

CLUSTER_SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$CLUSTER_SCRIPTS/../.." && pwd)"

# --- pinned versions -----------------------------------------------------------------------
# Kubernetes commands come from scripts/cluster/go/kubernetes (go.mod pins the same version).
KUBE_VERSION=v1.34.12
KUBE_BUILD_DATE=2026-09-23T17:08:30Z   # the release's module time, so builds are reproducible
ETCD_VERSION=v3.6.5                    # scripts/cluster/go/etcd
HELM_VERSION=v3.19.5                   # scripts/cluster/go/helm
COREDNS_VERSION=v1.13.2                # scripts/cluster/go/coredns
PAUSE_VERSION=1.0                      # scripts/cluster/go/pause
CONTAINERD_VERSION=v2.4.2              # scripts/cluster/go/containerd (has the fix for #12364)
LOCAL_PATH_VERSION=v0.0.30             # scripts/cluster/go/local-path-provisioner
HELLO_IMAGE=jimjuniorb/hello-node:1.2.3
PAUSE_IMAGE=localhost/conveyor/pause:$PAUSE_VERSION
COREDNS_IMAGE=localhost/conveyor/coredns:$COREDNS_VERSION
LOCAL_PATH_IMAGE=localhost/conveyor/local-path-provisioner:$LOCAL_PATH_VERSION

# --- places --------------------------------------------------------------------------------
CACHE_ROOT="${CONVEYOR_CLUSTER_CACHE:-${HOME:-/root}/.cache/conveyor-cluster}"
KUBE_CACHE="$CACHE_ROOT/kubernetes-$KUBE_VERSION"
ETCD_CACHE="$CACHE_ROOT/etcd-$ETCD_VERSION"
HELM_CACHE="$CACHE_ROOT/helm-$HELM_VERSION"
COREDNS_CACHE="$CACHE_ROOT/coredns-$COREDNS_VERSION"
PAUSE_CACHE="$CACHE_ROOT/pause-$PAUSE_VERSION"
CONTAINERD_CACHE="$CACHE_ROOT/containerd-$CONTAINERD_VERSION"
LOCAL_PATH_CACHE="$CACHE_ROOT/local-path-provisioner-$LOCAL_PATH_VERSION"
IMAGE_CACHE="$CACHE_ROOT/images"

CLUSTER_DIR="${CONVEYOR_CLUSTER_DIR:-$REPO_ROOT/.cluster}"
RUN_ROOT=/run/conveyor-cluster
OWNER_FILE="$RUN_ROOT/owner"          # which .cluster directory the running cluster belongs to
CONTAINERD_SOCK="$RUN_ROOT/containerd.sock"

# --- network: everything lives on this machine ---------------------------------------------
# The node's address is the gateway address of the pod bridge, which the scripts create
# before anything starts: the API server binds and advertises it, so pods reach it through
# the `kubernetes` Service (kube-proxy DNATs 10.96.0.1:443 to it), the API server reaches the
# kubelet on it, and no component listens on any other interface than it and loopback.
BRIDGE=cnvr0
NODE_NAME=conveyor-node
NODE_IP=10.244.0.1
POD_SUBNET=10.244.0.0/24
CLUSTER_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SERVICE_IP=10.96.0.1
DNS_SERVICE_IP=10.96.0.10
CLUSTER_DOMAIN=cluster.local
APISERVER_PORT=6443
APISERVER_URL="https://$NODE_IP:$APISERVER_PORT"
ETCD_CLIENT_PORT=2379
ETCD_PEER_PORT=2380

# --- helpers -------------------------------------------------------------------------------
log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# phase NAME CMD...: runs CMD and prints how long it took. A failing CMD stops the script
# (set -e), and the EXIT trap phase_report names the phase that failed.
PHASE_TIMES=()
PHASE_STACK=()
PHASE_STARTS=()
phase() {
  local name=$1
  shift
  PHASE_STACK+=("$name")
  PHASE_STARTS+=("$(date +%s.%N)")
  log "phase $name: start"
  "$@"
  local n=$((${#PHASE_STACK[@]} - 1)) took
  took=$(awk -v a="${PHASE_STARTS[$n]}" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  unset "PHASE_STACK[$n]" "PHASE_STARTS[$n]"
  PHASE_TIMES+=("$name=${took}s")
  log "phase $name: done in ${took}s"
}

# On exit: the phases' times, and which phase failed, if one did.
phase_report() {
  local rc=${1:-$?}
  if [ "$rc" -ne 0 ] && [ ${#PHASE_STACK[@]} -gt 0 ]; then
    log "phase ${PHASE_STACK[-1]}: FAILED (exit $rc)"
  fi
  phase_summary
  return "$rc"
}

phase_summary() {
  log "phase times: ${PHASE_TIMES[*]:-none}"
}

# Path to a cached binary.
kube_bin() { echo "$KUBE_CACHE/bin/$1"; }

# ctr: the one built with our containerd (build.sh), talking the same API version; Debian's
# (of containerd 1.6) before it is built.
ctr() {
  if [ -x "$CONTAINERD_CACHE/bin/ctr" ]; then "$CONTAINERD_CACHE/bin/ctr" "$@"; else command ctr "$@"; fi
}

# kubectl against this cluster as its admin.
kc() { "$(kube_bin kubectl)" --kubeconfig "$CLUSTER_DIR/kubeconfig" "$@"; }

pidfile() { echo "$CLUSTER_DIR/run/$1.pid"; }

# The kubelet's root directory: .cluster/kubelet, unless the checkout's path is so long that
# the unix sockets the kubelet makes in it (pod-resources/kubelet.sock, ...) would pass the
# 107-byte limit; then under /run/conveyor-cluster.
kubelet_root() {
  if [ ${#CLUSTER_DIR} -le 56 ]; then echo "$CLUSTER_DIR/kubelet"; else echo "$RUN_ROOT/kubelet"; fi
}

# alive NAME: the recorded process of component NAME is running.
alive() {
  local f pid
  f=$(pidfile "$1")
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# Components in start order; cluster:down stops them in reverse.
COMPONENTS=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

need_root() {
  [ "$(id -u)" -eq 0 ] || die "the test cluster needs root (it runs containerd, kubelet, iptables)"
}
