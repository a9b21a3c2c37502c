"""What `pip install` puts into site-packages: the product and the built-ins, under names that
say whose they are, and nothing of the checkout's benches and tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_only_hwprov_and_its_builtins(tmp_path: Path) -> None:
    # Built from the folders the container image copies (deploy/Dockerfile), as it builds.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("agent", "plugins"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(src)],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("hwprov-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = z.read(entry_points).decode()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"hwprov", "hwprov_builtins"}
    assert "hwprov = hwprov.commands.main:main" in scripts
    assert "hwprov/plugins/__init__.py" in names  # the plugin API
    assert {f"hwprov_builtins/{p}.py" for p in ("i2c", "serial", "gpio", "bluetooth")} <= set(names)
