#!/bin/sh
# The driver tests talk to a real NATS server with JetStream: Debian's nats-server package.
set -e
command -v nats-server >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
echo "installing nats-server (apt-get)" >&2
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nats-server >/dev/null
