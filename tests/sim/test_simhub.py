"""The private lab's simulated hubs (lab/simhub.py): the `uhubctl` the lab host runs switches a
simulated board's USB units on and off, answering as uhubctl does; and the hubs as udev shows
them to the exporter (umockdev-run with their description) are what labgrid's USBPowerPort
matches: a hub interface bound to `hub` under a usb_device with its bus and device numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import RunningSim
from hwprov.sim.board import load_board

from lab.privatelab import usb_units
from lab.simhub import Hub, describe, save

ROOT = Path(__file__).resolve().parents[2]


def uhubctl(hubs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab.simhub", str(hubs), *args],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
    )  # fmt: skip


def test_rpi4b_usb_units_by_hub_port() -> None:
    # hw-fixtures/rpi4b.yaml: the FTDI on 1-1.3, the CP2102 on 1-1.4, the dongle on 1-1.2
    assert usb_units(load_board("rpi4b")) == {"ftdi": 3, "cp2102": 4, "bt-dongle": 2}


def test_uhubctl_switches_the_boards_unit(tmp_path: Path, running_sim: type[RunningSim]) -> None:
    sim = running_sim("import signal; print('up'); signal.pause()")  # type: ignore[call-arg]
    assert sim.line() == "up"
    hubs = tmp_path / "hubs.json"
    save(hubs, [Hub(1, str(sim.control), {3: "ftdi", 2: "bt-dongle"})])
    on = uhubctl(hubs, "-l", "1-1", "-p", "3", "-r", "100", "-a", "on")
    assert on.returncode == 0, on.stderr
    assert "Port 3: 0503 power" in on.stdout
    status = json.loads(sim.ctl("status").stdout)
    assert status["units"]["ftdi"] and not status["units"]["bt-dongle"]
    again = uhubctl(hubs, "-l", "1-1", "-p", "3", "-a", "on")  # on already: as uhubctl, fine
    assert again.returncode == 0, again.stderr
    off = uhubctl(hubs, "-l", "1-1", "-p", "3", "-a", "off")
    assert off.returncode == 0 and "Port 3: 0000 off" in off.stdout
    assert not json.loads(sim.ctl("status").stdout)["units"]["ftdi"]
    assert hubs.with_suffix(".log").read_text().splitlines() == [
        "1-1 port 3 plug ftdi", "1-1 port 3 plug ftdi", "1-1 port 3 unplug ftdi",
    ]  # fmt: skip
    wrong = uhubctl(hubs, "-l", "2-1", "-p", "3", "-a", "on")
    assert wrong.returncode == 1 and "No compatible devices" in wrong.stderr


def test_the_exporter_sees_each_hub_as_labgrid_matches_it(tmp_path: Path) -> None:
    hubs = [Hub(1, "/nonexistent", {3: "ftdi"}), Hub(2, "/nonexistent", {3: "ftdi"})]
    (tmp_path / "hubs.umockdev").write_text(describe(hubs))
    script = (
        "import pyudev, json; c = pyudev.Context(); print(json.dumps([("
        "d.sys_name, d.properties.get('ID_PATH'), d.find_parent('usb', 'usb_device').sys_name,"
        " d.find_parent('usb', 'usb_device').properties.get('BUSNUM'))"
        " for d in c.list_devices(subsystem='usb', DEVTYPE='usb_interface', DRIVER='hub')]))"
    )
    done = subprocess.run(
        ["umockdev-run", "-d", str(tmp_path / "hubs.umockdev"), "--", sys.executable, "-c",
         script], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = sorted(tuple(row) for row in json.loads(done.stdout))
    assert seen == [
        ("1-1:1.0", hubs[0].id_path, "1-1", "001"),
        ("2-1:1.0", hubs[1].id_path, "2-1", "002"),
    ]
