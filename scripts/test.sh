#!/usr/bin/env bash
# The whole test suite, from a fresh machine: install what is missing, lint, run every test.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/bootstrap.sh
.venv/bin/ruff check agent plugins tests
.venv/bin/python -m pytest "$@"
