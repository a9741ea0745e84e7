#!/usr/bin/env bash
# Rewrites the wrapper modules for the versions pinned in scripts/cluster/lib.sh (run after
# changing KUBE_VERSION, ETCD_VERSION or HELM_VERSION there; commit the go.mod/go.sum files).
# The Kubernetes wrapper's replace list is taken from the go.mod the module proxy serves for
# k8s.io/kubernetes at that version: each ./staging/src/k8s.io/NAME becomes k8s.io/NAME v0.X.Y.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
export GOTOOLCHAIN=local GOWORK=off GOFLAGS=-mod=mod
here="$CLUSTER_SCRIPTS/go"

staging_version="v0.${KUBE_VERSION#v1.}"
modfile=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
[ -f "$modfile" ] || die "could not fetch the go.mod of k8s.io/kubernetes@$KUBE_VERSION"
{
  sed -n '1,/^module /p' "$here/kubernetes/go.mod" | sed '$d'
  echo 'module conveyor.invalid/cluster/kubernetes'
  echo
  echo "go $(awk '$1 == "go" { print $2; exit }' "$modfile")"
  echo
  grep '^godebug' "$modfile" || true
  echo
  echo "require k8s.io/kubernetes $KUBE_VERSION"
  echo
  echo 'replace ('
  awk '$2 == "=>" && $3 ~ /^\.\/staging\// { print $1 }' "$modfile" | while read -r m; do
    printf '\t%s => %s %s\n' "$m" "$m" "$staging_version"
  done
  echo ')'
  echo
  echo 'tool ('
  for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubectl; do
    printf '\tk8s.io/kubernetes/cmd/%s\n' "$c"
  done
  echo ')'
} > "$here/kubernetes/go.mod.new"
mv "$here/kubernetes/go.mod.new" "$here/kubernetes/go.mod"
(cd "$here/kubernetes" && go mod tidy)
(cd "$here/etcd" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" && go mod tidy)
(cd "$here/helm" && go get "helm.sh/helm/v3@$HELM_VERSION" && go mod tidy)
(cd "$here/coredns" && go get "github.com/coredns/coredns@$COREDNS_VERSION" "k8s.io/api@$staging_version" \
  "k8s.io/apimachinery@$staging_version" "k8s.io/client-go@$staging_version" && go mod tidy)
log "wrapper modules updated: kubernetes $KUBE_VERSION (staging $staging_version), etcd $ETCD_VERSION, helm $HELM_VERSION, coredns $COREDNS_VERSION"
