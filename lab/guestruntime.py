"""hwprov installed on the kernel bench's guest the way it is on a device: its own Python, its
runtime dependencies and nothing else, on the guest's own (tmpfs) filesystem.

Run from the host's files over 9p, as the guest's root filesystem is, hwprov took 14-40 s to
start under TCG (each stat is a 9p round trip through QEMU: 1,672 of them at 2.5 ms, and as
many reads): a decision line that late tells nothing about hwprov. So the bench packs one
tarball on the host (`build`), one sequential read for the guest, which unpacks it to
/opt/hwprov and puts /opt/hwprov/bin first on PATH.

The interpreter is the host's own (relocatable: it finds its library from where it runs), with
the standard library minus what a device never imports (tests, IDLE, Tk).
"""

from __future__ import annotations

import importlib.metadata as md
import io
import re
import sys
import sysconfig
import tarfile
from collections.abc import Iterator
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "/opt/hwprov"
STDLIB_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
               "site-packages", "config-3.11-x86_64-linux-gnu"}  # fmt: skip
ENTRY = (
    "#!{prefix}/bin/python3\nimport sys\nfrom hwprov.commands.main import main\nsys.exit(main())\n"
)


def requirements(name: str, seen: set[str] | None = None) -> set[str]:
    """`name` and what it needs to run (extras and markers that do not apply left out)."""
    seen = set() if seen is None else seen
    key = re.sub(r"[-_.]+", "-", name).lower()
    if key in seen:
        return seen
    seen.add(key)
    for spec in md.distribution(name).requires or ():
        req = Requirement(spec)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            requirements(req.name, seen)
    return seen


def _dist_files(name: str) -> Iterator[tuple[Path, str]]:
    dist = md.distribution(name)
    for file in dist.files or ():
        path = Path(str(dist.locate_file(file)))
        if (
            path.is_file()
            and "__editable__" not in path.name
            and path.suffix != ".pth"
            and (
                ".." not in file.parts  # console scripts: the runtime has its own `hwprov` only
            )
        ):
            yield path, f"lib/python3.11/site-packages/{file}"


def members() -> Iterator[tuple[Path, str]]:
    """(host file, path under the prefix) for everything the runtime holds."""
    base = Path(sys.base_prefix)
    yield Path(sys.executable).resolve(), "bin/python3"
    for lib in (base / "lib").glob("libpython3*.so*"):
        yield lib, f"lib/{lib.name}"
    stdlib = Path(sysconfig.get_paths(vars={"base": str(base)})["stdlib"])
    for path in sorted(stdlib.rglob("*")):
        rel = path.relative_to(stdlib)
        if path.is_file() and rel.parts[0] not in STDLIB_SKIP and ".opt-" not in path.name:
            yield path, f"lib/python3.11/{rel}"
    for dep in sorted(requirements("hwprov") - {"hwprov"}):
        yield from _dist_files(dep)
    # hwprov itself from the checkout (the venv holds it editable), with its entry points.
    for package in (ROOT / "agent" / "hwprov", ROOT / "plugins" / "hwprov_builtins"):
        for path in sorted(package.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                yield path, f"lib/python3.11/site-packages/{path.relative_to(package.parent)}"
    # The venv's record of the install, not the checkout's egg-info that '' on sys.path finds.
    info = next(Path(sysconfig.get_paths()["purelib"]).glob("hwprov-*.dist-info"))
    for path in sorted(info.glob("*")):
        if path.name != "RECORD":
            yield path, f"lib/python3.11/site-packages/{info.name}/{path.name}"


def build(dest: Path) -> Path:
    with tarfile.open(dest, "w") as tar:
        for path, name in members():
            tar.add(path, arcname=name, recursive=False)
        entry = (ENTRY.format(prefix=PREFIX)).encode()
        info = tarfile.TarInfo("bin/hwprov")
        info.size, info.mode = len(entry), 0o755
        tar.addfile(info, io.BytesIO(entry))
    return dest
