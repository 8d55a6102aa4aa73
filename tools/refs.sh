#!/usr/bin/env bash
# Makes sure the full-size reference files exist and prints their directory (last line of
# stdout). Usage: tools/refs.sh [DIR]
#   DIR defaults to $HOME/.cache/alexnet-web/refs-<generator version>; nothing is generated
#   when DIR/manifest.json already carries the current generator version.
# Tests read the directory from ALEXNET_REFS:
#   export ALEXNET_REFS="$(tools/refs.sh | tail -n1)"
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
if [ $# -ge 1 ]; then
  exec "$py" "$root/tools/gen_refs.py" --out "$1"
else
  exec "$py" "$root/tools/gen_refs.py"
fi
