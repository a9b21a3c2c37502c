"""Suite-wide rules: markers by folder, and no test may leave a thread or a dockerd behind."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import pytest
from hwprov.sandbox.dockerd import PrivateEngine
from hwprov.sandbox.images import ensure_busybox, ensure_hostpython

if TYPE_CHECKING:
    from lab.wheelvenv import WheelVenv

TESTS = Path(__file__).parent
MARKERS = ("unit", "sim", "engine", "hil", "bench")  # each test folder is its own marker


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "hardware-in-the-loop bench (tests/hil, docs/hil.md)")
    group.addoption(
        "--bench", choices=("sim", "real", "kernel", "labgrid"), default="sim", help="which bench"
    )
    group.addoption(
        "--lg-place",
        help="labgrid bench: the place (else the env file's; $LG_PLACE), with --lg-env FILE",
    )
    group.addoption("--bench-config", help="the real bench's YAML file")
    group.addoption(
        "--cgroup", action="append", choices=("v2", "v1"), default=[],
        help="kernel bench: the guest's cgroup version (default: both, v2 first)",
    )  # fmt: skip
    group.addoption(
        "--kernel-guest", help="kernel bench: a guest kept up by `python -m lab.kernelbench up`"
    )
    group.addoption(
        "--kernel-set", choices=("full", "ci"), default="full",
        help="kernel bench: every test on each cgroup version (full), or the set the README's "
        "test command runs within CI's time (ci: docs/hil.md)",
    )  # fmt: skip
    group.addoption(
        "--board", action="append", default=[], help="sim bench: a fixture board (default: all)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        rel = Path(str(item.fspath)).relative_to(TESTS)
        if rel.parts[0] in MARKERS:
            item.add_marker(rel.parts[0])


def dockerd_pids() -> set[int]:
    """Live dockerd processes (zombies excluded: PID 1 here reaps them late)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if comm == "dockerd" and state not in ("Z", "X"):
            pids.add(int(entry.name))
    return pids


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2.0
    while True:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not extra, f"test left threads running: {[t.name for t in extra]}"


def _wait_for_no_new_dockerd(before: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while (extra := dockerd_pids() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    return extra


@pytest.fixture(autouse=True)
def _no_leftover_dockerd_per_test() -> Iterator[None]:
    # Session-scoped engines are set up before this function-scoped check, so they are in `before`.
    before = dockerd_pids()
    yield
    extra = _wait_for_no_new_dockerd(before, 5.0)
    assert not extra, f"test left dockerd running: pids {sorted(extra)}"


@pytest.fixture(scope="session", autouse=True)
def _no_leftover_dockerd() -> Iterator[None]:
    before = dockerd_pids()
    yield
    extra = _wait_for_no_new_dockerd(before, 10.0)
    if extra:
        pytest.fail(f"the suite left dockerd running: pids {sorted(extra)}")


def needs_root() -> pytest.MarkDecorator:
    return pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, netns, dockerd)")


# The private engine, shared by engine/ and hil/ for the whole session.


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


# hwprov installed from its wheel into a fresh venv, shared by sim/ and engine/ for the session
# (lab/wheelvenv.py). Built on first use only: the other tests never pay for it.


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lab import wheelvenv

    return wheelvenv.build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def wheel_venv(built_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> WheelVenv:
    from lab import wheelvenv

    return wheelvenv.make_venv(tmp_path_factory.mktemp("wheel-sim") / "venv", built_wheel, "sim")
