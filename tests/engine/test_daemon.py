"""`hwprov run` on a simulated Pi 4 and the private engine: plug -> recreated with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from agent.demo import COMPOSE, PROJECT, up
from agent.sim.control import request


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def devices(client: docker.DockerClient, name: str) -> list[str] | None:
    """The container's mapped paths once it runs under that name; None while it does not."""
    try:
        attrs = client.api.inspect_container(name)
    except docker.errors.NotFound:
        return None
    if not attrs["State"]["Running"]:
        return None
    return [d["PathInContainer"] for d in attrs["HostConfig"]["Devices"] or ()]


def settled(client: docker.DockerClient) -> list[str]:
    # sparse listing: containers.list() inspects each one and races the daemon's removals
    return sorted(c["Names"][0].lstrip("/") for c in client.api.containers(all=True))


@pytest.mark.timeout(120)
def test_run_gives_a_hot_plugged_adapter_to_its_service(
    engine, docker_client: docker.DockerClient, busybox_image: str, tmp_path: Path
) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    up(docker_client, compose)
    control = tmp_path / "control.sock"
    env = {**os.environ, "DOCKER_HOST": engine.base_url}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent",
            "sim",
            "run",
            "--board",
            "rpi4b",
            "--control",
            str(control),
            "--",
            "hwprov",
            "run",
            "-f",
            str(compose),
            "-p",
            PROJECT,
            "--settle-ms",
            "200",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # coldplug: the I2C service gets its bus without any plug
        assert wait_for(lambda: devices(docker_client, f"{PROJECT}-env-sensor-1") == ["/dev/i2c-1"])
        assert devices(docker_client, f"{PROJECT}-gps-1") == []
        request(control, "plug", id="ftdi")
        assert wait_for(lambda: devices(docker_client, f"{PROJECT}-gps-1") == ["/dev/gps"])
        request(control, "unplug", id="ftdi")  # recreated without it: the default unplug policy
        assert wait_for(lambda: devices(docker_client, f"{PROJECT}-gps-1") == [], timeout=30)
        want = [f"{PROJECT}-env-sensor-1", f"{PROJECT}-gps-1"]
        assert wait_for(lambda: settled(docker_client) == want), settled(docker_client)
    finally:
        daemon.terminate()
        _, err = daemon.communicate(timeout=30)
        for c in docker_client.containers.list(all=True):
            c.remove(force=True)
    events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
    assert events[0] == "started" and events[-1] == "stopping"
    assert events.count("recreated") >= 3 and "rolled-back" not in events
