#!/usr/bin/env bash
# The whole test suite, from a fresh machine: install what is missing, lint, run every test.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/bootstrap.sh
# tests run `hwprov` inside simulated boards, as users do
export PATH="$here/.venv/bin:$PATH"
.venv/bin/ruff check agent plugins lab tests bench
.venv/bin/mypy  # the package and the built-ins; strict on the pure core (pyproject.toml)
.venv/bin/python -m pytest "$@"
# The HIL scenarios again on a real kernel (Debian's, under QEMU), cgroup v2 then v1: its own
# run, because the bench is chosen for the whole session. Skipped when arguments pick tests.
if (($# == 0)); then
    bash scripts/kernel-bench-setup.sh >/dev/null
    .venv/bin/python -m pytest tests/hil --bench kernel \
        --junitxml=.test-results/junit-kernel.xml
fi
