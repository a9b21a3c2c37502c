"""Granting a device to a running container, and taking it back, with no restart."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest
from conftest import free_major
from hwprov.containers import livegrant
from hwprov.sandbox.images import HOSTPYTHON_VOLUMES


@pytest.fixture
def running(docker_client: docker.DockerClient, hostpython_image: str):
    c = docker_client.containers.run(
        hostpython_image, ["sleep", "3600"], volumes=HOSTPYTHON_VOLUMES, init=True, detach=True
    )
    yield c
    c.remove(force=True)


def opens(c, path: str) -> str:
    code = (
        f"import errno, os\ntry: os.open({path!r}, os.O_RDWR)\n"
        "except OSError as e: print(errno.errorcode[e.errno])"
    )
    return c.exec_run(["python3", "-c", code]).output.decode().strip()


@pytest.mark.skipif(
    not livegrant.CGROUP_ROOT.is_dir(), reason="needs the cgroup v1 devices controller"
)
def test_grant_and_revoke_while_running(running) -> None:
    running.reload()
    pid = running.attrs["State"]["Pid"]
    major = free_major(188)
    assert opens(running, "/dev/ttyUSB0") == "ENOENT"
    livegrant.grant(pid, "/dev/ttyUSB0", major, 0)
    assert opens(running, "/dev/ttyUSB0") == "ENXIO"  # allowed: only the driver is missing here
    ls = running.exec_run(
        [
            "python3",
            "-c",
            "import os; s=os.stat('/dev/ttyUSB0'); print(os.major(s.st_rdev), os.minor(s.st_rdev))",
        ]
    )
    assert ls.output.decode().split() == [str(major), "0"]
    livegrant.revoke(pid, "/dev/ttyUSB0", major, 0)
    assert opens(running, "/dev/ttyUSB0") == "ENOENT"
    # a node made again without a grant is refused by the cgroup
    running.exec_run(
        ["python3", "-c", f"import os; os.mknod('/dev/x', 0o20660, os.makedev({major}, 0))"]
    )
    assert opens(running, "/dev/x") == "EPERM"
    running.reload()
    # the engine's view of the container is untouched: nothing for the supervisor to revert
    host = running.attrs["HostConfig"]
    assert not host["Devices"] and not host["Privileged"]


def test_a_gone_process_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(livegrant.LiveGrantError, match="gone"):
        livegrant.grant(999_999_999, "/dev/x", 1, 1)
