#!/usr/bin/env bash
# Builds Conveyor's image from the repository's Dockerfile without a Docker engine, and
# imports it into the test cluster's containerd as conveyor:dev, also tagged
# conveyor:<package.json version> (what the chart's defaults name) (npm run cluster:image).
#
#   bash scripts/cluster/image.sh            # build, then import when the cluster runs
#   bash scripts/cluster/image.sh build      # build only: the tarball in the build cache
#   bash scripts/cluster/image.sh import     # import the last build
#
# How: Debian's buildah runs the very Dockerfile (`buildah bud`). Its FROM image cannot be
# pulled here (no registry is reachable), so it is assembled locally first under the exact
# name the Dockerfile's `ARG NODE_IMAGE=` default gives (or $NODE_IMAGE): a Debian bookworm
# minbase root file system (debootstrap, from Debian's mirror) slimmed like Debian's -slim
# images, the repository's pinned Node 24 binary (the npm package `node`, as `npm ci`
# installed it), npm from the npm registry, and the `node` user (uid 1000), as the official
# node:24-bookworm-slim has them. That base is cached as a tarball in the build cache, so a
# rerun only rebuilds Conveyor's own layers.
#
# Environment: CONVEYOR_IMAGE (default conveyor:dev), NODE_IMAGE (default: the Dockerfile's),
# DEBIAN_MIRROR, CONVEYOR_CLUSTER_CACHE, STORAGE_DRIVER (buildah's; vfs when overlay fails),
# NODE_EXTRA_CA_CERTS or SSL_CERT_FILE (CA bundle handed to `npm ci` as a build secret).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CLUSTER_SCRIPTS/image-import.sh"

