"""deploy/Dockerfile built as docs/deploy.md says a machine without a registry or a package index
builds it: on a Debian base made by mmdebstrap and `docker import`ed, hwprov installed from a
folder of wheels, the build's network off. Then the image is run as users run it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker
import hwprov
import pytest
from hwprov.sandbox.dockerd import PrivateEngine

from lab import offlineimage

TAG = "hwprov/agent:offline-test"


@pytest.fixture(scope="module")
def image(
    docker_client: docker.DockerClient,
    built_wheel: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    base = offlineimage.import_base(docker_client, offlineimage.base_tarball())
    folder = tmp_path_factory.mktemp("image")
    found = offlineimage.wheels(folder / "wheels", built_wheel)
    ctx = offlineimage.context(folder / "ctx", found)
    said = offlineimage.build(docker_client, ctx, base, TAG)
    # From the wheels, not from the source beside them: the index was never asked.
    assert any("Looking in links: wheels" in line for line in said), said[-20:]
    return TAG


def ids(scan: dict[str, Any]) -> set[str]:
    """Every piece of hardware a scan found, mapped or refused."""
    found = {h["id"] for h in scan["hardware"]}
    return found | {r["hardware"]["id"] for r in scan["refused"]}


def run(client: docker.DockerClient, image: str, *command: str) -> str:
    out = client.containers.run(image, list(command), entrypoint=[], remove=True)
    return out.decode() if isinstance(out, bytes) else str(out)


@pytest.mark.timeout(600)
def test_the_offline_image_has_hwprov_and_libudev(
    docker_client: docker.DockerClient, image: str
) -> None:
    assert run(docker_client, image, "hwprov", "--version").split() == [
        "hwprov",
        hwprov.__version__,
    ]
    # A scan reads sysfs through libudev (the base's libudev1). The container sees the host's
    # sysfs, so it finds what the checkout's hwprov finds here, by the same ids (stable without
    # udev's database); the container's /dev lacks the nodes, so there they are refused.
    inside = json.loads(run(docker_client, image, "hwprov", "scan", "--json"))
    here = json.loads(
        subprocess.run(
            [sys.executable, "-m", "hwprov", "scan", "--json"],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout
    )  # fmt: skip
    assert inside["problems"] == [] == here["problems"]
    assert ids(inside) == ids(here), (inside, here)
    # The plugins came with it: the built-ins and nothing of the checkout's.
    freeze = run(docker_client, image, "pip", "freeze", "--all").splitlines()
    assert any(line.startswith("hwprov @ file:") or line.startswith("hwprov==") for line in freeze)
    assert not any("editable" in line or "/work/" in line for line in freeze), freeze


@pytest.mark.timeout(300)
def test_the_image_runs_the_agent_on_its_baked_in_project(
    docker_client: docker.DockerClient, engine: PrivateEngine, image: str
) -> None:
    # The engine's socket as the balena supervisor gives it (io.balena.features.balena-socket).
    container = docker_client.containers.run(
        image,
        detach=True,
        volumes={str(engine.socket): {"bind": "/var/run/docker.sock", "mode": "rw"}},
        environment={"DOCKER_HOST": "unix:///var/run/docker.sock"},
    )
    try:
        deadline = time.monotonic() + 120
        while '"event": "started"' not in container.logs().decode():
            container.reload()
            assert container.status == "running", container.logs().decode()[-3000:]
            assert time.monotonic() < deadline, container.logs().decode()[-3000:]
            time.sleep(0.2)
        container.stop(timeout=30)  # SIGTERM: hwprov stops cleanly
        assert container.wait(timeout=60)["StatusCode"] == 0, container.logs().decode()[-3000:]
        events = [json.loads(x)["event"] for x in container.logs().decode().splitlines()]
        assert events[0] == "started" and events[-1] == "stopping", events
    finally:
        container.remove(force=True)
