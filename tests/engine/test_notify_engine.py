"""`hwprov run` under `Type=notify` against the private engine on a simulated Pi 4: systemd is
told READY=1 only once the containers have what was attached at start, and the watchdog keeps
being fed while the agent idles."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import docker
import pytest
from conftest import SimDaemon, devices, names, wait_for
from hwprov.sandbox.demo import COMPOSE, PROJECT, up

from lab.notifysocket import NotifySocket

ENV, GPS = f"{PROJECT}-env-sensor-1", f"{PROJECT}-gps-1"


@pytest.mark.timeout(120)
def test_ready_after_coldplug_and_the_first_pass_then_the_watchdog_is_fed(
    sim_daemon: Callable[..., SimDaemon],
    docker_client: docker.DockerClient,
    busybox_image: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    up(docker_client, compose)
    try:
        with NotifySocket(tmp_path / "notify.sock") as notify:
            for key, value in notify.env(watchdog_usec=1_000_000).items():
                monkeypatch.setenv(key, value)
            daemon = sim_daemon(compose, "rpi4b", "-p", PROJECT)
            assert notify.next(60) == ["READY=1", "WATCHDOG=1"], daemon.tail()
            # Read the moment READY=1 arrives, not waited for: the coldplugged I2C bus is
            # already in the sensor's recreated container.
            assert devices(docker_client, ENV) == ["/dev/i2c-1"]
            assert devices(docker_client, GPS) == []
            for _ in range(3):  # idle: fed at least every half second
                assert notify.next(30) == ["WATCHDOG=1"]
            mark = daemon.mark()
            daemon.sim("plug", id="ftdi")
            daemon.wait("reconciled", after=mark)
            assert wait_for(lambda: devices(docker_client, GPS) == ["/dev/gps"])
            notify.drain()
            assert notify.next(30) == ["WATCHDOG=1"]  # still fed after a pass
            assert daemon.stop() == 0
            said = notify.drain()
            assert said and said[-1] == ["STOPPING=1"], said
            assert all("READY=1" not in m for m in said), said  # once
            started = [e for e in daemon.events() if e["event"] == "started"]
            assert len(started) == 1 and started[0]["hardware"], daemon.tail()
    finally:
        for name in names(docker_client, PROJECT):
            docker_client.api.remove_container(name, force=True)
