#!/usr/bin/env bash
# Creates (once per machine) the virtual environment of reference peers that tests compare
# anvil against, keyed by the hash of tests/requirements.txt, and prints its python's path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
req="$root/tests/requirements.txt"
key=$(sha256sum "$req" | cut -c1-16)
base="${ANVIL_VENV_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/anvil}"
venv="$base/venv-$key"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  echo "anvil: creating test environment $venv (one time per machine)" >&2
  rm -rf "$venv"; mkdir -p "$base"
  py=$(command -v python3)
  "$py" -m venv "$venv" >&2
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  "$venv/bin/python" -m pip install -q -r "$req" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
