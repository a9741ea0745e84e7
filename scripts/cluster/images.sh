#!/usr/bin/env bash
# Builds the cluster's two images from local files into the build cache, and imports them.
#   pause:      localhost/conveyor/pause:<v>  the sandbox image (scripts/cluster/go/pause)
#   coredns:    localhost/conveyor/coredns:<v> the cluster DNS (scripts/cluster/go/coredns)
#   local-path-provisioner: localhost/conveyor/local-path-provisioner:<v>  the dynamic
#               provisioner of the default StorageClass (scripts/cluster/go/local-path-provisioner)
#   hello-node: jimjuniorb/hello-node:1.2.3   Debian's static busybox with its applet links
#               and an /etc/os-release: /bin/sh, ls, cat, wget, httpd, ...
#   bash scripts/cluster/images.sh [build|import]   (default: both)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CLUSTER_SCRIPTS/image-import.sh"

PAUSE_TAR="$IMAGE_CACHE/pause-$PAUSE_VERSION.tar"
COREDNS_TAR="$IMAGE_CACHE/coredns-$COREDNS_VERSION.tar"
LOCAL_PATH_TAR="$IMAGE_CACHE/local-path-provisioner-$LOCAL_PATH_VERSION.tar"
HELLO_TAR="$IMAGE_CACHE/hello-node-1.2.3.tar"
BUSYBOX=/bin/busybox   # from Debian's busybox-static

build_pause_image() {
  [ -f "$PAUSE_TAR" ] && return 0
  [ -x "$PAUSE_CACHE/bin/pause" ] || die "pause is not built (scripts/cluster/build.sh pause)"
  local root
  root=$(mktemp -d)
  cp "$PAUSE_CACHE/bin/pause" "$root/pause"
  bash "$CLUSTER_SCRIPTS/image-build.sh" --rootfs "$root" --tag "$PAUSE_IMAGE" \
    --out "$PAUSE_TAR" --entrypoint '["/pause"]'
  rm -rf "$root"
}

build_coredns_image() {
  [ -f "$COREDNS_TAR" ] && return 0
  [ -x "$COREDNS_CACHE/bin/coredns" ] || die "coredns is not built (scripts/cluster/build.sh coredns)"
  local root
  root=$(mktemp -d)
  cp "$COREDNS_CACHE/bin/coredns" "$root/coredns"
  bash "$CLUSTER_SCRIPTS/image-build.sh" --rootfs "$root" --tag "$COREDNS_IMAGE" \
    --out "$COREDNS_TAR" --entrypoint '["/coredns"]'
  rm -rf "$root"
}

build_local_path_image() {
  [ -f "$LOCAL_PATH_TAR" ] && return 0
  [ -x "$LOCAL_PATH_CACHE/bin/local-path-provisioner" ] \
    || die "local-path-provisioner is not built (scripts/cluster/build.sh local-path-provisioner)"
  local root
  root=$(mktemp -d)
  cp "$LOCAL_PATH_CACHE/bin/local-path-provisioner" "$root/local-path-provisioner"
  bash "$CLUSTER_SCRIPTS/image-build.sh" --rootfs "$root" --tag "$LOCAL_PATH_IMAGE" \
    --out "$LOCAL_PATH_TAR" --entrypoint '["/local-path-provisioner"]'
  rm -rf "$root"
}

build_hello_image() {
  local version stamp
  version=$(dpkg-query -W -f '${Version}' busybox-static 2>/dev/null) || die "busybox-static is not installed"
  stamp="$HELLO_TAR.busybox-$version-r2"   # r: the recipe below; raise it when it changes
  [ -f "$HELLO_TAR" ] && [ -f "$stamp" ] && return 0
  "$BUSYBOX" --list-full >/dev/null 2>&1 || die "$BUSYBOX is not Debian's static busybox"
  local root applet
  root=$(mktemp -d)
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,home,var/www,proc,sys,dev}
  chmod 1777 "$root/tmp"
  cp "$BUSYBOX" "$root/bin/busybox"
  for applet in $("$BUSYBOX" --list-full); do
    [ "$applet" = bin/busybox ] && continue
    ln -sf /bin/busybox "$root/$applet"
  done
  cat > "$root/etc/os-release" <<OS
NAME="hello-node"
VERSION="1.2.3"
ID=hello-node
ID_LIKE=busybox
VERSION_ID=1.2.3
PRETTY_NAME="hello-node 1.2.3 (BusyBox $(echo "$version" | sed 's/^[0-9]*://; s/-.*//'), Conveyor test image)"
HOME_URL="https://busybox.net/"
OS
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
  echo 'hello from hello-node' > "$root/var/www/index.html"
  bash "$CLUSTER_SCRIPTS/image-build.sh" --rootfs "$root" --tag "$HELLO_IMAGE" \
    --out "$HELLO_TAR" --cmd '["/bin/sh"]' --env HOME=/root
  rm -rf "$root" "$HELLO_TAR".busybox-*
  touch "$stamp"
}

build_images() {
  mkdir -p "$IMAGE_CACHE"
  build_pause_image; build_coredns_image; build_local_path_image; build_hello_image
}
import_images() { import_image "$PAUSE_TAR" "$COREDNS_TAR" "$LOCAL_PATH_TAR" "$HELLO_TAR"; }

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case ${1:-all} in
    build) build_images ;;
    import) import_images ;;
    all) build_images; import_images ;;
    *) die "usage: images.sh [build|import]" ;;
  esac
fi
