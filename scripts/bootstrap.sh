#!/bin/sh
# Brings a fresh clone to a runnable state with only the machine's own npm: installs the
# locked packages, among them the pinned Node 24 (npm package `node`) that every npm script
# then runs on. Skipped when node_modules already matches package-lock.json.
set -e
cd "$(dirname "$0")/.."
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ ! -x node_modules/.bin/node ]; then
  echo "conveyor: installing locked packages (npm ci)..." >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
