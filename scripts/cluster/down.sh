#!/usr/bin/env bash
# Stops the test cluster (npm run cluster:down) and removes its state; keeps the build cache
# and the component logs (.cluster/logs).
#   bash scripts/cluster/down.sh [--dir CLUSTER_DIR]
# Stops only what the scripts started: the processes recorded in .cluster/run, the
# containers of our containerd (its shims, and what runs in the kubelet's pod cgroups), the
# network namespaces of our pods, our bridge and our iptables chains. Safe to run when
# nothing is running, and on the leftovers of a cluster whose processes were killed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# running PID: the process exists and is not a zombie.
running() { [ -e "/proc/$1" ] && ! grep -q '^[^)]*) Z' "/proc/$1/stat" 2>/dev/null; }

# stop_components NAME...: TERM to the recorded processes (all at once), then KILL to those
# still there after 10s. A pid is only signalled while its command line still names the
# component (a pid recorded before a reboot may be someone else's by now).
stop_components() {
  local name f pid i pids=() names=()
  for name in "$@"; do
    f=$(pidfile "$name")
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    rm -f "$f"
    # (No `| grep -q` here: with pipefail, grep's early exit can fail the pipeline.)
    if [ -n "$pid" ] && running "$pid" && [[ $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) == *"$name"* ]]; then
      log "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      names+=("$name")
    fi
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  for i in $(seq 1 100); do
    local left=0
    for pid in "${pids[@]}"; do running "$pid" && left=1; done
    [ "$left" -eq 1 ] || return 0
    sleep 0.1
  done
  for i in "${!pids[@]}"; do
    if running "${pids[$i]}"; then
      log "${names[$i]} did not stop in 10s: killing it"
      kill -KILL "${pids[$i]}" 2>/dev/null || true
    fi
  done
  sleep 0.2
}
stop_component() { stop_components "$1"; }

# Containers, through containerd while it runs.
kill_containers() {
  local ctr=(ctr --address "$CONTAINERD_SOCK" -n k8s.io) id
  if alive containerd && "${ctr[@]}" version >/dev/null 2>&1; then
    for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
      "${ctr[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    sleep 0.5
    for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
      "${ctr[@]}" tasks delete -f "$id" >/dev/null 2>&1 || true
    done
    for id in $("${ctr[@]}" containers ls -q 2>/dev/null); do
      "${ctr[@]}" containers delete "$id" >/dev/null 2>&1 || true
    done
  fi
}

# containerd, then whatever is left: its shims, and processes in the kubelet's pod cgroups.
stop_containers() {
  kill_containers
  stop_component containerd
  # Shims of our containerd (each names our socket in its command line).
  local pid
  for pid in $(pgrep -f -- "-address $CONTAINERD_SOCK" || true); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  # Processes left in the kubelet's pod cgroups, then the cgroups themselves.
  local dir
  for dir in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$dir" ] || continue
    find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r pid; do
      kill -KILL "$pid" 2>/dev/null || true
    done
  done
  sleep 0.2
  for dir in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$dir" ] || continue
    find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

# Network namespaces of our pods: the ones holding an address of the pod subnet.
remove_pod_netns() {
  local ns prefix=${POD_SUBNET%.*}.
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    case $ns in cni-*) ;; *) continue ;; esac
    if [[ $(ip -n "$ns" -4 addr show 2>/dev/null) == *"inet $prefix"* ]]; then
      ip netns delete "$ns" 2>/dev/null || { umount "/run/netns/$ns" 2>/dev/null; rm -f "/run/netns/$ns"; }
    fi
  done
}

