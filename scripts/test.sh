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
# The tiers below run only for the whole suite (no arguments): each picks its bench for a
# whole pytest session.
if (($# == 0)); then
    # The HIL suite through labgrid (docs/hil.md): a private coordinator, exporter and sshd on
    # 127.0.0.1, two places whose devices are simulated rpi4b boards on this machine, and
    # three lab jobs for them (scripts/lab-demo.sh): one runs every scenario, the other two one
    # each, so one waits in labgrid's queue. About 2.5 min here; all of it stopped at the end.
    if [[ "$(id -u)" == 0 ]]; then
        .venv/bin/python -m lab.privatelab --places 2 --board rpi4b -- bash scripts/lab-demo.sh
    else
        echo "test.sh: labgrid tier skipped: its sshd and scenarios need root (docs/hil.md)" >&2
    fi
    # The HIL suite again on a real kernel (Debian's, under QEMU), cgroup v2 then v1: its own run,
    # because the bench is chosen for the whole session. Skipped when arguments pick tests. Under
    # TCG the whole matrix takes over an hour, so this runs the CI set (tests/hil/conftest.py
    # KERNEL_CI, docs/hil.md); `pytest tests/hil --bench kernel` runs all of it.
    # On an x86-64 machine run as root (this kind) the guest can boot, so the tier must run: a
    # skip there fails (HWPROV_KERNEL_BENCH=required). Elsewhere it is skipped with its reason.
    if [[ "$(uname -m)" == x86_64 && "$(id -u)" == 0 ]]; then
        bash scripts/kernel-bench-setup.sh >/dev/null
        HWPROV_KERNEL_BENCH=required .venv/bin/python -m pytest tests/hil --bench kernel \
            --kernel-set ci --junitxml=.test-results/junit-kernel.xml
    else
        echo "test.sh: kernel bench skipped: it needs root on x86-64 (docs/hil.md)" >&2
    fi
fi
