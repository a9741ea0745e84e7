#!/usr/bin/env bash
# Makes a one-layer image tarball in docker-archive layout (what `docker save` writes and
# `ctr images import` reads) from a directory that holds the image's root file system.
#
#   bash scripts/cluster/image-build.sh --rootfs DIR --tag NAME:TAG --out FILE.tar \
#        [--entrypoint '["/bin/x"]'] [--cmd '["/bin/sh"]'] [--env K=V]... [--workdir /]
#
# --entrypoint and --cmd take JSON arrays. The layer tar is deterministic (sorted names, owner
# root, mtime 0), so the same files give the same image ID. Import the result into the
# cluster with scripts/cluster/image-import.sh.
set -euo pipefail

rootfs='' tag='' out='' entrypoint='null' cmd='null' workdir='/'
envs=('"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"')
json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
while [ $# -gt 0 ]; do
  case $1 in
    --rootfs) rootfs=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --entrypoint) entrypoint=$2; shift 2 ;;
    --cmd) cmd=$2; shift 2 ;;
    --env) envs+=("$(json_str "$2")"); shift 2 ;;
    --workdir) workdir=$2; shift 2 ;;
    *) echo "image-build: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -d "$rootfs" ] && [ -n "$tag" ] && [ -n "$out" ] || { sed -n '2,10p' "$0" >&2; exit 2; }
case $tag in *:*) ;; *) tag="$tag:latest" ;; esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu \
  -C "$rootfs" -cf "$work/layer.tar" .
layer_sha=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
mkdir "$work/$layer_sha"
mv "$work/layer.tar" "$work/$layer_sha/layer.tar"

env_json=$(IFS=,; echo "${envs[*]}")
config=$(printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Env":[%s],"Entrypoint":%s,"Cmd":%s,"WorkingDir":%s},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"scripts/cluster/image-build.sh"}]}' \
  "$env_json" "$entrypoint" "$cmd" "$(json_str "$workdir")" "$layer_sha")
config_sha=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)
printf '%s' "$config" > "$work/$config_sha.json"
printf '[{"Config":"%s.json","RepoTags":[%s],"Layers":["%s/layer.tar"]}]' \
  "$config_sha" "$(json_str "$tag")" "$layer_sha" > "$work/manifest.json"
# The legacy `repositories` file, for tools that still read it.
printf '{%s:{%s:"%s"}}' "$(json_str "${tag%:*}")" "$(json_str "${tag##*:}")" "$layer_sha" > "$work/repositories"

mkdir -p "$(dirname "$out")"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work" -cf "$out.tmp" \
  manifest.json repositories "$config_sha.json" "$layer_sha"
mv "$out.tmp" "$out"
echo "image-build: $tag -> $out (image id sha256:$config_sha)" >&2
