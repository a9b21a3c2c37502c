"""Every fixture board under `hwprov scan --json`: what hwprov classifies is what the file declares.

Expectations come from the board's YAML (I2C buses and their chips, UARTs, gpiochips,
Bluetooth adapters), so a new fixture is covered as soon as it is added; each known board also
has one hand-written check of the feature it is there for.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

import pytest
from conftest import sim
from hwprov.sim.board import Board, BoardDevice, load_board
from hwprov.sim.paths import fixtures_dir

BOARDS = sorted(p.stem for p in fixtures_dir().glob("*.yaml"))
# The sensor models in agent/hwprov/sim/sensors.py, as the i2c plugin's signatures name them.
PROBED_AS = {"sht31": "sht3x"}
# (subsystem, named gpiochipN) of the nodes the gpio plugin offers: chips, gpiomem, /dev/mem
GPIO = {("gpio", True), ("bcm2835-gpiomem", False), ("mem", False)}


@functools.cache
def scan(board: str, kernel_only: bool = False) -> dict[str, dict]:
    """`hwprov scan --json` with every hot-pluggable unit plugged, in file order (once)."""
    b = load_board(board)
    plugs = [f"hwprov sim plug {u} >/dev/null" for u in b.units if not b.unit_devices(u)[0].plugged]
    out = sim(
        "sh",
        "-c",
        "; ".join([*plugs, "hwprov scan --json"]),
        board=board,
        extra=("--kernel-only",) if kernel_only else (),
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["problems"] == []
    return {h["name"]: h for h in doc["hardware"]}


def _has_usb_ancestor(board: Board, device: BoardDevice) -> bool:
    return any(
        d.devtype == "usb_device" and device.path.startswith(d.path + "/") for d in board.devices
    )


def expected(board: Board) -> dict[str, tuple[str, BoardDevice]]:
    """name -> (kind, device) for everything the file says hwprov should find."""
    out: dict[str, tuple[str, BoardDevice]] = {}
    for d in board.devices:
        name = d.path.rsplit("/", 1)[-1]
        if d.subsystem == "i2c-dev" and d.node:
            out[name] = ("i2c", d)
        elif d.subsystem == "tty" and d.node and not d.path.startswith("/devices/virtual/"):
            if d.attributes.get("type", "") != "0":  # 0 is PORT_UNKNOWN: no UART behind it
                out[name] = ("serial", d)
        elif d.node and (d.subsystem, name.startswith("gpiochip")) in GPIO:
            out[name] = ("gpio", d)
        elif d.subsystem == "bluetooth" and d.devtype == "host":
            out[name] = ("bluetooth", d)
    return out


@pytest.mark.parametrize("board", BOARDS)
def test_scan_classifies_what_the_board_file_declares(board: str) -> None:
    b = load_board(board)
    want = expected(b)
    hw = scan(board)
    assert {n: h["kind"] for n, h in hw.items()} == {n: kind for n, (kind, _) in want.items()}
    chips = {bus.bus: bus.chips for bus in b.i2c}
    for name, (kind, d) in want.items():
        h = hw[name]
        assert h["sys_path"] == f"/sys{d.path}", name
        if d.node:
            assert (h["node"], h["major"], h["minor"]) == (f"/dev/{d.node}", d.major, d.minor)
            assert sorted(h["links"]) == sorted(f"/dev/{link}" for link in d.links), name
        if kind == "i2c":
            bus = int(name.removeprefix("i2c-"))
            assert h["details"]["bus"] == str(bus)
            assert h["details"]["adapter"] == d.attributes.get("name")
            assert [(p["address"], p["model"], p["state"]) for p in h["probed"]] == [
                (f"0x{address:02x}", PROBED_AS.get(model, model), "identified")
                for address, model in chips.get(bus, ())
            ], name
        elif kind == "gpio":
            role = "gpiochip" if name.startswith("gpiochip") else name
            assert h["details"]["role"] == role
        elif kind == "bluetooth":
            assert h["details"]["bus"] == ("usb" if _has_usb_ancestor(b, d) else "uart")
        elif kind == "serial" and _has_usb_ancestor(b, d):
            by_id = [f"/dev/{link}" for link in d.links if link.startswith("serial/by-id/")]
            assert [h["details"]["by_id"]] == by_id, name


@pytest.mark.parametrize("board", BOARDS)
def test_identity_is_the_same_without_a_udev_database(board: str) -> None:
    with_db, kernel_only = scan(board), scan(board, kernel_only=True)
    assert {n: h["id"] for n, h in kernel_only.items()} == {n: h["id"] for n, h in with_db.items()}
    for name, h in kernel_only.items():
        assert h["links"] == [], name
        if "by_id" in with_db[name]["details"]:  # computed from sysfs as 60-serial.rules would
            assert h["details"]["by_id"] == with_db[name]["details"]["by_id"], name


def _rpi4b(hw: dict[str, dict]) -> None:
    assert hw["hci0"]["details"]["bus"] == "uart" and hw["ttyAMA0"]["links"] == ["/dev/serial1"]


def _x86_gateway(hw: dict[str, dict]) -> None:
    # serial8250 registers ttyS1..3 with no chip behind them (type 0): not serial ports
    assert not {"ttyS1", "ttyS2", "ttyS3"} & set(hw) and hw["ttyS0"]["kind"] == "serial"


def _rpi_zero2w(hw: dict[str, dict]) -> None:
    # the CYW43438 sits on the PL011 through serdev, which then registers no ttyAMA0
    hci0 = hw["hci0"]
    assert hci0["kind"] == "bluetooth" and hci0["details"]["bus"] == "uart"
    assert hci0["id"] == "bluetooth:/devices/platform/soc/3f201000.serial/serial0/serial0-0"
    assert "ttyAMA0" not in hw and hw["ttyS0"]["links"] == ["/dev/serial0"]


def _beaglebone_black(hw: dict[str, dict]) -> None:
    assert "/dev/ttyO0" in hw["ttyS0"]["links"]
    buses = {n: h for n, h in hw.items() if h["kind"] == "i2c"}
    assert sorted(buses) == ["i2c-0", "i2c-1", "i2c-2"]
    assert {h["details"]["adapter"] for h in buses.values()} == {"OMAP I2C adapter"}


def _jetson_nano(hw: dict[str, dict]) -> None:
    ths1 = hw["ttyTHS1"]
    assert ths1["kind"] == "serial" and (ths1["major"], ths1["minor"]) == (238, 1)
    assert ths1["id"] == "serial:/devices/70006040.serial/tty/ttyTHS1"
    buses = sorted(n for n, h in hw.items() if h["kind"] == "i2c")
    assert buses == ["i2c-0", "i2c-1", "i2c-4", "i2c-6", "i2c-7", "i2c-8"]
    assert hw["i2c-8"]["details"]["adapter"] == "i2c-6-mux (chan_id 1)"


SIGNATURES: dict[str, Callable[[dict[str, dict]], None]] = {
    "rpi4b": _rpi4b,
    "x86-gateway": _x86_gateway,
    "rpi-zero2w": _rpi_zero2w,
    "beaglebone-black": _beaglebone_black,
    "jetson-nano": _jetson_nano,
}


@pytest.mark.parametrize("board", sorted(SIGNATURES))
def test_each_board_shows_its_signature_feature(board: str) -> None:
    SIGNATURES[board](scan(board))
