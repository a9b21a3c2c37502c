"""Suite-wide rules: markers by folder, and no test may leave a thread or a dockerd behind."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
MARKER_BY_FOLDER = {"unit": "unit", "sim": "sim", "engine": "engine", "hil": "sim"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        rel = Path(str(item.fspath)).relative_to(TESTS)
        marker = MARKER_BY_FOLDER.get(rel.parts[0])
        if marker:
            item.add_marker(marker)


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
