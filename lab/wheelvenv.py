"""hwprov as a user installs it: the wheel built from this checkout, in a fresh venv of its own,
run from a folder outside the checkout. tests/sim/test_wheel_sim.py and
tests/engine/test_wheel_demo.py drive it.

The venv gets its dependencies the way a user's does, through pip and this machine's pip
configuration (index, find-links, wheel cache), never from the checkout's venv or the system's
site-packages, which would hide a dependency the wheel forgot to declare.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What a build needs, as deploy/Dockerfile copies it (tests/unit/test_packaging.py checks that
# list): nothing else of the checkout reaches the wheel.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "agent", "plugins", "hw-fixtures")
# Set by the checkout's venv or by a user: any of them would point the installed hwprov back
# at the checkout.
UNSET = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "HWPROV_FIXTURES")


def source_tree(dest: Path) -> Path:
    """A copy of what the build reads, in `dest`."""
    dest.mkdir(parents=True)
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, dest / name)
    return dest


def build_wheel(out: Path, src: Path | None = None) -> Path:
    """The wheel built from `src` (default: a copy of the sources) into `out`, with the running
    venv's setuptools: no build isolation, so no index is needed, and it takes seconds."""
    src = src or source_tree(out / "src")
    _pip(sys.executable, "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(src))
    [wheel] = out.glob("hwprov-*.whl")
    return wheel


@dataclass(frozen=True)
class WheelVenv:
    """A venv holding the wheel, and a folder outside the checkout to run it from."""

    root: Path
    cwd: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in UNSET}
        # The system's tools (umockdev-wrapper, unshare, dockerd) stay; the checkout's venv goes.
        path = [p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(ROOT))]
        env["PATH"] = os.pathsep.join([str(self.bin), *path])
        return env

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`hwprov ARGV...` as the venv installs it, in the outside folder."""
        return subprocess.run(
            [str(self.bin / "hwprov"), *argv],
            cwd=self.cwd,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def make_venv(root: Path, wheel: Path, extras: str = "") -> WheelVenv:
    """A fresh venv with the wheel (and `extras`, e.g. "sim") installed by pip."""
    # From the base interpreter: a venv made by a venv's python does not inherit its packages.
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, capture_output=True)
    _pip(str(root / "bin" / "python"), "install", f"{wheel}[{extras}]" if extras else str(wheel))
    cwd = root.parent / f"{root.name}-cwd"
    cwd.mkdir()
    return WheelVenv(root, cwd)


def _pip(python: str, *args: str) -> None:
    out = subprocess.run(
        [python, "-m", "pip", "-q", "--disable-pip-version-check", "--no-input", *args],
        capture_output=True,
        text=True,
        cwd="/",
    )
    if out.returncode:
        raise RuntimeError(f"pip {args[0]} failed ({out.returncode}):\n{out.stderr[-3000:]}")
