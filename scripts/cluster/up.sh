#!/usr/bin/env bash
# Starts the single-node test cluster (npm run cluster:up). Idempotent: when the cluster of
# this checkout is already running and healthy it says so and returns within seconds;
# anything left half-started (or a cluster of another checkout on this machine) is taken
# down first. Builds whatever the build cache lacks (see build.sh).
#
# Components, each a process of ours with its pid in .cluster/run and its log in .cluster/logs:
#   containerd (built from Go modules; Debian's runc and CNI plugins), etcd, kube-apiserver,
#   kube-controller-manager, kube-scheduler, kubelet, kube-proxy (iptables mode); and in the
#   cluster, CoreDNS (kube-system/coredns) as the cluster DNS and local-path-provisioner
#   (local-path-storage) behind the default StorageClass `local-path`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CLUSTER_SCRIPTS/build.sh"
source "$CLUSTER_SCRIPTS/images.sh"
source "$CLUSTER_SCRIPTS/certs.sh"
source "$CLUSTER_SCRIPTS/down.sh"

LOGS="$CLUSTER_DIR/logs"
CONF="$CLUSTER_DIR/conf"
DEB_PACKAGES=(runc containernetworking-plugins busybox-static iptables conntrack openssl curl)
CNI_BIN_DIR=/usr/lib/cni

# --- health --------------------------------------------------------------------------------
cluster_healthy() { control_plane_healthy && node_current && storage_ready; }

