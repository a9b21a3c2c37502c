"""Supervisor-owned containers get devices live, and keep exactly what the supervisor made."""

from __future__ import annotations

import os
from pathlib import Path

import docker
import pytest
from conftest import free_major, wait_for
from hwprov.containers import livegrant
from hwprov.containers.engine import Engine
from hwprov.containers.reconciler import Reconciler
from hwprov.planning.plan import Plan, PlannedDevice, ServicePlan
from hwprov.sandbox.images import HOSTPYTHON_VOLUMES

from lab.supervised import LABELS, NAME


def opens(c, path: str) -> str:
    code = (
        f"import errno, os\ntry: os.close(os.open({path!r}, os.O_RDWR)); print('OPEN')\n"
        "except OSError as e: print(errno.errorcode[e.errno])"
    )
    return c.exec_run(["python3", "-c", code]).output.decode().strip()


def plan(node: Path | None) -> Plan:
    devices = (
        (PlannedDevice(str(node), "/dev/ttyUSB0", "rw", None, None, "s", "t"),) if node else ()
    )
    return Plan("t.yml", (ServicePlan("gps", devices=devices),))


@pytest.mark.skipif(not livegrant.CGROUP_ROOT.is_dir(), reason="needs cgroup v1 devices")
def test_cgroup_strategy_grants_revokes_and_survives_restart(
    engine, docker_client: docker.DockerClient, hostpython_image: str, tmp_path: Path
) -> None:
    node = tmp_path / "ttyUSB0"
    major = free_major(188)
    os.mknod(node, 0o20660, os.makedev(major, 0))
    c = docker_client.containers.run(
        hostpython_image,
        ["sleep", "3600"],
        name=NAME,
        labels=LABELS,
        volumes=HOSTPYTHON_VOLUMES,
        init=True,
        detach=True,
    )
    try:
        before = docker_client.api.inspect_container(c.id)
        reconciler = Reconciler(Engine(engine.base_url))
        [outcome] = reconciler.reconcile(plan(node))
        assert outcome.action == "granted", outcome
        assert opens(c, "/dev/ttyUSB0") == "ENXIO"  # granted: only the driver is missing here
        assert reconciler.reconcile(plan(node))[0].action == "unchanged"
        c.restart(timeout=5)  # a restart loses the grant (fresh /dev and cgroup) ...
        assert opens(c, "/dev/ttyUSB0") == "ENOENT"
        assert reconciler.reconcile(plan(node))[0].action == "granted"  # ... and gets it back
        assert opens(c, "/dev/ttyUSB0") == "ENXIO"
        [gone] = reconciler.reconcile(plan(None))  # unplugged: revoked and removed
        assert gone.action == "granted" and gone.differences == ("- /dev/ttyUSB0",)
        assert opens(c, "/dev/ttyUSB0") == "ENOENT"
        after = docker_client.api.inspect_container(c.id)
        # byte for byte what the supervisor created: nothing for it to revert
        assert after["Id"] == before["Id"] and after["Name"] == f"/{NAME}"
        for key in ("Devices", "CapAdd", "Privileged", "Binds", "DeviceCgroupRules"):
            assert after["HostConfig"][key] == before["HostConfig"][key], key
        assert after["Config"]["Labels"] == before["Config"]["Labels"]
    finally:
        c.remove(force=True)


GATEWAY_COMPOSE = """\
services:
  gps:
    image: hwprov/hostpython:latest
    labels:
      io.hwprov.device.gps: "kind=serial, vendor=0403, model=6001, path=/dev/gps"
"""


@pytest.mark.timeout(120)
@pytest.mark.skipif(not livegrant.CGROUP_ROOT.is_dir(), reason="needs cgroup v1 devices")
def test_run_grants_a_hot_plugged_adapter_live_and_again_after_a_restart(
    engine, docker_client: docker.DockerClient, hostpython_image: str, sim_daemon, tmp_path: Path
) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(GATEWAY_COMPOSE)
    c = docker_client.containers.run(
        hostpython_image, ["sleep", "3600"], name=NAME, labels=LABELS,
        volumes=HOSTPYTHON_VOLUMES, init=True, detach=True,
    )  # fmt: skip
    daemon = None
    try:
        before = docker_client.api.inspect_container(c.id)
        daemon = sim_daemon(compose, "x86-gateway")
        assert daemon.wait_event("started")
        assert opens(c, "/dev/gps") == "ENOENT"
        daemon.sim("plug", id="ftdi")
        # The node is there with the adapter's numbers, and the cgroup lets it open: ENXIO
        # (no driver on this machine), not EPERM.
        assert wait_for(lambda: opens(c, "/dev/gps") == "ENXIO"), daemon.tail()
        inside = c.exec_run(["stat", "-L", "-c", "%t:%T", "/dev/gps"]).output.decode().strip()
        major, _, minor = inside.partition(":")
        assert f"{int(major, 16)}:{int(minor, 16)}" == daemon.host_dev("/dev/ttyUSB0")

        # A restart loses it (fresh /dev and cgroup); the engine's start event brings it back
        # with no hardware change at all.
        c.restart(timeout=5)
        assert wait_for(lambda: opens(c, "/dev/gps") == "ENXIO", timeout=10)
        assert daemon.wait_event("container-started")

        daemon.sim("unplug", id="ftdi")  # revoked and the node removed
        assert wait_for(lambda: opens(c, "/dev/gps") == "ENOENT")
        after = docker_client.api.inspect_container(c.id)
        assert after["Name"] == f"/{NAME}" and after["Id"] == before["Id"]
        for key in ("Devices", "CapAdd", "Privileged", "Binds", "DeviceCgroupRules"):
            assert after["HostConfig"][key] == before["HostConfig"][key], key
        assert after["Config"]["Labels"] == before["Config"]["Labels"]
    finally:
        if daemon is not None:
            daemon.stop()
        c.remove(force=True)
    said = [e for e in daemon.events() if e["event"] in ("granted", "revoked")]
    # plug and restart; the unplug by the revoker as its uevent is read, or by a pass that got
    # there first (daemon/revoker.py)
    assert [e["event"] for e in said[:2]] == ["granted", "granted"], said
    assert len(said) == 3 and (
        said[2]["event"] == "revoked" or said[2]["differences"] == ["- /dev/gps"]
    ), said
