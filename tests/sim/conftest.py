"""Run commands on simulated boards through the real `hwprov sim run`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

if shutil.which("umockdev-wrapper") is None:
    pytest.skip("needs umockdev (scripts/bootstrap.sh)", allow_module_level=True)

HWPROV = [sys.executable, "-m", "hwprov"]


def sim(
    *command: str, board: str = "rpi4b", extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HWPROV, "sim", "run", "--board", board, *extra, "--", *command],
        capture_output=True,
        text=True,
        timeout=60,
    )


class RunningSim:
    """A sim with a long-running child whose stdout lines the test reads."""

    def __init__(self, tmp: Path, script: str, board: str = "rpi4b", extra: tuple[str, ...] = ()):
        self.control = tmp / "control.sock"
        self.proc = subprocess.Popen(
            [
                *HWPROV,
                "sim",
                "run",
                "--board",
                board,
                "--control",
                str(self.control),
                *extra,
                "--",
                sys.executable,
                "-u",
                "-c",
                script,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.stdout = self.proc.stdout

    def line(self) -> str:
        return self.stdout.readline().strip()

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*HWPROV, "sim", *args, "--control", str(self.control)],
            capture_output=True,
            text=True,
            timeout=30,
        )

    def close(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            code = self.proc.wait(timeout=30)
        finally:
            self.stdout.close()
            assert self.proc.stderr is not None
            self.proc.stderr.close()
        return code


@pytest.fixture
def running_sim(tmp_path: Path) -> Iterator[type[RunningSim]]:
    started: list[RunningSim] = []

    def start(script: str, board: str = "rpi4b", extra: tuple[str, ...] = ()) -> RunningSim:
        s = RunningSim(tmp_path, script, board, extra)
        started.append(s)
        return s

    yield start  # type: ignore[misc]
    for s in started:
        s.close()


@pytest.fixture(autouse=True)
def _no_testbed_left_behind() -> Iterator[None]:
    before = set(os.listdir("/tmp"))
    yield
    deadline = time.monotonic() + 5
    while True:
        left = {
            n
            for n in set(os.listdir("/tmp")) - before
            if n.startswith(("umockdev.", "hwprov-sim."))
        }
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"the simulator left {sorted(left)} in /tmp"
