#!/bin/sh
# The older-generation driver test runs a driver written with upstream's Python SDK,
# conveyor-py 0.0.3 from PyPI, in a virtualenv cached outside the repo.
set -e
VENV="${CONVEYOR_PY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/conveyor-py/venv}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import importlib.metadata as m; assert m.version("conveyor.py") == "0.0.3"' 2>/dev/null; then
  exit 0
fi
command -v python3 >/dev/null 2>&1 || { echo "python3 is needed for the conveyor-py driver test" >&2; exit 1; }
echo "installing conveyor-py 0.0.3 into $VENV" >&2
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check conveyor-py==0.0.3
