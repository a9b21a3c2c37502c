"""The README's demo from hwprov installed as a wheel in a fresh venv, run outside the checkout
(lab/wheelvenv.py; the sim, scan and plan from the same venv are tests/sim/test_wheel_sim.py)."""

from __future__ import annotations

import shutil

import pytest
from conftest import check_demo

from lab.wheelvenv import WheelVenv


@pytest.mark.skipif(shutil.which("umockdev-wrapper") is None, reason="needs umockdev")
def test_the_demo_runs_to_the_end_from_the_wheel(wheel_venv: WheelVenv) -> None:
    out = wheel_venv.run("demo", timeout=240)
    check_demo(out)
