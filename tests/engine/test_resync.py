"""Issue 15's lost udev events, end to end: the monitor overruns while the FTDI the GPS service
was given leaves and a CP2102 takes its /dev/ttyUSB0 (the same 188:0, which the container's
device rule still allows). The resync must take the device away from the service, not leave
the stranger's node open to it. The monitor fails on demand through tests/sim/faultyudev.py."""

from __future__ import annotations

import sys
from pathlib import Path

import docker
import pytest
from conftest import devices, wait_for
from hwprov.sandbox.demo import COMPOSE, PROJECT, up
from hwprov.sandbox.dockerd import PrivateEngine

from lab.simdaemon import SimDaemon

FAULTY = Path(__file__).resolve().parents[1] / "sim" / "faultyudev.py"
GPS = f"{PROJECT}-gps-1"


@pytest.mark.timeout(180)
def test_an_adapter_that_takes_a_lost_ones_ttyusb0_is_not_left_to_its_service(
    engine: PrivateEngine, docker_client: docker.DockerClient, busybox_image: str, tmp_path: Path
) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    up(docker_client, compose)
    fault = tmp_path / "fault"
    daemon = SimDaemon(
        engine.base_url, tmp_path, compose, "rpi4b", "-p", PROJECT, "--settle-ms", "200",
        launcher=(sys.executable, str(FAULTY), str(fault)),
    )  # fmt: skip
    try:
        daemon.wait("started")  # the simulator's control socket is up from then on
        daemon.sim("plug", id="ftdi")
        assert wait_for(lambda: devices(docker_client, GPS) == ["/dev/gps"])
        mark = daemon.mark()
        fault.write_text("drop")  # an overrun: these events never reach hwprov
        daemon.sim("unplug", id="ftdi")
        daemon.sim("plug", id="cp2102")  # /dev/ttyUSB0, 188:0 again
        fault.write_text("overrun")
        daemon.sim("plug", id="bt-dongle")  # the receive that reports the overrun
        resync = daemon.wait("resync", after=mark)
        assert resync["removed"] == 1
        # The GPS asks for an FTDI (vendor 0403): recreated without /dev/gps.
        assert wait_for(lambda: devices(docker_client, GPS) == [])
        assert daemon.stop() == 0
    finally:
        daemon.stop()
        for c in docker_client.api.containers(all=True):
            docker_client.api.remove_container(c["Id"], force=True)
