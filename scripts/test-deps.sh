#!/bin/sh
# Installs the machine packages the test command needs (each scripts/deps/*.sh installs one
# thing when it is missing and is quick when it is there), so `npm test` works on a fresh clone.
set -e
cd "$(dirname "$0")/.."
for script in scripts/deps/*.sh; do
  [ -f "$script" ] || continue
  sh "$script"
done
