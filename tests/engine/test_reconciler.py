"""Recreating through the real engine: everything kept but hardware, rollback, crash recovery."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import docker
import pytest
from conftest import free_major, wait_for
from hwprov.containers.engine import Engine
from hwprov.containers.labels import COMPOSE_PROJECT, COMPOSE_SERVICE
from hwprov.containers.reconciler import Reconciler
from hwprov.containers.recovery import recover
from hwprov.planning.plan import Plan, PlannedDevice, ServicePlan, Setting

LOOP = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


@pytest.fixture
def node(tmp_path: Path) -> Path:
    path = tmp_path / "ttyUSB0"
    os.mknod(path, 0o20660, os.makedev(free_major(188), 0))
    return path


@pytest.fixture
def service(docker_client: docker.DockerClient, busybox_image: str):
    volume = docker_client.volumes.create("rc-data")
    network = docker_client.networks.create("rc-net")
    c = docker_client.containers.create(
        busybox_image,
        LOOP,
        name="rc-gps-1",
        init=True,
        labels={COMPOSE_PROJECT: "rc", COMPOSE_SERVICE: "gps", "keep": "me"},
        environment={"MODE": "prod"},
        volumes={"rc-data": {"bind": "/data", "mode": "rw"}},
        restart_policy={"Name": "always"},
        network="rc-net",
        stop_signal="SIGTERM",
    )
    c.start()
    yield c
    for x in docker_client.containers.list(all=True, filters={"label": f"{COMPOSE_PROJECT}=rc"}):
        x.remove(force=True)
    network.remove()
    volume.remove()


def plan_for(node: Path, container_path: str = "/dev/gps") -> Plan:
    device = PlannedDevice(str(node), container_path, "rw", None, None, "serial:x", "test")
    sp = ServicePlan("gps", devices=(device,), capabilities=(Setting("SYS_RAWIO", "test"),))
    return Plan("t.yml", (sp,))


def test_recreate_keeps_everything_but_hardware(
    engine, docker_client: docker.DockerClient, service, node: Path
) -> None:
    before = docker_client.api.inspect_container(service.id)
    reconciler = Reconciler(Engine(engine.base_url), project="rc", settle_s=0.2)
    [outcome] = reconciler.reconcile(plan_for(node))
    assert outcome.action == "recreated", outcome
    after = docker_client.api.inspect_container("rc-gps-1")
    assert after["Id"] != before["Id"] and after["State"]["Running"]
    assert after["HostConfig"]["Privileged"] is False
    assert after["HostConfig"]["Devices"] == [
        {"PathOnHost": str(node), "PathInContainer": "/dev/gps", "CgroupPermissions": "rw"}
    ]
    assert after["HostConfig"]["CapAdd"] == ["SYS_RAWIO"]
    for key in ("Labels", "Env", "Cmd", "Image", "StopSignal"):
        assert after["Config"][key] == before["Config"][key], key
    for key in ("Binds", "RestartPolicy", "NetworkMode", "Init"):
        assert after["HostConfig"][key] == before["HostConfig"][key], key
    assert list(after["NetworkSettings"]["Networks"]) == ["rc-net"]
    assert [c.name for c in docker_client.containers.list(all=True)] == ["rc-gps-1"]
    assert reconciler.reconcile(plan_for(node))[0].action == "unchanged"


def test_a_replacement_that_cannot_start_is_rolled_back(
    engine, docker_client: docker.DockerClient, service, tmp_path: Path
) -> None:
    # The engine refuses to start with a device path that is no device node. (A path that is
    # not there at all is seen before the start: the next test.)
    broken = tmp_path / "not-a-node"
    broken.write_text("")
    reconciler = Reconciler(Engine(engine.base_url), project="rc", settle_s=0.2)
    [outcome] = reconciler.reconcile(plan_for(broken))
    assert outcome.action == "rolled-back" and "not-a-node" in outcome.detail
    now = docker_client.containers.list(all=True)
    assert [(c.name, c.id, c.status) for c in now] == [("rc-gps-1", service.id, "running")]


def test_a_swap_whose_node_is_gone_already_is_abandoned_and_the_original_never_stops(
    engine, docker_client: docker.DockerClient, service, tmp_path: Path
) -> None:
    started_at = docker_client.api.inspect_container(service.id)["State"]["StartedAt"]
    reconciler = Reconciler(Engine(engine.base_url), project="rc", settle_s=0.2)
    [outcome] = reconciler.reconcile(plan_for(tmp_path / "gone"))
    assert outcome.action == "abandoned" and "gone" in outcome.detail
    [c] = docker_client.containers.list(all=True)
    assert (c.name, c.id, c.status) == ("rc-gps-1", service.id, "running")
    assert c.attrs["State"]["StartedAt"] == started_at  # not even restarted


@pytest.mark.parametrize("comes_back", ["the same node", "a new node"])
def test_an_original_whose_own_device_went_too_runs_again_when_hardware_is_back(
    engine, docker_client: docker.DockerClient, service, node: Path, tmp_path: Path,
    comes_back: str,
) -> None:  # fmt: skip
    """A storm: the original's device is unplugged while a recreate for another one fails."""
    reconciler = Reconciler(Engine(engine.base_url), project="rc", settle_s=0.2)
    assert reconciler.reconcile(plan_for(node))[0].action == "recreated"
    numbers = os.stat(node).st_rdev
    node.unlink()
    broken = tmp_path / "not-a-node"  # a recreate the engine refuses to start
    broken.write_text("")
    [outcome] = reconciler.reconcile(plan_for(broken))
    assert outcome.action == "rolled-back"
    [c] = docker_client.containers.list(all=True)
    assert (c.name, c.status) == ("rc-gps-1", "exited")  # nothing lost, and it cannot run
    back = node if comes_back == "the same node" else tmp_path / "ttyUSB1"
    os.mknod(back, 0o20660, numbers)
    [outcome] = reconciler.reconcile(plan_for(back))
    assert outcome.action == ("restarted" if back == node else "recreated"), outcome
    [c] = docker_client.containers.list(all=True)
    assert (c.name, c.status) == ("rc-gps-1", "running")
    assert c.attrs["HostConfig"]["Devices"][0]["PathOnHost"] == str(back)
    assert reconciler.reconcile(plan_for(back))[0].action == "unchanged"


