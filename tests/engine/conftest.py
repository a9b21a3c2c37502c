"""Engine tests: skipped without root and dockerd; `hwprov run` under a simulated board against
the session's private engine (the engine fixtures are in tests/conftest.py, shared with hil/)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.lab.dockerd import PrivateEngine
from agent.sim.control import request

if os.geteuid() != 0 or shutil.which("dockerd") is None:
    pytest.skip("needs root and Debian's docker.io (scripts/bootstrap.sh)", allow_module_level=True)


HWPROV = [sys.executable, "-m", "agent"]


def free_major(preferred: int) -> int:
    """A char major with no driver on this host, so a real node of it opens with ENXIO."""
    text = Path("/proc/devices").read_text().split("Block devices:")[0]
    taken = {int(line.split()[0]) for line in text.splitlines() if line.strip()[:1].isdigit()}
    if preferred not in taken:
        return preferred
    return next(m for m in range(511, 300, -1) if m not in taken)


def wait_for(predicate: Callable[[], object], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


class SimDaemon:
    """`hwprov run` on a simulated board against the private engine, as a user would run it.

    Its decision lines go to a file, read with `events()` while it runs.
    """

    def __init__(
        self, engine: PrivateEngine, tmp: Path, compose: Path, board: str, *args: str
    ) -> None:
        self.control = tmp / "control.sock"
        self.log = tmp / "hwprov-run.log"
        env = {**os.environ, "DOCKER_HOST": engine.base_url}
        env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
        self._log = self.log.open("w")
        self.proc = subprocess.Popen(
            [*HWPROV, "sim", "run", "--board", board, "--control", str(self.control), "--",
             "hwprov", "run", "-f", str(compose), "--settle-ms", "200", *args],
            env=env, stdout=subprocess.DEVNULL, stderr=self._log, text=True,
        )  # fmt: skip

    def sim(self, op: str, **args: Any) -> dict[str, Any]:
        return request(self.control, op, **args)

    def host_dev(self, node: str) -> str:
        """major:minor of the real stand-in the engine maps for a simulated /dev node."""
        folder = Path(self.sim("status")["nodes"])
        return json.loads((folder / "nodes.json").read_text())[node]["host_dev"]

    def events(self) -> list[dict[str, Any]]:
        lines = self.log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def wait_event(self, event: str, count: int = 1, timeout: float = 30) -> bool:
        return wait_for(lambda: sum(e["event"] == event for e in self.events()) >= count, timeout)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        finally:
            self._log.close()


@pytest.fixture
def sim_daemon(engine: PrivateEngine, tmp_path: Path) -> Iterator[Callable[..., SimDaemon]]:
    started: list[SimDaemon] = []

    def start(compose: Path, board: str, *args: str) -> SimDaemon:
        started.append(SimDaemon(engine, tmp_path, compose, board, *args))
        return started[-1]

    yield start
    for d in started:
        d.stop()
