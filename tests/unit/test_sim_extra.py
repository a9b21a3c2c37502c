"""Without the `sim` extra (PyGObject) or umockdev's typelib, `hwprov sim run` and `hwprov demo`
say in one line what to install, exit 2, and start nothing.

The import failure is simulated: gi is hidden from the import system, or replaced by a gi whose
typelib lookup fails the way PyGObject's does.
"""

from __future__ import annotations

import sys
import types

import pytest
from hwprov.commands.main import main

# Everything that imports gi, so that each test imports it afresh.
GI_USERS = ("hwprov.sim.umockdev", "hwprov.sim.testbed", "hwprov.sim.i2c")


def forget_gi(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [*GI_USERS, *(m for m in sys.modules if m == "gi" or m.startswith("gi."))]:
        monkeypatch.delitem(sys.modules, name, raising=False)


@pytest.fixture
def no_pygobject(monkeypatch: pytest.MonkeyPatch) -> None:
    forget_gi(monkeypatch)
    monkeypatch.setitem(sys.modules, "gi", None)  # `import gi` raises ModuleNotFoundError


@pytest.fixture
def no_typelib(monkeypatch: pytest.MonkeyPatch) -> None:
    forget_gi(monkeypatch)
    gi = types.ModuleType("gi")

    def require_version(namespace: str, version: str) -> None:
        raise ValueError(f"Namespace {namespace} not available")

    gi.require_version = require_version  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gi", gi)


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.splitlines()
    return line


@pytest.fixture
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    import hwprov.sandbox.demo

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"started {args} with the simulator missing")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(hwprov.sandbox.demo, "PrivateEngine", refuse)


@pytest.mark.usefixtures("no_pygobject", "nothing_starts")
@pytest.mark.parametrize(
    "argv",
    [
        ["sim", "run", "--board", "rpi4b", "--", "hwprov", "scan"],
        # the re-executed child, in case the outer check is bypassed (an older outer hwprov)
        ["sim", "run", "--inner", "--board", "rpi4b", "--", "hwprov", "scan"],
        ["demo"],
    ],
    ids=["sim-run", "sim-run-inner", "demo"],
)
def test_without_pygobject_one_line_names_the_extra_and_the_debian_packages(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    line = one_line(capsys)
    assert line.startswith("hwprov: error: the simulator needs PyGObject (")
    assert "pip install 'hwprov[sim]'" in line
    # what pip builds PyGObject against, and what the simulator runs
    for deb in ("libgirepository1.0-dev", "libcairo2-dev", "umockdev", "gir1.2-umockdev-1.0"):
        assert deb in line.split()


@pytest.mark.usefixtures("no_typelib", "nothing_starts")
def test_without_umockdevs_typelib_one_line_names_the_debian_packages(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["sim", "run", "--board", "rpi4b", "--", "hwprov", "scan"]) == 2
    assert one_line(capsys) == (
        "hwprov: error: the simulator needs umockdev's GObject bindings "
        "(Namespace UMockdev not available): apt-get install umockdev gir1.2-umockdev-1.0"
    )


@pytest.mark.usefixtures("nothing_starts")
def test_without_umockdev_wrapper_one_line_names_the_debian_packages(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["demo"]) == 2
    assert one_line(capsys) == (
        "hwprov: error: the simulator needs umockdev-wrapper: "
        "apt-get install umockdev gir1.2-umockdev-1.0"
    )
