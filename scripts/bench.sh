#!/usr/bin/env bash
# The benchmarks (bench/README.md), from a fresh machine: install what is missing, then run
# every figure on a private engine. Options go to `python -m bench` (--quick, --only 1,5, ...).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/bootstrap.sh
export PATH="$here/.venv/bin:$PATH"
exec .venv/bin/python -m bench "$@"
