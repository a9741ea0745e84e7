#!/usr/bin/env bash
# Restarts one component of the running test cluster, for fault tests: stops it, optionally
# keeps it down for a while, starts it again with the same configuration and waits until it
# is healthy again. Everything else keeps running (pods keep running through a containerd or
# kubelet restart; clients see an API server or etcd outage as connection errors).
#   bash scripts/cluster/restart.sh COMPONENT [--down-for SECONDS] [--kill]
#     COMPONENT: apiserver | etcd | kubelet | containerd | scheduler | controller-manager | proxy
#                (or the full names kube-apiserver, kube-scheduler, ...)
#     --down-for SECONDS  keep it stopped that long before starting it again (default 0)
#     --kill              SIGKILL instead of SIGTERM: a crash rather than a clean stop
# The cluster restarted is the running one (/run/conveyor-cluster/owner), whichever checkout
# started it, unless CONVEYOR_CLUSTER_DIR names another. Exits non-zero when the component
# does not come back healthy; prints its log's tail then. After the API server or etcd, it
# also waits until a new namespace gets its ServiceAccount (restarting the controller
# manager when that lags), so the cluster is usable for the next test when it returns.

# The running cluster's directory, before lib.sh derives its paths from it.
if [ -z "${CONVEYOR_CLUSTER_DIR:-}" ] && [ -s /run/conveyor-cluster/owner ]; then
  CONVEYOR_CLUSTER_DIR=$(cat /run/conveyor-cluster/owner)
  export CONVEYOR_CLUSTER_DIR
fi
source "$(dirname "${BASH_SOURCE[0]}")/up.sh"

usage() { sed -n '6,10p' "$0" >&2; exit 2; }

# component NAME: the name of the process record (.cluster/run/NAME.pid) for NAME.
component() {
  case $1 in
    apiserver|kube-apiserver) echo kube-apiserver ;;
    etcd) echo etcd ;;
    kubelet) echo kubelet ;;
    containerd) echo containerd ;;
    scheduler|kube-scheduler) echo kube-scheduler ;;
    controller-manager|kube-controller-manager) echo kube-controller-manager ;;
    proxy|kube-proxy) echo kube-proxy ;;
    *) return 1 ;;
  esac
}

# kill_component NAME: SIGKILL to its recorded process, then waits until it is gone.
kill_component() {
  local f pid
  f=$(pidfile "$1")
  pid=$(cat "$f" 2>/dev/null || true)
  rm -f "$f"
  [ -n "$pid" ] && running "$pid" || return 0
  log "killing $1 (pid $pid)"
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do running "$pid" || return 0; sleep 0.1; done
  die "$1 (pid $pid) did not die"
}

healthz() { curl -ksfm 3 "$1" >/dev/null; }
apiserver_ready() { [ "$(kc get --raw /readyz --request-timeout=5s 2>/dev/null)" = ok ]; }

# probe_namespace_served SECONDS: a new namespace gets its `default` ServiceAccount within
# SECONDS, i.e. the controller manager sees the API server's changes again.
probe_namespace_served() {
  local ns="conveyor-restart-probe-$$-$RANDOM" ok=1
  kc create namespace "$ns" >/dev/null 2>&1 || return 1
  wait_for "the service account controller" "$1" kc -n "$ns" get serviceaccount default || ok=0
  kc delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
  [ "$ok" -eq 1 ]
}

# After the API server (or etcd) came back, the controller manager's watches may have been
# refused for a moment (the API server answers before its RBAC caches are filled) and back
# off for a minute or more; tests that make namespaces would wait on it. When it does not
# catch up within seconds, restart it too.
settle_controllers() {
  probe_namespace_served 10 && return 0
  log "the controller manager has not caught up with the API server: restarting it too"
  stop_component kube-controller-manager
  start_controller_manager
  wait_for "kube-controller-manager /healthz" 60 healthz https://127.0.0.1:10257/healthz
  probe_namespace_served 30
}

# start_again NAME: starts NAME as up.sh does and waits for its health check.
start_again() {
  case $1 in
    containerd) launch_containerd ;;
    etcd)
      start_etcd
      # The API server reconnects by itself; wait until it answers again.
      wait_for "kube-apiserver /readyz" 60 apiserver_ready
      settle_controllers ;;
    kube-apiserver) start_apiserver && settle_controllers ;;
    kube-controller-manager)
      start_controller_manager
      wait_for "kube-controller-manager /healthz" 60 healthz https://127.0.0.1:10257/healthz ;;
    kube-scheduler)
      start_scheduler
      wait_for "kube-scheduler /healthz" 60 healthz https://127.0.0.1:10259/healthz ;;
    kubelet)
      start_kubelet
      wait_for "kubelet /healthz" 60 healthz http://127.0.0.1:10248/healthz
      wait_for "node $NODE_NAME Ready" 60 node_ready ;;
    kube-proxy)
      start_kube_proxy
      wait_for "kube-proxy /healthz" 60 healthz http://127.0.0.1:10256/healthz ;;
  esac
}

restart_main() {
  local name='' down_for=0 hard=0
  while [ $# -gt 0 ]; do
    case $1 in
      --down-for) [[ ${2:-} =~ ^[0-9]+(\.[0-9]+)?$ ]] || usage; down_for=$2; shift 2 ;;
      --kill) hard=1; shift ;;
      -h|--help) usage ;;
      *) [ -z "$name" ] || usage; name=$(component "$1") || { log "unknown component: $1"; usage; }; shift ;;
    esac
  done
  [ -n "$name" ] || usage
  need_root
  [ -f "$OWNER_FILE" ] && [ "$(cat "$OWNER_FILE")" = "$CLUSTER_DIR" ] \
    || die "no test cluster of $CLUSTER_DIR is running (owner: $(cat "$OWNER_FILE" 2>/dev/null || echo none))"
  [ -f "$CONF/containerd.toml" ] || die "$CONF has no configuration: was the cluster started by up.sh?"
  # One restart at a time on this machine: two at once would start two copies of a
  # component, one of which cannot bind its port while the other's pid gets recorded.
  exec 9>"$RUN_ROOT/restart.lock"
  flock 9
  local t0=$SECONDS
  if [ "$hard" -eq 1 ]; then kill_component "$name"; else stop_component "$name"; fi
  log "$name is down"
  [ "$down_for" = 0 ] || { log "keeping $name down for ${down_for}s"; sleep "$down_for"; }
  if ! start_again "$name"; then
    started "$name" || true
    die "$name did not come back healthy"
  fi
  started "$name"
  log "$name restarted and healthy ($((SECONDS - t0))s)"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  restart_main "$@"
fi
