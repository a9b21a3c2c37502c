"""Board descriptions: the fixtures load, broken ones name the file and the entry."""

from __future__ import annotations

import pytest
from hwprov.errors import BoardError
from hwprov.sim.board import enumerate_unit, load_board, parse_board
from hwprov.sim.paths import fixtures_dir
from hwprov.sim.realnodes import host_char_majors, remap_majors
from hwprov.sim.sensors import MODELS, SHT3x, WordRegisterChip

HEAD = "board: b\nname: B\nprovenance: p\n"
DEVICE = "devices:\n  - path: /devices/x\n    subsystem: tty\n"


@pytest.mark.parametrize("path", sorted(fixtures_dir().glob("*.yaml")), ids=lambda p: p.stem)
def test_fixture_boards_load_with_provenance(path) -> None:
    board = load_board(str(path))
    assert board.provenance.strip() and board.devices and board.board == path.stem


@pytest.mark.parametrize(
    ("text", "entry", "needle"),
    [
        ("board: [x\n", "line 2, column 1", "not valid YAML"),
        (HEAD + DEVICE + f"    properties: {{X: '{'y' * 3000}'}}\n", "devices[0]", "UEVENT_BUFFER"),
        ("name: B\nprovenance: p\n" + DEVICE, "board", "required"),
        (HEAD + "devices: []\n", "devices", "non-empty"),
        (
            HEAD + "devices:\n  - path: /sys/x\n    subsystem: tty\n",
            "devices[0]",
            "under /devices/",
        ),
        (
            HEAD + "devices:\n  - path: /devices/../x\n    subsystem: tty\n",
            "devices[0]",
            "/devices/",
        ),
        (HEAD + DEVICE + "    node: ttyX\n    dev: '4'\n", "devices[0]", "MAJOR:MINOR"),
        (HEAD + DEVICE + "    node: /dev/ttyX\n    dev: '4:1'\n", "devices[0]", "relative"),
        (HEAD + DEVICE + "    colour: red\n", "devices[0]", "unknown keys"),
        (HEAD + DEVICE + "i2c:\n  - bus: 1\n", "i2c[0]", "no device has node i2c-1"),
        (HEAD + DEVICE + DEVICE.split("\n", 1)[1], "/devices/x", "listed twice"),
        (HEAD + "consoles: 99\n" + DEVICE, "consoles", "0 to 64"),
    ],
)
def test_broken_boards_name_the_entry(text: str, entry: str, needle: str) -> None:
    with pytest.raises(BoardError) as err:
        parse_board(text, "bad.yaml")
    assert err.value.source == "bad.yaml" and err.value.entry == entry
    assert needle in err.value.message


def test_unknown_sensor_model_is_named() -> None:
    text = (
        HEAD + "devices:\n  - path: /devices/i\n    subsystem: i2c-dev\n    node: i2c-1\n"
        "    dev: '89:1'\ni2c:\n  - bus: 1\n    chips: {0x76: bme999}\n"
    )
    with pytest.raises(BoardError, match="unknown model 'bme999'"):
        parse_board(text, "bad.yaml")


def test_units_bring_their_subtree_parents_first() -> None:
    board = load_board("x86-gateway")
    ftdi = board.unit_devices("ftdi")
    assert [d.subsystem for d in ftdi] == ["usb", "usb", "usb-serial", "tty"]
    assert "ftdi" not in {d.unit for d in board.boot_devices() if d.unit}


def test_a_plugged_unit_takes_the_lowest_free_tty_and_the_next_usb_number() -> None:
    board = load_board("x86-gateway")
    last: dict[int, int] = {}
    first = enumerate_unit(board.unit_devices("ftdi"), {"ttyS0"}, last)
    tty = first[-1]
    assert (tty.node, tty.major, tty.minor) == ("ttyUSB0", 188, 0)
    assert first[0].node == "bus/usb/001/003" and first[0].properties["DEVNUM"] == "003"

    # ttyUSB0 held by another adapter: the same FTDI comes back as ttyUSB1, minor 1, with
    # its sysfs directory renamed too, and the next device number on the bus.
    again = enumerate_unit(board.unit_devices("ftdi"), {"ttyUSB0", "bus/usb/001/003"}, last)
    tty = again[-1]
    assert (tty.node, tty.minor) == ("ttyUSB1", 1)
    assert tty.path.endswith("/1-2:1.0/ttyUSB1/tty/ttyUSB1")
    assert again[2].path.endswith("/1-2:1.0/ttyUSB1")
    assert again[0].node == "bus/usb/001/004" and again[0].minor == 3
    assert again[0].attributes["devnum"] == "4"
    # Stable names do not move: that is what they are for.
    assert tty.links == first[-1].links and tty.udev == first[-1].udev


PROC = "Character devices:\n  1 mem\n  4 tty\n254 ndctl\n\nBlock devices:\n  8 sd\n"


def test_majors_with_a_host_driver_are_remapped_to_free_ones() -> None:
    host = host_char_majors(PROC)
    assert host == {1, 4, 254}
    remap = remap_majors([1, 4, 89, 188, 254, 511], host)
    assert remap[89] == 89 and remap[188] == 188 and remap[511] == 511
    moved = {remap[1], remap[4], remap[254]}
    assert len(moved) == 3 and not moved & (host | {89, 188, 511})


def test_sensor_models_answer_like_their_datasheets() -> None:
    bme = MODELS["bme280"]()
    bme.write(bytes([0xD0]))
    assert bme.read(1) == b"\x60"
    mcp = MODELS["mcp9808"]()
    assert isinstance(mcp, WordRegisterChip)
    mcp.write(bytes([6]))
    assert mcp.read(2) == b"\x00\x54"
    sht = SHT3x()
    sht.write(bytes([0xF3, 0x2D]))
    assert sht.read(3)[:2] == b"\x80\x10"