# Mounts under our directories (pod volumes, container root file systems, shm), deepest first.
unmount_under() {
  local base=$1 m
  [ -n "$base" ] && [ "$base" != / ] || return 0
  # (The kubelet bind-mounts its root directory onto itself, so the base itself may be one.)
  for m in $(awk -v b="$base" '$2 == b || index($2, b "/") == 1 { print $2 }' /proc/self/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
  done
}

# remove_chains IPTABLES: the kubelet's and kube-proxy's chains (KUBE-*) and ours
# (CONVEYOR-*) with the rules that jump to them from the built-in chains.
remove_chains() {
  local ipt=$1 t rule chain
  command -v "$ipt" >/dev/null || return 0
  for t in filter nat mangle raw; do
    "$ipt" -w -t "$t" -S 2>/dev/null | grep -E '^-A [A-Z]+ .*-j (KUBE|CONVEYOR)-' | grep -vE '^-A (KUBE|CONVEYOR)-' \
      | while read -r rule; do eval "\"$ipt\" -w -t $t -D ${rule#-A }" 2>/dev/null || true; done || true
    for chain in $("$ipt" -w -t "$t" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^(KUBE|CONVEYOR)-/ { print $2 }'); do
      "$ipt" -w -t "$t" -F "$chain" 2>/dev/null || true
    done
    for chain in $("$ipt" -w -t "$t" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^(KUBE|CONVEYOR)-/ { print $2 }'); do
      "$ipt" -w -t "$t" -X "$chain" 2>/dev/null || true
    done
  done
}

remove_network() {
  remove_pod_netns
  if [ -x "$KUBE_CACHE/bin/kube-proxy" ] && iptables -w -t nat -S KUBE-SERVICES >/dev/null 2>&1; then
    "$KUBE_CACHE/bin/kube-proxy" --cleanup >/dev/null 2>&1 || log "kube-proxy --cleanup reported an error"
  fi
  remove_chains iptables
  remove_chains ip6tables
  ip link delete "$BRIDGE" type bridge 2>/dev/null || true
  # Restore the sysctls up.sh changed.
  if [ -f "$RUN_ROOT/sysctl.saved" ]; then
    sysctl -qw $(cat "$RUN_ROOT/sysctl.saved") 2>/dev/null || true
    rm -f "$RUN_ROOT/sysctl.saved"
  fi
}

# Processes that other cluster scripts started: the ingress controller (ingress.sh), and any
# other pid file in .cluster/run named after its program.
stop_extras() {
  if [ -f "$CLUSTER_DIR/ingress/traefik.pid" ] && [ -f "$CLUSTER_SCRIPTS/ingress.sh" ]; then
    CONVEYOR_CLUSTER_DIR="$CLUSTER_DIR" bash "$CLUSTER_SCRIPTS/ingress.sh" stop || true
  fi
  local f name extras=()
  for f in "$CLUSTER_DIR"/run/*.pid; do
    [ -f "$f" ] || continue
    name=$(basename "$f" .pid)
    [[ " ${COMPONENTS[*]} " == *" $name "* ]] || extras+=("$name")
  done
  [ ${#extras[@]} -eq 0 ] || stop_components "${extras[@]}"
}

down() {
  need_root
  stop_extras
  # The node and the controllers, then the pods (whose open watches would hold the API
  # server's graceful shutdown), the API server, etcd, and containerd last.
  stop_components kube-proxy kubelet kube-scheduler kube-controller-manager
  kill_containers
  stop_components kube-apiserver
  stop_components etcd
  stop_containers
  remove_network
  unmount_under "$CLUSTER_DIR"
  unmount_under "$RUN_ROOT/kubelet"
  unmount_under "$RUN_ROOT/containerd"
  # Everything but the logs (and the build cache, which lives elsewhere).
  if [ -d "$CLUSTER_DIR" ]; then
    find "$CLUSTER_DIR" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} + 2>/dev/null \
      || log "could not remove all of $CLUSTER_DIR (still mounted?)"
  fi
  rm -rf "$RUN_ROOT/kubelet" "$RUN_ROOT/containerd" "$RUN_ROOT/containerd.sock" "$RUN_ROOT/containerd.sock.ttrpc"
  if [ -f "$OWNER_FILE" ] && [ "$(cat "$OWNER_FILE")" = "$CLUSTER_DIR" ]; then rm -f "$OWNER_FILE"; fi
  log "cluster stopped; state removed (build cache kept in $CACHE_ROOT)"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  if [ "${1:-}" = --dir ]; then
    CLUSTER_DIR=$2
  fi
  start=$SECONDS
  down
  log "cluster:down took $((SECONDS - start))s"
fi
