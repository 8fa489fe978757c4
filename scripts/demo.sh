#!/usr/bin/env bash
# Sets up (or reuses) .venv and runs the end-to-end demo (ppd-demo). Extra args go to ppd-demo.
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
source scripts/env.sh || exit 1
ppd-demo "$@"
