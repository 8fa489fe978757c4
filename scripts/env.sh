#!/usr/bin/env bash
# Creates (or reuses) the project virtual environment in .venv and activates it.
# The environment is rebuilt only when requirements.txt or setup.py change.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PPD_VENV:-$repo/.venv}"
stamp="$venv/.ppd_ros_stamp"
want="$(cat "$repo/requirements.txt" "$repo/setup.py" "$repo/setup.cfg" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[ppd_ros] building Python environment in $venv" >&2
  python3 -m venv "$venv"
  # pip warns about every configured local index folder that lacks a package; drop that noise.
  quiet_pip() {
    "$venv/bin/python" -m pip install --quiet "$@" >&2 \
      2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
  }
  quiet_pip --upgrade pip
  quiet_pip -r "$repo/requirements.txt"
  quiet_pip --no-deps --no-build-isolation -e "$repo"
  echo "$want" > "$stamp"
else
  echo "[ppd_ros] reusing Python environment in $venv" >&2
fi
# shellcheck disable=SC1091
source "$venv/bin/activate"
