#!/usr/bin/env bash
# A real Ingress controller for the test cluster: Traefik v3, built from the Go module proxy
# (scripts/cluster/ingress/go, a wrapper module pinning the release), run on this machine
# with its Kubernetes Ingress provider. It watches Ingresses of the IngressClass `traefik`
# with its own ServiceAccount (Traefik's documented RBAC), and proxies to the pods' addresses
# (from EndpointSlices) on the pod bridge; it listens on loopback only. Nothing is pulled.
#
#   bash scripts/cluster/ingress.sh build            # into the build cache (a few minutes, once)
#   bash scripts/cluster/ingress.sh setup            # IngressClass, ServiceAccount, RBAC, kubeconfig
#   bash scripts/cluster/ingress.sh run [--port 18080] [--namespace NS]   # foreground
#   bash scripts/cluster/ingress.sh start [--port 18080] [--namespace NS] # background
#   bash scripts/cluster/ingress.sh stop | status
#
# `run` and `start` build and set up what is missing. --namespace (repeatable) limits the
# Ingresses watched; default: all namespaces. Background state: .cluster/ingress/ (pid, log).
# Uses KUBECONFIG when set (another cluster), else the test cluster's admin kubeconfig, to set
# up; Traefik itself authenticates with its ServiceAccount's token.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TRAEFIK_VERSION=v3.6.12   # scripts/cluster/ingress/go/go.mod pins the same
TRAEFIK_CACHE="$CACHE_ROOT/traefik-$TRAEFIK_VERSION"
TRAEFIK_BIN="$TRAEFIK_CACHE/bin/traefik"
INGRESS_DIR="$CLUSTER_DIR/ingress"
INGRESS_NAMESPACE=conveyor-ingress
INGRESS_CLASS=traefik
DEFAULT_PORT=18080

admin_kubeconfig() { echo "${KUBECONFIG:-$CLUSTER_DIR/kubeconfig}" | cut -d: -f1; }
kubectl_bin() {
  if [ -x "$(kube_bin kubectl)" ]; then kube_bin kubectl; else command -v kubectl || die "no kubectl"; fi
}
kca() { "$(kubectl_bin)" --kubeconfig "$(admin_kubeconfig)" "$@"; }

build() {
  local d=$TRAEFIK_CACHE out
  [ -f "$d/.complete" ] && [ -x "$TRAEFIK_BIN" ] && { log "traefik $TRAEFIK_VERSION: cached in $d"; return 0; }
  command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || die "Go is needed to build traefik"
  command -v go >/dev/null || export PATH=/usr/local/go/bin:$PATH
  rm -rf "$d.tmp"
  mkdir -p "$d.tmp/bin"
  log "building traefik $TRAEFIK_VERSION from Go modules (a few minutes the first time)"
  (
    cd "$CLUSTER_SCRIPTS/ingress/go"
    export CGO_ENABLED=0 GOTOOLCHAIN=local GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=readonly"
    go build -trimpath -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" \
      -o "$d.tmp/bin/traefik" github.com/traefik/traefik/v3/cmd/traefik
  )
  out=$("$d.tmp/bin/traefik" version 2>&1) || die "traefik version failed: $out"
  [[ $out == *"$TRAEFIK_VERSION"* ]] || die "traefik reports \"$out\", not $TRAEFIK_VERSION"
  echo "$TRAEFIK_VERSION" > "$d.tmp/.complete"
  rm -rf "$d"
  mv "$d.tmp" "$d"
  log "traefik $TRAEFIK_VERSION built into $d"
}

