#!/usr/bin/env bash
# Creates (or reuses) the project virtual environment in .venv and activates it.
# The environment is rebuilt only when requirements.txt, setup.py or setup.cfg change; while
# it is built, every package pip fetches is listed, so the first run is never silent.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PPD_VENV:-$repo/.venv}"
stamp="$venv/.ppd_ros_stamp"
# The checkout path is part of the stamp: the editable install points at one checkout.
want="$( { cat "$repo/requirements.txt" "$repo/setup.py" "$repo/setup.cfg"; echo "$repo"; } | sha256sum | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[ppd_ros] setting up the Python environment in $venv (first run, or requirements" \
       "changed): about 1 GB of wheels (torch, ROS 2 Jazzy), 2-5 minutes; progress below" >&2
  python3 -m venv "$venv"
  log="$venv/pip.log"
  : > "$log"
  # pip's full output goes to $log; the terminal gets one line per package as pip reaches it.
  # (pip warns about every configured local index folder that lacks a package: left out.)
  pip_install() {
    "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off "$@" 2>&1 \
      | tee -a "$log" \
      | { grep --line-buffered -E '^(Collecting|Installing collected)' || true; } \
      | sed -u -e 's/^Collecting /[ppd_ros]   /' -e 's/ (from .*//' \
             -e 's/^Installing collected.*/[ppd_ros]   installing .../' >&2
    local status=${PIPESTATUS[0]}
    if [ "$status" -ne 0 ]; then
      grep -v 'is ignored: it is neither a file nor a directory' "$log" | tail -n 25 >&2
      echo "[ppd_ros] pip failed (full log: $log)" >&2
    fi
    return "$status"
  }
  started=$SECONDS
  if ! { pip_install --upgrade pip && pip_install -r "$repo/requirements.txt" \
         && pip_install --no-deps --no-build-isolation -e "$repo"; }; then
    return 1 2>/dev/null || exit 1
  fi
  echo "$want" > "$stamp"
  echo "[ppd_ros] environment ready in $((SECONDS - started)) s" >&2
else
  echo "[ppd_ros] reusing Python environment in $venv" >&2
fi
# shellcheck disable=SC1091
source "$venv/bin/activate"
