"""The README's demo runs to the end and says what it did."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest


@pytest.mark.skipif(shutil.which("umockdev-wrapper") is None, reason="needs umockdev")
def test_demo_runs_to_the_end() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hwprov", "demo"], capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert any("demo-env-sensor-1:" in x and "89,   1" in x and "/dev/i2c-1" in x for x in lines)
    assert any("demo-gps-1:" in x and "188,   0" in x and "/dev/gps" in x for x in lines)
    assert all("privileged: True" not in x for x in lines)
    assert sum(x.startswith(("env-sensor: recreated", "gps: recreated")) for x in lines) == 2
