#!/bin/sh
# The browser tests drive Debian's own chromium with playwright-core (no browser download):
# installs it with apt-get when it is missing. CONVEYOR_CHROMIUM points at another binary.
set -e
if [ -n "$CONVEYOR_CHROMIUM" ] && [ -x "$CONVEYOR_CHROMIUM" ]; then exit 0; fi
if command -v chromium >/dev/null 2>&1; then exit 0; fi
echo "conveyor: installing chromium for the browser tests (apt-get)..." >&2
if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2 || true
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