class Killed(BaseException):
    """hwprov killed between two engine calls: like SIGKILL, no rollback runs."""


class KilledAfter(Engine):
    """The real engine, until the first call of `step` has gone through."""

    def __init__(self, base_url: str, step: str) -> None:
        super().__init__(base_url)
        self.step = step

    def _then(self, step: str) -> None:
        if step == self.step:
            raise Killed(step)

    def rename(self, container: str, name: str) -> None:
        super().rename(container, name)
        self._then("rename")

    def create(self, body: Mapping[str, Any], name: str) -> str:
        new_id = super().create(body, name)
        self._then("create")
        return new_id

    def stop(self, container: str, timeout: int | None = None) -> None:
        super().stop(container, timeout)
        self._then("stop")

    def start(self, container: str) -> None:
        super().start(container)
        self._then("start")


@pytest.mark.parametrize("crash_after", ["rename", "create", "stop", "start"])
def test_a_swap_killed_at_any_step_is_recovered(
    engine, docker_client: docker.DockerClient, service, node: Path, crash_after: str
) -> None:
    """The reconciler's own recreate, killed after each of its engine calls in turn."""
    with pytest.raises(Killed):
        Reconciler(KilledAfter(engine.base_url, crash_after), project="rc").reconcile(
            plan_for(node)
        )
    after = Engine(engine.base_url)
    outcomes = recover(after, "rc", after.containers(), set())
    assert [o.action for o in outcomes] == ["recovered"]
    containers = docker_client.containers.list(all=True)
    # exactly one container, named as before, running: never two copies, nothing lost
    assert [(c.name, c.status) for c in containers] == [("rc-gps-1", "running")]
    if crash_after == "start":  # the replacement ran: the swap is finished, not undone
        assert containers[0].id != service.id
        assert containers[0].attrs["HostConfig"]["Devices"][0]["PathOnHost"] == str(node)
    else:
        assert containers[0].id == service.id
    assert docker_client.volumes.get("rc-data")  # named volumes are never removed
    # and the next pass converges from there
    [outcome] = Reconciler(after, project="rc", settle_s=0.2).reconcile(plan_for(node))
    after.close()
    assert outcome.action in ("recreated", "unchanged"), outcome
    assert [c.name for c in docker_client.containers.list(all=True)] == ["rc-gps-1"]


@pytest.mark.parametrize(
    ("writer", "timeout_ms", "how"),
    [
        # The replacement signals it has taken over, as balena apps do.
        ("sleep 1; touch /tmp/balena/handover-complete; ", "20000", "handover-complete"),
        # It never does: the original is killed at the label's timeout.
        ("", "1500", "timeout"),
    ],
)
def test_hand_over_runs_both_until_the_signal_or_the_timeout(
    engine, docker_client: docker.DockerClient, busybox_image: str, node: Path, tmp_path: Path,
    writer: str, timeout_ms: str, how: str,
) -> None:  # fmt: skip
    lock = tmp_path / "lock"  # the supervisor's /tmp/balena-supervisor/services/<app>/<svc>
    lock.mkdir()
    script = f"{writer}trap 'exit 0' TERM; while true; do sleep 1; done"
    c = docker_client.containers.run(
        busybox_image, ["sh", "-c", script], name="ho-gps-1", init=True, detach=True,
        labels={COMPOSE_PROJECT: "ho", COMPOSE_SERVICE: "gps",
                "io.balena.update.strategy": "hand-over",
                "io.balena.update.handover-timeout": timeout_ms},
        volumes={str(lock): {"bind": "/tmp/balena", "mode": "rw"}},
    )  # fmt: skip
    try:
        # The original signalled too when it started: a stale file hwprov must not take for
        # the replacement's signal.
        if writer:
            assert wait_for(lambda: (lock / "handover-complete").exists(), timeout=10)
        else:
            (lock / "handover-complete").touch()
        old_started = c.attrs["State"]["StartedAt"]
        reconciler = Reconciler(Engine(engine.base_url), project="ho", settle_s=0.2)
        [outcome] = reconciler.reconcile(plan_for(node))
        assert outcome.action == "recreated", outcome
        assert f"({how})" in outcome.detail
        waited_ms = float(outcome.detail.split("after ")[1].split(" ms")[0])
        # both ran together for a while: ~1 s until the signal, or the whole timeout
        assert waited_ms >= (1500 if how == "timeout" else 500), outcome.detail
        new = docker_client.api.inspect_container("ho-gps-1")
        assert new["Id"] != c.id and new["State"]["Running"]
        assert new["State"]["StartedAt"] != old_started
        assert [d["PathInContainer"] for d in new["HostConfig"]["Devices"]] == ["/dev/gps"]
        names = [x["Names"][0] for x in docker_client.api.containers(all=True)]
        assert names == ["/ho-gps-1"]
        assert not (lock / "handover-complete").exists()  # cleared for the next hand-over
    finally:
        for x in docker_client.api.containers(all=True, filters={"label": f"{COMPOSE_PROJECT}=ho"}):
            docker_client.api.remove_container(x["Id"], force=True)
