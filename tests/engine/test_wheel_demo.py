"""The README's demo from hwprov installed as a wheel in a fresh venv, run outside the checkout
(lab/wheelvenv.py; the sim, scan and plan from the same venv are tests/sim/test_wheel_sim.py)."""

from __future__ import annotations

import shutil

import pytest

from lab.wheelvenv import WheelVenv


@pytest.mark.skipif(shutil.which("umockdev-wrapper") is None, reason="needs umockdev")
def test_the_demo_runs_to_the_end_from_the_wheel(wheel_venv: WheelVenv) -> None:
    out = wheel_venv.run("demo", timeout=240)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert any("demo-env-sensor-1:" in x and "89,   1" in x and "/dev/i2c-1" in x for x in lines)
    assert any("demo-gps-1:" in x and "188,   0" in x and "/dev/gps" in x for x in lines)
    assert all("privileged: True" not in x for x in lines)
    assert sum(x.startswith(("env-sensor: recreated", "gps: recreated")) for x in lines) == 2