APP_IMAGE=${CONVEYOR_IMAGE:-conveyor:dev}
NPM_VERSION=11.21.2
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NODE_BIN="$REPO_ROOT/node_modules/node/bin/node"
CA_BUNDLE=${NODE_EXTRA_CA_CERTS:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
DOCKERFILE="$REPO_ROOT/Dockerfile"
APP_TAR="$IMAGE_CACHE/$(echo "$APP_IMAGE" | tr '/:' '__').tar"
SCRATCH=()   # removed on exit, also after a failure
cleanup() { [ ${#SCRATCH[@]} -eq 0 ] || rm -rf "${SCRATCH[@]}"; }

base_name() {
  if [ -n "${NODE_IMAGE:-}" ]; then echo "$NODE_IMAGE"; return; fi
  local name
  name=$(sed -n 's/^ARG NODE_IMAGE=\([^[:space:]]*\).*/\1/p' "$DOCKERFILE" | head -n 1)
  [ -n "$name" ] || die "no 'ARG NODE_IMAGE=<image>' default in $DOCKERFILE"
  echo "$name"
}

need_tools() {
  local missing=()
  command -v buildah >/dev/null || missing+=(buildah)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root
  command -v apt-get >/dev/null || die "needs ${missing[*]} (Debian packages) and there is no apt-get"
  log "installing Debian packages: ${missing[*]}"
  mkdir -p "$RUN_ROOT"
  if [ ! -f "$RUN_ROOT/apt-updated" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 && touch "$RUN_ROOT/apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# buildah's storage: overlay where the kernel and file system allow it, else vfs.
pick_storage() {
  [ -n "${STORAGE_DRIVER:-}" ] && { export STORAGE_DRIVER; return 0; }
  if ! buildah info >/dev/null 2>&1; then
    export STORAGE_DRIVER=vfs
    log "buildah cannot use its default storage driver here: using vfs"
  fi
}

# The image ID (config digest) of a docker-archive tarball.
archive_id() {
  tar -xOf "$1" manifest.json | sed -n 's/.*"Config":"\([^".]*\)\.json".*/\1/p' | sed 's/^sha256://'
}

# Assembles the base image's root file system in DIR.
assemble_base_rootfs() {
  local root=$1 npm_tgz="$IMAGE_CACHE/npm-$NPM_VERSION.tgz"
  [ -x "$NODE_BIN" ] || die "$NODE_BIN is missing: run npm ci (the npm package node provides it)"
  log "debootstrap $DEBIAN_SUITE (minbase) from $DEBIAN_MIRROR"
  debootstrap --variant=minbase "$DEBIAN_SUITE" "$root" "$DEBIAN_MIRROR" > "$root.debootstrap.log" 2>&1 \
    || { tail -n 20 "$root.debootstrap.log" >&2; die "debootstrap failed"; }
  rm -f "$root.debootstrap.log"
  # Slim, as Debian's -slim images are: no documentation, manuals, translations or apt state.
  rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
    "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
    "$root"/usr/share/groff/* "$root"/usr/share/lintian/* "$root"/var/log/*.log "$root"/var/log/apt/*
  # The node user of the official image.
  chroot "$root" groupadd --gid 1000 node
  chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  # Node 24: the very binary the repository runs on.
  install -m 0755 "$NODE_BIN" "$root/usr/local/bin/node"
  # npm, for the Dockerfile's `npm ci`.
  if [ ! -f "$npm_tgz" ]; then
    log "fetching npm@$NPM_VERSION from the npm registry"
    (cd "$IMAGE_CACHE" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
    [ -f "$npm_tgz" ] || die "npm pack did not write $npm_tgz"
  fi
  mkdir -p "$root/usr/local/lib/node_modules/npm"
  tar -xzf "$npm_tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  chroot "$root" /usr/local/bin/node --version >/dev/null || die "the base's node does not run"
  chroot "$root" /usr/local/bin/npm --version >/dev/null || die "the base's npm does not run"
}

# The base image, in buildah's storage under the Dockerfile's FROM name.
base_image() {
  local name node_version tar id have root
  name=$(base_name)
  node_version=$("$NODE_BIN" --version)
  tar="$IMAGE_CACHE/base-$(echo "$name" | tr '/:' '__')-node${node_version#v}-npm$NPM_VERSION.tar"
  if [ ! -f "$tar" ]; then
    need_root
    root=$(mktemp -d "$IMAGE_CACHE/rootfs.XXXXXX")
    SCRATCH+=("$root" "$root.debootstrap.log")
    assemble_base_rootfs "$root"
    bash "$CLUSTER_SCRIPTS/image-build.sh" --rootfs "$root" --tag "$name" --out "$tar" \
      --env "NODE_VERSION=${node_version#v}" --env "NPM_VERSION=$NPM_VERSION" --cmd '["node"]'
    rm -rf "$root"
  fi
  id=$(archive_id "$tar")
  have=$(buildah inspect --type image --format '{{.FromImageID}}' "$name" 2>/dev/null || true)
  if [ "$have" != "$id" ]; then
    log "loading the base image $name into buildah's storage"
    buildah pull --quiet "docker-archive:$tar" >/dev/null
    buildah tag "$id" "$name"
  fi
  log "base image $name: node $node_version, npm $NPM_VERSION (cached in $tar)"
}

build_app() {
  local name size
  name=$(base_name)
  mkdir -p "$IMAGE_CACHE"
  need_tools
  pick_storage
  base_image
  log "buildah bud $DOCKERFILE -> $APP_IMAGE"
  # --network host: `npm ci` reaches the npm registry like the host does. --pull=never: the
  # base is the local one, never a registry's.
  # The host's CA bundle goes in as a build secret: this machine reaches the npm registry
  # through a TLS-intercepting proxy whose CA only the host trusts.
  local secret=()
  [ -s "$CA_BUNDLE" ] && secret=(--secret "id=ca_certs,src=$CA_BUNDLE")
  buildah bud --layers --pull=never --isolation chroot --network host "${secret[@]}" \
    --build-arg "NODE_IMAGE=$name" -f "$DOCKERFILE" -t "$APP_IMAGE" "$REPO_ROOT" >&2
  rm -f "$APP_TAR.tmp"
  buildah push --quiet "$APP_IMAGE" "docker-archive:$APP_TAR.tmp:$APP_IMAGE" >/dev/null
  mv "$APP_TAR.tmp" "$APP_TAR"
  size=$(buildah images --format '{{.Size}}' "$APP_IMAGE" | head -n 1)
  log "image $APP_IMAGE: $size (uncompressed), tarball $APP_TAR ($(du -h "$APP_TAR" | cut -f1))"
}

cluster_running() {
  [ -S "${CONTAINERD_ADDRESS:-$CONTAINERD_SOCK}" ] && command -v ctr >/dev/null
}

import_app() {
  [ -f "$APP_TAR" ] || die "no image tarball $APP_TAR: run scripts/cluster/image.sh build"
  if ! cluster_running; then
    log "the test cluster's containerd is not running: not imported (npm run cluster:up, then: bash scripts/cluster/image.sh import)"
    return 0
  fi
  import_image "$APP_TAR"
  # Also as <repository>:<package.json version>, the image the chart's and install.yaml's
  # defaults name, so they run this build unchanged.
  local version full
  version=$(sed -n 's/^  "version": "\([^"]*\)",*$/\1/p' "$REPO_ROOT/package.json" | head -n 1)
  full=$(normalized "$APP_IMAGE")
  if [ -n "$version" ] && [ "${full##*:}" != "$version" ]; then
    ctr --address "${CONTAINERD_ADDRESS:-$CONTAINERD_SOCK}" -n k8s.io images tag --force "$full" "${full%:*}:$version" >/dev/null
  fi
  log "$APP_IMAGE (also ${APP_IMAGE%:*}:$version) is in the cluster: use it with imagePullPolicy IfNotPresent or Never"
}

# NAME:TAG as containerd stores it (docker.io/library/conveyor:dev for conveyor:dev).
normalized() {
  local ref=$1 first=${1%%/*}
  if [[ $ref != */* ]]; then echo "docker.io/library/$ref"
  elif [[ $first != *.* && $first != *:* && $first != localhost ]]; then echo "docker.io/$ref"
  else echo "$ref"
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  start_time=$SECONDS
  trap cleanup EXIT
  case ${1:-all} in
    build) build_app ;;
    import) import_app ;;
    all) build_app; import_app ;;
    *) sed -n '2,8p' "$0" >&2; exit 2 ;;
  esac
  log "cluster:image took $((SECONDS - start_time))s"
fi
