#!/usr/bin/env bash
# Builds the test cluster's NATS image from the Go module github.com/nats-io/nats-server/v2
# (pinned by scripts/cluster/go/nats/go.mod) into the build cache, and imports it into the
# cluster's containerd, as images.sh does for the cluster's own images:
#   localhost/conveyor/nats:<version>   /nats-server, nothing else (the chart's nats.deploy)
#   bash scripts/cluster/nats-image.sh [build|import]   (default: both)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CLUSTER_SCRIPTS/image-import.sh"

NATS_VERSION=v2.11.17   # scripts/cluster/go/nats/go.mod requires the same
NATS_IMAGE=localhost/conveyor/nats:${NATS_VERSION#v}
NATS_CACHE="$CACHE_ROOT/nats-$NATS_VERSION"
NATS_TAR="$IMAGE_CACHE/nats-$NATS_VERSION.tar"

build_nats_binary() {
  local d=$NATS_CACHE
  [ -f "$d/.complete" ] && { log "nats-server $NATS_VERSION: cached in $d"; return 0; }
  command -v go >/dev/null || die "Go is needed to build nats-server (go not on PATH)"
  rm -rf "$d.tmp"; mkdir -p "$d.tmp/bin"
  (
    cd "$CLUSTER_SCRIPTS/go/nats"
    export CGO_ENABLED=0 GOTOOLCHAIN=local GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=readonly"
    go mod download
    go build -trimpath -ldflags '-s -w' -o "$d.tmp/bin/nats-server" github.com/nats-io/nats-server/v2
  )
  "$d.tmp/bin/nats-server" --version | grep -q "${NATS_VERSION#v}" || die "built nats-server is not $NATS_VERSION"
  echo "$NATS_VERSION" > "$d.tmp/.complete"; rm -rf "$d"; mv "$d.tmp" "$d"
}

build_nats_image() {
  [ -f "$NATS_TAR" ] && return 0
  build_nats_binary
  mkdir -p "$IMAGE_CACHE"
  local root
  root=$(mktemp -d)
  mkdir -p "$root/tmp" "$root/data"
  chmod 1777 "$root/tmp"
  cp "$NATS_CACHE/bin/nats-server" "$root/nats-server"
  bash "$CLUSTER_SCRIPTS/image-build.sh" --rootfs "$root" --tag "$NATS_IMAGE" \
    --out "$NATS_TAR" --entrypoint '["/nats-server"]'
  rm -rf "$root"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case ${1:-all} in
    build) build_nats_image ;;
    import) import_image "$NATS_TAR" ;;
    all) build_nats_image; import_image "$NATS_TAR" ;;
    *) die "usage: nats-image.sh [build|import]" ;;
  esac
fi
