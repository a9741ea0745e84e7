#!/usr/bin/env bash
# Imports image tarballs (docker-archive or OCI layout, e.g. from image-build.sh or
# `docker save`) into the test cluster's containerd, namespace k8s.io, where the kubelet's
# CRI finds them: pods then run them with imagePullPolicy IfNotPresent (or Never), no
# registry involved.
#   bash scripts/cluster/image-import.sh FILE.tar [FILE.tar...]
# CONTAINERD_ADDRESS overrides the socket (default: the test cluster's).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

import_image() {
  local address=${CONTAINERD_ADDRESS:-$CONTAINERD_SOCK} f
  for f in "$@"; do
    [ -f "$f" ] || die "no such image tarball: $f"
    ctr --address "$address" -n k8s.io images import "$f" >/dev/null \
      || die "ctr could not import $f"
    log "imported $(basename "$f")"
  done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  [ $# -gt 0 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
  import_image "$@"
fi
