"""The private engine: starts, runs real containers with real device nodes, stops clean."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest
from conftest import free_major
from hwprov.sandbox.dockerd import PrivateEngine, alive
from hwprov.sandbox.images import HOSTPYTHON_VOLUMES

KEEP_RUNNING = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


def test_engine_answers_and_second_start_is_harmless(
    engine: PrivateEngine, docker_client: docker.DockerClient
) -> None:
    pid = engine.pid
    engine.start()
    assert engine.pid == pid and docker_client.ping()


def test_busybox_container_runs(docker_client: docker.DockerClient, busybox_image: str) -> None:
    out = docker_client.containers.run(busybox_image, ["echo", "hello"], remove=True)
    assert out == b"hello\n"


def test_real_node_is_mapped_with_its_numbers_and_opens_enxio_not_eperm(
    tmp_path: Path, docker_client: docker.DockerClient, hostpython_image: str
) -> None:
    major = free_major(89)
    node = tmp_path / "i2c-1"
    os.mknod(node, 0o660 | 0o020000, os.makedev(major, 1))
    code = (
        "import os, errno\n"
        "st = os.stat('/dev/i2c-1'); print(os.major(st.st_rdev), os.minor(st.st_rdev))\n"
        "for p in ('/dev/i2c-1', '/dev/ungranted'):\n"
        "    try: os.open(p, os.O_RDWR)\n"
        "    except OSError as e: print(errno.errorcode[e.errno])\n"
    )
    script = f'mknod /dev/ungranted c {major} 2 2>/dev/null || python3 -c \'import os; os.mknod("/dev/ungranted", 0o20660, os.makedev({major}, 2))\'; python3 -c "$0"'  # noqa: E501
    container = docker_client.containers.run(
        hostpython_image,
        ["sh", "-c", script, code],
        devices=[f"{node}:/dev/i2c-1:rw"],
        volumes=HOSTPYTHON_VOLUMES,
        privileged=False,
        detach=True,
    )
    try:
        container.wait(timeout=30)
        out = container.logs().decode().split()
    finally:
        container.remove(force=True)
    # granted by Devices: the driver is missing (ENXIO); not granted: the cgroup says no (EPERM)
    assert out == [str(major), "1", "ENXIO", "EPERM"]


def test_missing_device_path_makes_the_engine_refuse(
    docker_client: docker.DockerClient, busybox_image: str
) -> None:
    # Docker 20.10 accepts the create and refuses at start: the sensor-plugged-late failure.
    container = docker_client.containers.create(
        busybox_image, devices=["/dev/ttyUSB9:/dev/ttyUSB9:rw"]
    )
    try:
        with pytest.raises(docker.errors.APIError) as err:
            container.start()
    finally:
        container.remove(force=True)
    assert "/dev/ttyUSB9" in str(err.value)


def test_device_cgroup_rule_lets_a_later_node_open(
    docker_client: docker.DockerClient, hostpython_image: str
) -> None:
    major = free_major(188)
    code = (
        "import os, errno\n"
        f"os.mknod('/dev/ttyUSB0', 0o20660, os.makedev({major}, 0))\n"
        "try: os.open('/dev/ttyUSB0', os.O_RDWR)\n"
        "except OSError as e: print(errno.errorcode[e.errno])\n"
    )
    out = docker_client.containers.run(
        hostpython_image,
        ["python3", "-c", code],
        volumes=HOSTPYTHON_VOLUMES,
        device_cgroup_rules=[f"c {major}:* rwm"],
        remove=True,
    )
    assert out.decode().split() == ["ENXIO"]


def test_stop_leaves_nothing_and_restart_after_kill_9_is_fast(tmp_path: Path) -> None:
    eng = PrivateEngine(tmp_path / "e")
    eng.start()
    netns = eng.netns
    assert eng.pid is not None
    os.kill(eng.pid, signal.SIGKILL)
    assert eng._proc is not None
    eng._proc.wait()
    assert not alive(eng.pid)
    eng.pid = eng._proc = None
    started = time.monotonic()
    eng.start()
    assert time.monotonic() - started < 10  # a stale containerd pidfile would cost 15 s + failure
    eng.stop()
    eng.stop()  # idempotent
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert netns is not None and netns not in namespaces
    assert str(tmp_path) not in Path("/proc/self/mounts").read_text()


def test_a_containerd_still_running_on_the_root_is_cleared_before_dockerd_starts(
    tmp_path: Path,
) -> None:
    """The kill -9 flake, made certain: dockerd is gone but its containerd has not died yet
    when the next start reads the pidfile. Before the fix, the new dockerd waited on that
    containerd and the start timed out."""
    eng = PrivateEngine(tmp_path / "e")
    config = eng.root / "exec/containerd/containerd.toml"
    config.parent.mkdir(parents=True)
    # A stand-in for the orphan, named as dockerd starts containerd on this root.
    orphan = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; time.sleep(120)",
            "containerd",
            "--config",
            str(config),
        ]
    )
    unrelated = subprocess.Popen(["sleep", "120"])  # a pid reused by something else
    try:
        (config.parent / "containerd.pid").write_text(str(orphan.pid))
        (eng.root / "dockerd.pid").write_text(str(unrelated.pid))
        started = time.monotonic()
        eng.start(timeout=20)
        assert time.monotonic() - started < 10
        assert orphan.wait(timeout=5) == -signal.SIGKILL
        assert unrelated.poll() is None  # not on this root: left alone
    finally:
        eng.stop()
        orphan.kill()
        unrelated.kill()
        orphan.wait()
        unrelated.wait()
