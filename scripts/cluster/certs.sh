#!/usr/bin/env bash
# Makes the cluster's PKI with openssl into .cluster/pki and a kubeconfig per client:
#   ca                        the cluster CA (signs everything below; clients trust it)
#   sa.key / sa.pub           service account token signing key pair
#   apiserver                 API server serving cert (node IP, Service IP, kubernetes.default...)
#   apiserver-kubelet-client  the API server's client cert towards the kubelet
#   kubelet                   kubelet serving cert (node IP), verified by the API server
#   admin, kube-controller-manager, kube-scheduler, kube-proxy, kubelet-client: client certs,
#   each written into <name>.kubeconfig (admin's is .cluster/kubeconfig)
# Keys are ECDSA P-256 (quick to make) but the service account key, which is RSA.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PKI="$CLUSTER_DIR/pki"

# sign NAME SUBJECT EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]
sign() {
  local name=$1 subj=$2 eku=$3 san=${4:-}
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key" 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -z "$san" ] || echo "subjectAltName=$san"
  } > "$PKI/$name.ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -CAcreateserial -days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

# kubeconfig NAME USER: a kubeconfig with the CA and NAME's client cert embedded.
kubeconfig() {
  local name=$1 user=$2 out=${3:-$CLUSTER_DIR/$1.kubeconfig}
  cat > "$out" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: conveyor
  cluster:
    server: $APISERVER_URL
    certificate-authority-data: $(base64 -w0 < "$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 < "$PKI/$name.crt")
    client-key-data: $(base64 -w0 < "$PKI/$name.key")
contexts:
- name: conveyor
  context:
    cluster: conveyor
    user: $user
current-context: conveyor
EOF
  chmod 600 "$out"
}

make_pki() {
  command -v openssl >/dev/null || die "openssl is needed"
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=conveyor-test-cluster-ca" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$PKI/ca.crt" 2>/dev/null
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null

  sign apiserver "/CN=kube-apiserver" serverAuth \
    "IP:$NODE_IP,IP:$KUBERNETES_SERVICE_IP,IP:127.0.0.1,DNS:localhost,DNS:$NODE_NAME,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  sign kubelet "/CN=$NODE_NAME" serverAuth "IP:$NODE_IP,DNS:$NODE_NAME"
  sign kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
  sign admin "/O=system:masters/CN=conveyor-admin" clientAuth
  sign kube-controller-manager "/CN=system:kube-controller-manager" clientAuth
  sign kube-scheduler "/CN=system:kube-scheduler" clientAuth
  sign kube-proxy "/CN=system:kube-proxy" clientAuth
  rm -f "$PKI/ca.srl"

  kubeconfig admin conveyor-admin "$CLUSTER_DIR/kubeconfig"
  kubeconfig kube-controller-manager system:kube-controller-manager
  kubeconfig kube-scheduler system:kube-scheduler
  kubeconfig kube-proxy system:kube-proxy
  kubeconfig kubelet-client "system:node:$NODE_NAME" "$CLUSTER_DIR/kubelet.kubeconfig"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  make_pki
fi
