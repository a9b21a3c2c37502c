"""hwprov installed from its wheel into a fresh venv and run from a folder outside the checkout:
the boards come with it, the simulator runs them, and without the `sim` extra one line says what
to install (lab/wheelvenv.py; the demo from the same venv is tests/engine/test_wheel_demo.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import hwprov
import pytest

from lab.wheelvenv import WheelVenv, make_venv

ROOT = Path(__file__).resolve().parents[2]
BOARDS = sorted(p.stem for p in (ROOT / "hw-fixtures").glob("*.yaml"))
SIM = ("sim", "run", "--board", "rpi4b", "--")


@pytest.fixture(scope="module")
def bare_venv(built_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> WheelVenv:
    return make_venv(tmp_path_factory.mktemp("wheel-bare") / "venv", built_wheel)


def ok(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 0, out
    return out.stdout


def test_the_venv_is_outside_the_checkout_and_runs_its_own_hwprov(wheel_venv: WheelVenv) -> None:
    assert ROOT not in (wheel_venv.root.resolve(), *wheel_venv.root.resolve().parents)
    assert ROOT not in (wheel_venv.cwd.resolve(), *wheel_venv.cwd.resolve().parents)
    assert ok(wheel_venv.run("--version")) == f"hwprov {hwprov.__version__}\n"
    where = ok(
        wheel_venv.run(
            *SIM,
            "python",
            "-c",
            "import hwprov.sim.paths as p; print(p.__file__, p.fixtures_dir())",
        )
    )
    module, boards = where.split()
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"  # the venv's, too
    site = wheel_venv.root / "lib" / python / "site-packages"
    assert Path(module).is_relative_to(site) and Path(boards) == site / "hwprov" / "boards"


def test_sim_boards_lists_the_boards_that_ship_with_the_package(wheel_venv: WheelVenv) -> None:
    listed = [line.split()[0] for line in ok(wheel_venv.run("sim", "boards")).splitlines()]
    assert listed == BOARDS and len(BOARDS) >= 5


def test_scan_on_the_simulated_board_finds_its_hardware(wheel_venv: WheelVenv) -> None:
    doc = json.loads(ok(wheel_venv.run(*SIM, "hwprov", "scan", "--json")))
    found = {h["name"]: h for h in doc["hardware"]}
    assert {"i2c-1", "ttyAMA0", "ttyS0", "gpiochip0", "hci0"} <= set(found)
    assert found["i2c-1"]["node"] == "/dev/i2c-1" and found["i2c-1"]["plugin"] == "i2c"
    # the emulated BME280 answered the i2c plugin's probe through the installed simulator
    assert {"address": "0x76", "model": "bme280", "state": "identified"} in found["i2c-1"]["probed"]
    assert doc["problems"] == []


def test_plan_on_the_simulated_board_gives_the_service_its_sensor(wheel_venv: WheelVenv) -> None:
    compose = wheel_venv.cwd / "docker-compose.yml"
    compose.write_text(
        textwrap.dedent("""\
            services:
              env-sensor:
                image: busybox
                labels:
                  io.hwprov.device.env: "kind=i2c, sensor=bme280"
        """)
    )
    doc = json.loads(ok(wheel_venv.run(*SIM, "hwprov", "plan", "-f", compose.name, "--json")))
    [service] = doc["services"]
    assert [(d["host"], d["major"], d["minor"]) for d in service["devices"]] == [
        ("/dev/i2c-1", 89, 1)
    ]
    assert service["unmet"] == [] and service["privileged"] is False


def test_without_the_sim_extra_boards_list_and_the_sim_says_what_to_install(
    bare_venv: WheelVenv,
) -> None:
    assert [line.split()[0] for line in ok(bare_venv.run("sim", "boards")).splitlines()] == BOARDS
    for argv in ((*SIM, "hwprov", "scan"), ("demo",)):
        out = bare_venv.run(*argv)
        assert (out.returncode, out.stdout) == (2, ""), out
        [line] = out.stderr.splitlines()
        assert line.startswith(
            "hwprov: error: the simulator needs PyGObject (No module named 'gi')"
        )
        assert "pip install 'hwprov[sim]'" in line and "gir1.2-umockdev-1.0" in line