# The IngressClass, Traefik's ServiceAccount with its documented ClusterRole, and a
# kubeconfig holding a token of that account (valid for a day; `setup` renews it).
setup() {
  mkdir -p "$INGRESS_DIR"
  kca apply -f - >/dev/null <<EOF
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: $INGRESS_CLASS
  labels: {app.kubernetes.io/name: traefik, app.kubernetes.io/part-of: conveyor-cluster}
spec:
  controller: traefik.io/ingress-controller
---
apiVersion: v1
kind: Namespace
metadata:
  name: $INGRESS_NAMESPACE
  labels: {app.kubernetes.io/part-of: conveyor-cluster}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: traefik
  namespace: $INGRESS_NAMESPACE
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: conveyor-cluster-traefik
rules:
  - apiGroups: [""]
    resources: [services, secrets, nodes]
    verbs: [get, list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list, watch]
  - apiGroups: [networking.k8s.io]
    resources: [ingresses, ingressclasses]
    verbs: [get, list, watch]
  - apiGroups: [networking.k8s.io]
    resources: [ingresses/status]
    verbs: [update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: conveyor-cluster-traefik
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: conveyor-cluster-traefik}
subjects:
  - {kind: ServiceAccount, name: traefik, namespace: $INGRESS_NAMESPACE}
EOF
  local token server ca
  token=$(kca -n "$INGRESS_NAMESPACE" create token traefik --duration=24h)
  server=$(kca config view --minify --raw -o 'jsonpath={.clusters[0].cluster.server}')
  ca=$(kca config view --minify --raw -o 'jsonpath={.clusters[0].cluster.certificate-authority-data}')
  umask 077
  cat > "$INGRESS_DIR/kubeconfig.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: cluster
    cluster: {server: "$server", certificate-authority-data: "$ca"}
users:
  - name: traefik
    user: {token: "$token"}
contexts:
  - name: traefik
    context: {cluster: cluster, user: traefik}
current-context: traefik
EOF
  mv "$INGRESS_DIR/kubeconfig.tmp" "$INGRESS_DIR/kubeconfig"
  log "IngressClass $INGRESS_CLASS and Traefik's ServiceAccount $INGRESS_NAMESPACE/traefik are set up"
}

PORT=$DEFAULT_PORT
NAMESPACES=()
parse_run_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --port) PORT=$2; shift 2 ;;
      --namespace) NAMESPACES+=("$2"); shift 2 ;;
      *) die "unknown argument $1" ;;
    esac
  done
}

traefik_args() {
  local args=(
    --global.checkNewVersion=false --global.sendAnonymousUsage=false
    "--entryPoints.web.address=127.0.0.1:$PORT"
    --providers.kubernetesIngress=true
    --providers.kubernetesIngress.throttleDuration=0s
    --log.level=INFO --log.noColor=true --accessLog=true
  )
  if [ ${#NAMESPACES[@]} -gt 0 ]; then
    args+=("--providers.kubernetesIngress.namespaces=$(IFS=,; echo "${NAMESPACES[*]}")")
  fi
  printf '%s\n' "${args[@]}"
}

run() {
  parse_run_args "$@"
  build
  setup
  local args=()
  mapfile -t args < <(traefik_args)
  log "traefik $TRAEFIK_VERSION on http://127.0.0.1:$PORT (IngressClass $INGRESS_CLASS${NAMESPACES:+, namespaces ${NAMESPACES[*]}})"
  # Traefik reads KUBECONFIG when it runs outside a pod.
  KUBECONFIG="$INGRESS_DIR/kubeconfig" exec "$TRAEFIK_BIN" "${args[@]}"
}

pid_alive() { [ -f "$INGRESS_DIR/traefik.pid" ] && kill -0 "$(cat "$INGRESS_DIR/traefik.pid")" 2>/dev/null; }

start() {
  parse_run_args "$@"
  if pid_alive; then log "traefik is already running (pid $(cat "$INGRESS_DIR/traefik.pid"))"; return 0; fi
  build
  setup
  local args=()
  mapfile -t args < <(traefik_args)
  KUBECONFIG="$INGRESS_DIR/kubeconfig" setsid "$TRAEFIK_BIN" "${args[@]}" >> "$INGRESS_DIR/traefik.log" 2>&1 < /dev/null &
  echo $! > "$INGRESS_DIR/traefik.pid"
  local i
  for i in $(seq 1 60); do
    # Up once it answers at all (404 for a host no Ingress names).
    curl -sS -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null && { log "traefik is up on http://127.0.0.1:$PORT (log: $INGRESS_DIR/traefik.log)"; return 0; }
    pid_alive || break
    sleep 0.5
  done
  tail -n 20 "$INGRESS_DIR/traefik.log" >&2
  die "traefik did not come up"
}

stop() {
  if pid_alive; then
    kill "$(cat "$INGRESS_DIR/traefik.pid")"
    log "traefik stopped"
  fi
  rm -f "$INGRESS_DIR/traefik.pid"
}

status() {
  if pid_alive; then echo "traefik running (pid $(cat "$INGRESS_DIR/traefik.pid"))"; else echo "traefik not running"; return 1; fi
}

case ${1:-} in
  build) build ;;
  setup) setup ;;
  run) shift; run "$@" ;;
  start) shift; start "$@" ;;
  stop) stop ;;
  status) status ;;
  *) sed -n '2,18p' "$0" >&2; exit 2 ;;
esac
