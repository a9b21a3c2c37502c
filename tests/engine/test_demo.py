"""The README's demo runs to the end and says what it did."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import check_demo


@pytest.mark.skipif(shutil.which("umockdev-wrapper") is None, reason="needs umockdev")
def test_demo_runs_to_the_end() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hwprov", "demo"], capture_output=True, text=True, timeout=240
    )
    check_demo(out)
