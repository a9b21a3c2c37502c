"""`hwprov run` on a simulated Pi 4 and the private engine: plug -> recreated with it, and
the faults a device in the field meets: a broken compose edit, a replacement that dies, the
engine going away."""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
from pathlib import Path

import docker
import pytest
from conftest import SimDaemon, devices, names, wait_for
from hwprov.daemon.converge import MAX_ATTEMPTS
from hwprov.sandbox.demo import COMPOSE, PROJECT, up
from hwprov.sandbox.dockerd import PrivateEngine
from hwprov.sandbox.images import ensure_busybox


def remove_all(client: docker.DockerClient) -> None:
    for c in client.api.containers(all=True):
        client.api.remove_container(c["Id"], force=True)


ENV, GPS = f"{PROJECT}-env-sensor-1", f"{PROJECT}-gps-1"


@pytest.fixture
def demo_run(sim_daemon, docker_client: docker.DockerClient, busybox_image: str, tmp_path: Path):
    """Start the demo project and `hwprov run` on the simulated Pi; clean both up after."""
    started: list[SimDaemon] = []

    def start(text: str = COMPOSE) -> tuple[Path, SimDaemon]:
        compose = tmp_path / "docker-compose.yml"
        compose.write_text(text)
        up(docker_client, compose)
        started.append(sim_daemon(compose, "rpi4b", "-p", PROJECT))
        return compose, started[-1]

    yield start
    for daemon in started:
        daemon.stop()
    remove_all(docker_client)


@pytest.mark.timeout(120)
def test_run_gives_a_hot_plugged_adapter_to_its_service(
    demo_run, docker_client: docker.DockerClient
) -> None:
    _, daemon = demo_run()
    # coldplug: the I2C service gets its bus without any plug
    assert wait_for(lambda: devices(docker_client, ENV) == ["/dev/i2c-1"])
    assert devices(docker_client, GPS) == []
    daemon.sim("plug", id="ftdi")
    assert wait_for(lambda: devices(docker_client, GPS) == ["/dev/gps"])
    daemon.sim("unplug", id="ftdi")  # recreated without it: the default unplug policy
    assert wait_for(lambda: devices(docker_client, GPS) == [])
    assert wait_for(lambda: names(docker_client) == [ENV, GPS]), names(docker_client)
    assert daemon.stop() == 0
    events = [e["event"] for e in daemon.events()]
    assert events[0] == "started" and events[-1] == "stopping"
    assert events.count("recreated") >= 3 and "rolled-back" not in events


@pytest.mark.timeout(120)
def test_a_compose_file_edited_to_garbage_keeps_the_last_good_one(
    demo_run, docker_client: docker.DockerClient
) -> None:
    compose, daemon = demo_run()
    assert wait_for(lambda: devices(docker_client, ENV) == ["/dev/i2c-1"])
    env_id = docker_client.api.inspect_container(ENV)["Id"]
    compose.write_text("services:\n  gps: [this is: not a service\n")
    assert daemon.wait_event("compose-broken")
    # Still working from the last good file: a plug is handled, nothing else touched.
    daemon.sim("plug", id="ftdi")
    assert wait_for(lambda: devices(docker_client, GPS) == ["/dev/gps"])
    assert docker_client.api.inspect_container(ENV)["Id"] == env_id
    compose.write_text(COMPOSE.replace("kind=i2c, sensor=bme280", "kind=i2c, bus=1"))
    assert daemon.wait_event("compose-reloaded")
    assert names(docker_client) == [ENV, GPS]
    daemon.proc.send_signal(signal.SIGHUP)  # reload on demand, through the simulator
    assert daemon.wait_event("compose-reloaded", count=2)
    daemon.stop()
    broken = next(e for e in daemon.events() if e["event"] == "compose-broken")
    assert (
        "docker-compose.yml" in broken["error"] and broken["action"] == "keeping the last good one"
    )


@pytest.mark.timeout(120)
def test_a_replacement_that_dies_is_rolled_back_and_the_original_kept(
    demo_run, docker_client: docker.DockerClient
) -> None:
    # The gps service's program exits at once when /dev/gps is there (a crash on the new
    # device): the replacement does not stay up, so hwprov must put the original back.
    dying = COMPOSE.replace(
        'command: ["sh", "-c", "trap \'exit 0\' TERM; while true; do sleep 1; done"]\n'
        "    restart: always\n    labels:\n      io.hwprov.device.gps",
        'command: ["sh", "-c", "test -e /dev/gps && exit 3; trap \'exit 0\' TERM; '
        'while true; do sleep 1; done"]\n    restart: "no"\n'
        "    labels:\n      io.hwprov.device.gps",
    )
    assert dying != COMPOSE
    _, daemon = demo_run(dying)
    gps_id = docker_client.api.inspect_container(GPS)["Id"]
    assert daemon.wait_event("started")
    daemon.sim("plug", id="ftdi")
    # Retried with back-off (1 s, 2 s), then given up until the next change: bounded.
    assert daemon.wait_event("gave-up", timeout=60)
    attrs = docker_client.api.inspect_container(GPS)
    assert attrs["Id"] == gps_id and attrs["State"]["Running"]
    assert wait_for(lambda: names(docker_client) == [ENV, GPS]), names(docker_client)
    daemon.stop()
    rolled = [e for e in daemon.events() if e["event"] == "rolled-back"]
    assert len(rolled) == MAX_ATTEMPTS
    assert all(e["service"] == "gps" and "exit code 3" in e["detail"] for e in rolled)
    [gave_up] = [e for e in daemon.events() if e["event"] == "gave-up"]
    assert gave_up["service"] == "gps" and gave_up["attempts"] == MAX_ATTEMPTS


@pytest.mark.timeout(180)
def test_the_engine_going_away_mid_run_is_retried_and_converges(tmp_path: Path) -> None:
    # An engine of its own, stopped and started again under the daemon (its folder short:
    # containerd's socket paths must fit in 104 bytes).
    short = Path(tempfile.mkdtemp(prefix="hwprov-e.", dir="/tmp"))
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, short, ignore_errors=True)
        engine = cleanup.enter_context(PrivateEngine(short))
        client = engine.client()
        ensure_busybox(client)
        compose = tmp_path / "docker-compose.yml"
        compose.write_text(COMPOSE)
        up(client, compose)
        client.close()
        daemon = SimDaemon(engine.base_url, tmp_path, compose, "rpi4b", "-p", PROJECT)
        try:
            assert daemon.wait_event("started")
            engine.stop(keep_containers=True)  # as a reboot: containers stop with it
            daemon.sim("plug", id="ftdi")  # hardware changes while the engine is away
            assert daemon.wait_event("engine-down")
            engine.start()
            client = engine.client()
            # Back: the daemon reconnects on its own and converges: /dev/gps for the GPS
            # service, the I2C bus kept, and no temporary containers left.
            assert wait_for(lambda: devices(client, GPS) == ["/dev/gps"], timeout=60)
            assert wait_for(lambda: devices(client, ENV) == ["/dev/i2c-1"])
            assert wait_for(lambda: names(client) == [ENV, GPS]), names(client)
        finally:
            daemon.stop()
            client.close()
    downs = [e for e in daemon.events() if e["event"] == "engine-down"]
    assert "not reachable" in downs[0]["error"]
    # backoff, not a busy loop: a handful of retries over the outage, not hundreds
    assert len(downs) < 20