# The node runs the containerd these scripts build now (not Debian's, nor an older build).
node_current() {
  local pid
  pid=$(cat "$(pidfile containerd)" 2>/dev/null) || return 1
  [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$CONTAINERD_CACHE/bin/containerd" ]
}

# Everything but the node's runtime and the StorageClass: what an in-place update keeps.
control_plane_healthy() {
  [ -f "$OWNER_FILE" ] && [ "$(cat "$OWNER_FILE")" = "$CLUSTER_DIR" ] || return 1
  local c
  for c in "${COMPONENTS[@]}"; do alive "$c" || return 1; done
  [ -x "$(kube_bin kubectl)" ] && [ -f "$CLUSTER_DIR/kubeconfig" ] || return 1
  curl -ksfm 3 https://127.0.0.1:10259/healthz >/dev/null || return 1   # kube-scheduler
  curl -ksfm 3 https://127.0.0.1:10257/healthz >/dev/null || return 1   # kube-controller-manager
  curl -sfm 3 http://127.0.0.1:10248/healthz >/dev/null || return 1     # kubelet
  curl -sfm 3 http://127.0.0.1:10256/healthz >/dev/null || return 1     # kube-proxy
  [ "$(kc get --raw /readyz --request-timeout=5s 2>/dev/null)" = ok ] || return 1
  [ "$(kc get node "$NODE_NAME" --request-timeout=5s \
        -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ] && dns_ready
}

# wait_for DESCRIPTION SECONDS CMD...: polls CMD every half second.
wait_for() {
  local what=$1 limit=$2 start
  shift 2
  start=$SECONDS
  until "$@" >/dev/null 2>&1; do
    if [ $((SECONDS - start)) -ge "$limit" ]; then
      log "timed out after ${limit}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

# start NAME BINARY ARGS...: runs a component in its own session (so it outlives the shell
# that started it), output appended to .cluster/logs/NAME.log, pid in .cluster/run/NAME.pid.
start() {
  local name=$1
  shift
  log "starting $name"
  printf '\n==== %s starting %s\n%s\n' "$(date -Is)" "$name" "$*" >> "$LOGS/$name.log"
  # 9>&-: restart.sh holds its one-at-a-time lock on fd 9; a component started from there
  # must not inherit it, or the lock would outlive the restart and block the next one.
  setsid "$@" >> "$LOGS/$name.log" 2>&1 < /dev/null 9>&- &
  echo $! > "$(pidfile "$name")"
}

# started NAME: the component's process is (still) alive; if not, shows its log's tail.
started() {
  alive "$1" && return 0
  log "$1 exited; last lines of $LOGS/$1.log:"
  tail -n 30 "$LOGS/$1.log" >&2 || true
  return 1
}

# --- phases --------------------------------------------------------------------------------
host_packages() {
  local missing=() p
  for p in "${DEB_PACKAGES[@]}"; do
    [[ $(dpkg-query -W -f '${Status}' "$p" 2>/dev/null) == *"ok installed"* ]] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && { log "Debian packages present"; return 0; }
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get"
  log "installing Debian packages: ${missing[*]}"
  # The package lists may be stale or absent on a new machine: refresh them once, first.
  DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# The cluster's ports must be free. A process of ours still holding one (its pid record was
# lost) is stopped; anyone else's is an error.
free_ports() {
  local port pid exe
  for port in $APISERVER_PORT $ETCD_CLIENT_PORT $ETCD_PEER_PORT 10248 10249 10250 10256 10257 10259; do
    for pid in $(ss -Htlnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
      exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
      if [[ $exe == "$CACHE_ROOT"/* ]]; then
        log "port $port: stopping a stray $(basename "$exe") of ours (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
      else
        die "port $port is in use by pid $pid ($exe); the test cluster needs it"
      fi
    done
  done
}

wait_apt() {
  wait "$1" && return 0
  tail -n 20 "$LOGS/apt.log" >&2
  die "installing Debian packages failed (see $LOGS/apt.log)"
}

host_network() {
  [ -f "$RUN_ROOT/sysctl.saved" ] || echo "net.ipv4.ip_forward=$(sysctl -n net.ipv4.ip_forward)" \
    "net.bridge.bridge-nf-call-iptables=$(sysctl -n net.bridge.bridge-nf-call-iptables 2>/dev/null || echo 0)" \
    > "$RUN_ROOT/sysctl.saved"
  # Pod traffic to Services is DNATed on the node and routed back onto the bridge; bridged
  # replies must pass iptables for conntrack to undo the DNAT.
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || modprobe br_netfilter 2>/dev/null || true
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || die "bridge netfilter (br_netfilter) is not available"
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$NODE_IP/${POD_SUBNET#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Forwarding is on, so keep pod traffic on this machine: pods get no default route (see the
  # CNI config) and anything from the pod network leaving by another interface is dropped.
  iptables -w -N CONVEYOR-GUARD 2>/dev/null || iptables -w -F CONVEYOR-GUARD
  iptables -w -A CONVEYOR-GUARD -s "$CLUSTER_CIDR" ! -o "$BRIDGE" -j DROP
  iptables -w -C FORWARD -j CONVEYOR-GUARD 2>/dev/null || iptables -w -I FORWARD 1 -j CONVEYOR-GUARD
}

write_configs() {
  mkdir -p "$CONF" "$CLUSTER_DIR/cni/net.d" "$CLUSTER_DIR/cni/ipam"
  write_containerd_config
  write_node_configs
}

# containerd 2.x, built from Go modules (build.sh) with its own runc shim: Debian's containerd
# 1.6 shim drops a container's output that is still in flight 2 s after it exits (containerd
# #12364). runc and the CNI plugins are Debian's. Config version 3, which 2.4 migrates as it
# loads (its own version 4 moves [grpc] into a plugin's section).
write_containerd_config() {
  mkdir -p "$CONF"
  cat > "$CONF/containerd.toml" <<EOF
# containerd of the Conveyor test cluster (written by scripts/cluster/up.sh)
version = 3
root = "$CLUSTER_DIR/containerd"
state = "$RUN_ROOT/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing", "io.containerd.nri.v1.nri"]

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$RUN_ROOT/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$PAUSE_IMAGE"

[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
  # This machine denies lowering oom_score_adj (no CAP_SYS_RESOURCE): keep every container at
  # or above containerd's own score instead of failing to start pod sandboxes at -998.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      # Our shim, never another containerd's that happens to be on PATH.
      runtime_path = "$CONTAINERD_CACHE/bin/containerd-shim-runc-v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$(command -v runc)"
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["$CNI_BIN_DIR"]
    conf_dir = "$CLUSTER_DIR/cni/net.d"
    max_conf_num = 1
EOF
}

# The CNI, kubelet and kube-proxy configs. (kube-proxy exits when its file is rewritten: an
# in-place update of the node leaves these alone.)
write_node_configs() {
  # The bridge plugin attaches each pod to $BRIDGE (which already holds the node IP as the
  # gateway). Pods get routes only to the pod network (on-link) and the Service range.
  cat > "$CLUSTER_DIR/cni/net.d/10-conveyor.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "conveyor",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$CLUSTER_DIR/cni/ipam",
        "ranges": [[{ "subnet": "$POD_SUBNET", "gateway": "$NODE_IP" }]],
        "routes": [{ "dst": "$SERVICE_CIDR" }]
      }
    }
  ]
}
EOF
  cat > "$CONF/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $CLUSTER_DIR/pki/kubelet.crt
tlsPrivateKeyFile: $CLUSTER_DIR/pki/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $CLUSTER_DIR/pki/ca.crt}
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
# Images are imported, never pulled (no registry is reachable): never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
  imagefs.inodesFree: 1%
clusterDomain: $CLUSTER_DOMAIN
clusterDNS: [$DNS_SERVICE_IP]
# CoreDNS (and pods with dnsPolicy Default) get no upstream name servers: nothing outside
# the cluster is resolved.
resolvConf: ""
podLogsDir: $CLUSTER_DIR/pod-logs
maxPods: 110
hairpinMode: hairpin-veth
rotateCertificates: false
serverTLSBootstrap: false
registerNode: true
nodeStatusUpdateFrequency: 5s
syncFrequency: 10s
shutdownGracePeriod: 0s
EOF
  cat > "$CONF/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $CLUSTER_DIR/kube-proxy.kubeconfig
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
mode: iptables
clusterCIDR: $CLUSTER_CIDR
nodePortAddresses: ["$NODE_IP/32"]
iptables:
  syncPeriod: 30s
  minSyncPeriod: 0s
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

# The cluster DNS: CoreDNS in kube-system behind the Service kube-dns ($DNS_SERVICE_IP),
# answering for $CLUSTER_DOMAIN from the API (no forwarding anywhere).
write_dns_manifest() {
  cat > "$CONF/coredns.yaml" <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects:
- {kind: ServiceAccount, name: coredns, namespace: kube-system}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  Corefile: |
    .:53 {
        errors
        health :8080
        ready :8181
        kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
            pods insecure
            ttl 30
        }
        cache 30
        loadbalance
    }
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  replicas: 1
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      serviceAccountName: coredns
      priorityClassName: system-cluster-critical
      dnsPolicy: Default
      terminationGracePeriodSeconds: 1
      containers:
      - name: coredns
        image: $COREDNS_IMAGE
        imagePullPolicy: Never
        args: [-conf, /etc/coredns/Corefile]
        ports:
        - {name: dns, containerPort: 53, protocol: UDP}
        - {name: dns-tcp, containerPort: 53, protocol: TCP}
        readinessProbe:
          httpGet: {path: /ready, port: 8181}
          periodSeconds: 1
        livenessProbe:
          httpGet: {path: /health, port: 8080}
          periodSeconds: 10
        resources:
          requests: {cpu: 10m, memory: 30Mi}
        volumeMounts:
        - {name: config, mountPath: /etc/coredns, readOnly: true}
      volumes:
      - name: config
        configMap: {name: coredns}
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  clusterIP: $DNS_SERVICE_IP
  selector: {k8s-app: kube-dns}
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
EOF
}

start_dns() {
  write_dns_manifest
  kc apply -f "$CONF/coredns.yaml" >/dev/null
}

dns_ready() {
  [ "$(kc -n kube-system get deployment coredns -o 'jsonpath={.status.readyReplicas}' 2>/dev/null)" = 1 ]
}

# launch_containerd: starts containerd and waits for its socket (restart.sh uses it alone:
# the images are still in containerd's root).
launch_containerd() {
  mkdir -p "$RUN_ROOT"
  # Our binaries first on PATH, so whatever containerd runs by name (its shim) is ours.
  start containerd env PATH="$CONTAINERD_CACHE/bin:$PATH" "$CONTAINERD_CACHE/bin/containerd" \
    --config "$CONF/containerd.toml"
  wait_for "containerd's socket" 30 ctr --address "$CONTAINERD_SOCK" version || { started containerd; return 1; }
}

# The default StorageClass `local-path`: Rancher's local-path-provisioner (as kind ships it)
# creates a directory under .cluster/local-path for each claim, with a helper pod of the
# busybox test image, and removes it when the volume is released.
write_storage_manifest() {
  cat > "$CONF/local-path-storage.yaml" <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: local-path-storage}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: local-path-provisioner, namespace: local-path-storage}
---
# Its helper pods live in its own namespace only.
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: local-path-provisioner, namespace: local-path-storage}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, patch, update, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: local-path-provisioner, namespace: local-path-storage}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: local-path-provisioner}
subjects:
- {kind: ServiceAccount, name: local-path-provisioner, namespace: local-path-storage}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "conveyor:local-path-provisioner"}
rules:
- apiGroups: [""]
  resources: [nodes, persistentvolumeclaims, configmaps, pods, pods/log]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [persistentvolumes]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [storage.k8s.io]
  resources: [storageclasses]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "conveyor:local-path-provisioner"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "conveyor:local-path-provisioner"}
subjects:
- {kind: ServiceAccount, name: local-path-provisioner, namespace: local-path-storage}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: local-path-config, namespace: local-path-storage}
data:
  config.json: |-
    {"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["$CLUSTER_DIR/local-path"]}]}
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
  helperPod.yaml: |-
    apiVersion: v1
    kind: Pod
    metadata: {name: helper-pod}
    spec:
      priorityClassName: system-node-critical
      tolerations:
      - {key: node.kubernetes.io/disk-pressure, operator: Exists, effect: NoSchedule}
      containers:
      - name: helper-pod
        image: $HELLO_IMAGE
        imagePullPolicy: Never
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: local-path-provisioner, namespace: local-path-storage}
spec:
  replicas: 1
  selector: {matchLabels: {app: local-path-provisioner}}
  template:
    metadata: {labels: {app: local-path-provisioner}}
    spec:
      serviceAccountName: local-path-provisioner
      priorityClassName: system-cluster-critical
      terminationGracePeriodSeconds: 1
      containers:
      - name: local-path-provisioner
        image: $LOCAL_PATH_IMAGE
        imagePullPolicy: Never
        command: [/local-path-provisioner, start, --config, /etc/config/config.json,
                  --service-account-name, local-path-provisioner, --helper-image, $HELLO_IMAGE]
        env:
        - name: POD_NAMESPACE
          valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
        - {name: CONFIG_MOUNT_PATH, value: /etc/config/}
        resources:
          requests: {cpu: 10m, memory: 20Mi}
        volumeMounts:
        - {name: config, mountPath: /etc/config/}
      volumes:
      - name: config
        configMap: {name: local-path-config}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
EOF
}

start_storage() {
  mkdir -p "$CLUSTER_DIR/local-path"
  write_storage_manifest
  kc apply -f "$CONF/local-path-storage.yaml" >/dev/null
}

storage_ready() {
  [ "$(kc -n local-path-storage get deployment local-path-provisioner -o 'jsonpath={.status.readyReplicas}' 2>/dev/null)" = 1 ]
}

start_containerd() {
  launch_containerd
  import_images
}

start_etcd() {
  start etcd "$ETCD_CACHE/bin/etcd" --name conveyor --data-dir "$CLUSTER_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "conveyor=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --log-level warn
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health" || { started etcd; return 1; }
}

start_apiserver() {
  local pki="$CLUSTER_DIR/pki"
  start kube-apiserver "$(kube_bin kube-apiserver)" \
    --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port="$APISERVER_PORT" \
    --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-mode=Node,RBAC --anonymous-auth=false \
    --enable-admission-plugins=NodeRestriction \
    --allow-privileged=true \
    --client-ca-file="$pki/ca.crt" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$pki/ca.crt" \
    --kubelet-preferred-address-types=InternalIP \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" \
    --profiling=false --v=1
  wait_for "kube-apiserver /readyz" 90 bash -c "[ \"\$('$(kube_bin kubectl)' --kubeconfig '$CLUSTER_DIR/kubeconfig' get --raw /readyz 2>/dev/null)\" = ok ]" \
    || { started kube-apiserver; return 1; }
}

start_controller_manager() {
  local pki="$CLUSTER_DIR/pki"
  start kube-controller-manager "$(kube_bin kube-controller-manager)" \
    --kubeconfig="$CLUSTER_DIR/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig="$CLUSTER_DIR/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig="$CLUSTER_DIR/kube-controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
    --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --profiling=false --v=1
}

start_scheduler() {
  start kube-scheduler "$(kube_bin kube-scheduler)" \
    --kubeconfig="$CLUSTER_DIR/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig="$CLUSTER_DIR/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig="$CLUSTER_DIR/kube-scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false --profiling=false --v=1
}

start_kubelet() {
  mkdir -p "$(kubelet_root)" "$CLUSTER_DIR/pod-logs"
  start kubelet "$(kube_bin kubelet)" \
    --config="$CONF/kubelet.yaml" --kubeconfig="$CLUSTER_DIR/kubelet.kubeconfig" \
    --root-dir="$(kubelet_root)" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" \
    --pod-infra-container-image="$PAUSE_IMAGE" --v=1
}

start_kube_proxy() {
  start kube-proxy "$(kube_bin kube-proxy)" --config="$CONF/kube-proxy.yaml" --v=1
}

start_node_and_controllers() {
  start_controller_manager
  start_scheduler
  start_kubelet
  start_kube_proxy
}

node_ready() {
  [ "$(kc get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}
service_proxied() { [[ $(iptables -w -t nat -S KUBE-SERVICES 2>/dev/null) == *"-d $KUBERNETES_SERVICE_IP/32"* ]]; }

wait_ready() {
  local c
  wait_for "node $NODE_NAME Ready" 120 node_ready || {
    for c in kubelet containerd; do started "$c" || true; done
    kc describe node "$NODE_NAME" >&2 || true
    return 1
  }
  wait_for "the default ServiceAccount" 60 kc -n default get serviceaccount default || { started kube-controller-manager; return 1; }
  wait_for "kube-proxy's rules for the kubernetes Service" 60 service_proxied || { started kube-proxy; return 1; }
  wait_for "the cluster DNS (coredns) to be ready" 90 dns_ready || {
    kc -n kube-system describe pods -l k8s-app=kube-dns >&2 || true
    kc -n kube-system logs deployment/coredns --tail=20 >&2 || true
    return 1
  }
  wait_for "the local-path provisioner to be ready" 90 storage_ready || {
    kc -n local-path-storage describe pods >&2 || true
    kc -n local-path-storage logs deployment/local-path-provisioner --tail=20 >&2 || true
    return 1
  }
  for c in "${COMPONENTS[@]}"; do started "$c"; done
}

# Replaces the node's containerd by the one built now, keeping the control plane (etcd's
# state, certificates, kubeconfig) and every API object: the kubelet stops, every container
# is stopped, containerd's state is cleared and the new one starts with the images imported
# again (also Conveyor's last image.sh build); the kubelet then makes every pod's sandbox
# anew. Pods of Deployments come back; a run pod caught running fails.
swap_runtime() {
  stop_component kubelet
  stop_containers
  remove_pod_netns
  rm -rf "$CLUSTER_DIR/cni/ipam"
  unmount_under "$RUN_ROOT/containerd"
  unmount_under "$CLUSTER_DIR/containerd"
  rm -rf "$RUN_ROOT/containerd" "$CLUSTER_DIR/containerd"
  mkdir -p "$CLUSTER_DIR/cni/ipam"
  write_containerd_config
  start_containerd
  local app
  for app in "$IMAGE_CACHE"/conveyor*_*.tar; do
    [ -f "$app" ] || continue
    CONVEYOR_IMAGE=$(basename "$app" .tar | sed 's/_/:/') bash "$CLUSTER_SCRIPTS/image.sh" import || true
  done
  start_kubelet
}

# The cluster is up but behind these scripts (Debian's containerd from before, or no
# StorageClass yet): brings the node up to date in place, without a restart of the control plane.
update_in_place() {
  phase build build_all
  phase images build_images
  node_current || phase containerd-swap swap_runtime
  phase storage start_storage
  phase wait-ready wait_ready
}

install_clients() {
  mkdir -p "$CLUSTER_DIR/bin"
  cp -f "$(kube_bin kubectl)" "$HELM_CACHE/bin/helm" "$CLUSTER_DIR/bin/"
}

up() {
  need_root
  mkdir -p "$RUN_ROOT"
  if cluster_healthy; then
    install_clients
    log "cluster is already running and healthy: export KUBECONFIG=$CLUSTER_DIR/kubeconfig"
    return 0
  fi
  if control_plane_healthy; then
    log "cluster is running; updating its node in place (containerd, StorageClass)"
    update_in_place
    install_clients
    log "cluster is up: export KUBECONFIG=$CLUSTER_DIR/kubeconfig PATH=$CLUSTER_DIR/bin:\$PATH"
    return 0
  fi
  # Whatever is there is stale or half-started: clear it, and any other checkout's cluster.
  local owner=''
  [ -f "$OWNER_FILE" ] && owner=$(cat "$OWNER_FILE")
  if [ -n "$owner" ] && [ "$owner" != "$CLUSTER_DIR" ] && [ -d "$owner" ]; then
    log "taking down the cluster of $owner first (one test cluster per machine)"
    phase down-other bash "$CLUSTER_SCRIPTS/down.sh" --dir "$owner"
  fi
  if [ -d "$CLUSTER_DIR/run" ] || [ -n "$owner" ] || ip link show "$BRIDGE" >/dev/null 2>&1; then
    phase down-stale down
  fi
  mkdir -p "$CLUSTER_DIR/run" "$LOGS"
  echo "$CLUSTER_DIR" > "$OWNER_FILE"

  # apt (network and disk) runs while Go compiles.
  host_packages > "$LOGS/apt.log" 2>&1 &
  local apt_pid=$!
  phase build build_all
  phase host-packages wait_apt "$apt_pid"
  phase images build_images
  phase free-ports free_ports
  phase host-network host_network
  phase certs make_pki
  phase configs write_configs
  phase containerd start_containerd
  phase etcd start_etcd
  phase kube-apiserver start_apiserver
  phase node-and-controllers start_node_and_controllers
  phase dns start_dns
  phase storage start_storage
  phase wait-ready wait_ready
  install_clients
  log "cluster is up: export KUBECONFIG=$CLUSTER_DIR/kubeconfig PATH=$CLUSTER_DIR/bin:\$PATH"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  total_start=$SECONDS
  on_exit() {
    local rc=$?
    phase_report "$rc" || true
    log "cluster:up took $((SECONDS - total_start))s in all (exit $rc)"
    [ "$rc" -eq 0 ] || log "component logs are in $CLUSTER_DIR/logs; clear up with: npm run cluster:down"
    exit "$rc"
  }
  trap on_exit EXIT
  up
fi
