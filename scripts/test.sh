#!/usr/bin/env bash
# Sets up (or reuses) .venv and runs the whole test suite. Extra args go to pytest.
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
source scripts/env.sh || exit 1
python -m pytest tests "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "[ppd_ros] pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
