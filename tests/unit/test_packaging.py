"""What `pip install` puts into site-packages: the product, the built-ins and the fixture boards,
under names that say whose they are, and nothing of the checkout's benches and tests; the same
wheel from the folders the container image copies and from the sdist.

tests/sim/test_wheel_sim.py installs the wheel and runs it from outside the checkout.
"""

from __future__ import annotations

import email.parser
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import hwprov
import pytest
from hwprov.commands.main import main
from hwprov.sim.paths import fixtures_dir

from lab import wheelvenv

ROOT = Path(__file__).resolve().parents[2]
BOARDS = ROOT / "hw-fixtures"


def image_sources() -> list[str]:
    """The files and folders deploy/Dockerfile copies from the source tree, in its order."""
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    copies = "\n".join(re.findall(r"^COPY .*$", text, re.MULTILINE))
    return re.findall(r"\$\{HWPROV_SRC\}/(\S+)", copies)


@pytest.fixture
def wheel(built_wheel: Path) -> Path:
    return built_wheel  # tests/conftest.py: built once a session, from lab/wheelvenv.SOURCES


def names_in(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        return z.namelist()


def read(wheel: Path, suffix: str) -> str:
    with zipfile.ZipFile(wheel) as z:
        return z.read(next(n for n in z.namelist() if n.endswith(suffix))).decode()


def test_the_image_and_the_wheel_tests_build_from_the_same_sources() -> None:
    # lab/wheelvenv.py builds what the image builds: the sources, the license and the boards.
    assert image_sources() == list(wheelvenv.SOURCES)


def test_the_wheel_holds_only_hwprov_and_its_builtins(wheel: Path) -> None:
    names = names_in(wheel)
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"hwprov", "hwprov_builtins"}
    assert "hwprov = hwprov.commands.main:main" in read(wheel, ".dist-info/entry_points.txt")
    assert "hwprov/plugins/__init__.py" in names  # the plugin API
    assert {f"hwprov_builtins/{p}.py" for p in ("i2c", "serial", "gpio", "bluetooth")} <= set(names)


def test_every_package_of_the_source_folders_is_in_the_wheel(wheel: Path) -> None:
    # pyproject.toml lists the packages by name (hwprov.boards lives outside agent/): a new
    # sub-package that is not added there would be missing from every install but editable.
    expected = {
        f"{init.parent.relative_to(root)}/__init__.py"
        for root in (ROOT / "agent", ROOT / "plugins")
        for init in root.glob("*/**/__init__.py")
    }
    assert len(expected) >= 12
    assert expected <= set(names_in(wheel))


def test_the_fixture_boards_ship_as_package_data_without_the_benches(wheel: Path) -> None:
    shipped = {n.removeprefix("hwprov/boards/") for n in names_in(wheel) if "/boards/" in n}
    boards = {p.name for p in BOARDS.glob("*.yaml")}
    assert len(boards) >= 5
    assert shipped == boards | {"__init__.py"}  # not benches/ (the lab's), not the README
    with zipfile.ZipFile(wheel) as z:
        assert z.read("hwprov/boards/rpi4b.yaml") == (BOARDS / "rpi4b.yaml").read_bytes()


def test_the_wheel_is_typed_licensed_and_has_the_packages_version(wheel: Path) -> None:
    names = names_in(wheel)
    assert {"hwprov/py.typed", "hwprov_builtins/py.typed"} <= set(names)
    license = read(wheel, ".dist-info/licenses/LICENSE")
    assert license == (ROOT / "LICENSE").read_text()
    assert [line.strip() for line in license.splitlines()[1:3]] == [
        "Apache License",
        "Version 2.0, January 2004",
    ]
    meta = email.parser.Parser().parsestr(read(wheel, ".dist-info/METADATA"))
    assert meta["Version"] == hwprov.__version__  # the one source: hwprov/__init__.py
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["License-File"] == "LICENSE"
    assert "sim" in meta.get_all("Provides-Extra", [])


def test_the_sdist_builds_the_same_wheel(tmp_path: Path, wheel: Path) -> None:
    src = wheelvenv.source_tree(tmp_path / "src")
    subprocess.run(
        [sys.executable, "-c", "from setuptools import build_meta as b; b.build_sdist('..')"],
        cwd=src,
        check=True,
        capture_output=True,
    )
    [sdist] = tmp_path.glob("hwprov-*.tar.gz")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    [unpacked] = (tmp_path / "unpacked").iterdir()
    again = wheelvenv.build_wheel(tmp_path / "again", unpacked)
    assert sorted(names_in(again)) == sorted(names_in(wheel))


def test_the_editable_install_reads_the_boards_from_the_checkout() -> None:
    # scripts/bootstrap.sh installs hwprov editable: hw-fixtures/ is hwprov.boards itself, so a
    # board edited there is the one the next `hwprov sim` runs.
    assert fixtures_dir().resolve() == BOARDS.resolve()


def test_hwprov_fixtures_names_other_boards(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HWPROV_FIXTURES", str(tmp_path))
    assert fixtures_dir() == tmp_path


def test_without_the_boards_package_the_sim_says_how_to_get_boards(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HWPROV_FIXTURES", raising=False)
    monkeypatch.setitem(sys.modules, "hwprov.boards", None)  # a copy of agent/hwprov alone
    assert main(["sim", "boards"]) == 2
    assert capsys.readouterr().err == (
        "hwprov: error: the fixture boards (hwprov.boards) are not installed: reinstall hwprov "
        "with pip, or set HWPROV_FIXTURES\n"
    )
