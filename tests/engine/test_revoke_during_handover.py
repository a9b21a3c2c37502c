"""An unplugged adapter leaves a live-granted container at once, even while a pass is busy
recreating another service: the revoke does not queue behind the pass (daemon/revoker.py).

The pass is held by balena's hand-over, whose replacement never signals: it waits out the
label's timeout, as the supervisor does. The kernel bench found the revoke waiting 13.6 s for
a pass like it; here the node must be gone while the pass still waits."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest
from conftest import compose, names, wait_for
from hwprov.containers import livegrant
from hwprov.sandbox.dockerd import PrivateEngine

PROJECT = "fastrevoke"
LOGGER, SLOW = f"{PROJECT}-logger-1", f"{PROJECT}-slow-1"
HANDOVER_MS = 60_000  # far longer than the revoke may take: the pass is still in flight

COMPOSE = """\
services:
  logger:
    image: {image}
    command: ["sleep", "3600"]
    init: true
    network_mode: none
    labels:
      io.hwprov.grant: live
      io.hwprov.device.gps: "kind=serial, vendor=0403, model=6001, optional, path=/dev/gps"
  slow:
    image: {image}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    init: true
    network_mode: none
    volumes: ["{lock}:/tmp/balena"]
    labels:
      io.balena.update.strategy: hand-over
      io.balena.update.handover-timeout: "{timeout}"
      io.hwprov.device.uart: "kind=serial, vendor=10c4, optional, path=/dev/uart"
"""


def has_node(client: docker.DockerClient, container: str, path: str) -> bool:
    return client.containers.get(container).exec_run(["test", "-e", path]).exit_code == 0


@pytest.mark.timeout(180)
@pytest.mark.skipif(not livegrant.CGROUP_ROOT.is_dir(), reason="needs cgroup v1 devices")
def test_an_unplug_is_revoked_from_a_live_service_while_a_hand_over_holds_the_pass(
    engine: PrivateEngine,
    docker_client: docker.DockerClient,
    busybox_image: str,
    sim_daemon,
    tmp_path: Path,
) -> None:
    lock = tmp_path / "lock"
    lock.mkdir()
    file = tmp_path / "docker-compose.yml"
    file.write_text(COMPOSE.format(image=busybox_image, lock=lock, timeout=HANDOVER_MS))
    up = compose(engine, file, PROJECT, "up", "-d")
    assert up.returncode == 0, up.stderr
    daemon = sim_daemon(file, "rpi4b", "-p", PROJECT)
    try:
        assert daemon.wait_event("started")
        daemon.sim("plug", id="ftdi")
        assert wait_for(lambda: has_node(docker_client, LOGGER, "/dev/gps")), daemon.tail()
        assert daemon.wait_event("granted")

        daemon.sim("plug", id="cp2102")  # slow's recreate: a hand-over that waits it out
        assert wait_for(lambda: len(names(docker_client, PROJECT)) == 3), daemon.tail()
        daemon.sim("unplug", id="ftdi")
        assert wait_for(lambda: not has_node(docker_client, LOGGER, "/dev/gps"), timeout=20), (
            daemon.tail(40)
        )
        # ... while the hand-over still holds the pass: both of slow's containers still run
        assert len(names(docker_client, PROJECT)) == 3
        assert not any(e["event"] == "recreated" for e in daemon.events())
        revoked = [e for e in daemon.events() if e["event"] == "revoked"]
        assert [(e["service"], e["node"]) for e in revoked] == [("logger", "/dev/gps")], revoked
    finally:
        (lock / "handover-complete").touch()  # ends the hand-over: the pass completes
        assert daemon.wait_event("recreated"), daemon.tail(40)
        daemon.stop()
        compose(engine, file, PROJECT, "down", "-t", "1")
    # The pass that the remove brought found nothing left to take from the logger
    granted = [e for e in daemon.events() if e["event"] == "granted"]
    assert [e["service"] for e in granted] == ["logger"], granted  # the plug's, and no other
