"""A real private Docker engine for the whole session, and a check that no test leaves a
container behind or creates a privileged one."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from agent.lab.dockerd import PrivateEngine
from agent.lab.images import ensure_busybox, ensure_hostpython

if os.geteuid() != 0 or shutil.which("dockerd") is None:
    pytest.skip("needs root and Debian's docker.io (scripts/bootstrap.sh)", allow_module_level=True)


def free_major(preferred: int) -> int:
    """A char major with no driver on this host, so a real node of it opens with ENXIO."""
    text = Path("/proc/devices").read_text().split("Block devices:")[0]
    taken = {int(line.split()[0]) for line in text.splitlines() if line.strip()[:1].isdigit()}
    if preferred not in taken:
        return preferred
    return next(m for m in range(511, 300, -1) if m not in taken)


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateEngine]:
    eng = PrivateEngine(tmp_path_factory.mktemp("engine"))
    eng.start()
    yield eng
    eng.stop()


@pytest.fixture(scope="session")
def docker_client(engine: PrivateEngine) -> Iterator[docker.DockerClient]:
    client = engine.client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def busybox_image(docker_client: docker.DockerClient) -> str:
    return ensure_busybox(docker_client)


@pytest.fixture(scope="session")
def hostpython_image(docker_client: docker.DockerClient) -> str:
    return ensure_hostpython(docker_client)


@pytest.fixture(autouse=True)
def _no_leftover_or_privileged_containers(
    request: pytest.FixtureRequest,
) -> Iterator[None]:
    if "docker_client" not in request.fixturenames:
        yield
        return
    client: docker.DockerClient = request.getfixturevalue("docker_client")
    before = {c["Id"] for c in client.api.containers(all=True)}
    seen_privileged: list[str] = []

    yield
    after = client.api.containers(all=True)
    for c in after:
        if client.api.inspect_container(c["Id"])["HostConfig"]["Privileged"]:
            seen_privileged.append(c["Names"][0])
    extra = [c for c in after if c["Id"] not in before]
    for c in extra:
        client.api.remove_container(c["Id"], force=True)
    assert not seen_privileged, f"privileged containers exist: {seen_privileged}"
    assert not extra, f"test left containers: {[c['Names'][0] for c in extra]}"
