#!/usr/bin/env bash
# What CI calls around the cluster tier:
#   bash scripts/cluster/ci.sh up     # cluster:up (builds on a cold machine), or nothing when
#                                     # KUBECONFIG names a reachable cluster already
#   npm run test:cluster              # the tier (reads KUBECONFIG, else .cluster/kubeconfig)
#   bash scripts/cluster/ci.sh down   # cluster:down, only for a cluster that `up` started
#   bash scripts/cluster/ci.sh run    # all three; exits with the tier's status
# On a failed `up` it prints the end of every component's log, since CI keeps no files.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

external_cluster() {
  [ -n "${KUBECONFIG:-}" ] && [ "${KUBECONFIG%%:*}" != "$CLUSTER_DIR/kubeconfig" ]
}

show_logs() {
  local f
  for f in "$CLUSTER_DIR"/logs/*.log; do
    [ -f "$f" ] || continue
    echo "---- last lines of $f" >&2
    tail -n 25 "$f" >&2
  done
}

ci_up() {
  if external_cluster; then
    log "KUBECONFIG is set ($KUBECONFIG): using that cluster, building nothing"
    local kubectl
    kubectl=$(command -v kubectl || echo "$(kube_bin kubectl)")
    if [ -x "$kubectl" ]; then
      "$kubectl" get --raw /readyz >/dev/null || die "the cluster in KUBECONFIG is not ready"
    fi
    return 0
  fi
  if ! bash "$CLUSTER_SCRIPTS/up.sh"; then
    show_logs
    return 1
  fi
}

ci_down() {
  if external_cluster; then
    log "KUBECONFIG names a cluster these scripts did not start: leaving it alone"
    return 0
  fi
  bash "$CLUSTER_SCRIPTS/down.sh"
}

case ${1:-} in
  up) ci_up ;;
  down) ci_down ;;
  run)
    ci_up || { ci_down || true; exit 1; }
    rc=0
    (cd "$REPO_ROOT" && npm run test:cluster) || rc=$?
    ci_down || true
    exit "$rc"
    ;;
  *) sed -n '2,8p' "$0" >&2; exit 2 ;;
esac
