#!/usr/bin/env bash
# Sets up (or reuses) .venv and runs the whole test suite. Extra args go to pytest;
# when they name test files or folders, only those run.
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
source scripts/env.sh || exit 1
targets=(tests)
for arg in "$@"; do
  if [[ "$arg" != -* && -e "${arg%%::*}" ]]; then targets=(); break; fi
done
python -m pytest "${targets[@]}" "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "[ppd_ros] pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
