"""The real bench without the hardware: its config, and exactly what it would run or write."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from hwprov.errors import HwprovError

from lab.bench import I2CSlot
from lab.realbench import BenchConfigError, Power, RealBench, attach, parse_config

EXAMPLE = Path(__file__).resolve().parents[1] / "hil" / "benches" / "rpi4-lab.yaml"


class Recorder:
    def __init__(self) -> None:
        self.done: list[str] = []

    def run(self, argv: Sequence[str]) -> None:
        self.done.append("run " + " ".join(argv))

    def write(self, path: Path, text: str) -> None:
        self.done.append(f"write {path} {text}")

    def mkdir(self, path: Path) -> None:
        self.done.append(f"mkdir {path}")

    def rmdir(self, path: Path) -> None:
        self.done.append(f"rmdir {path}")


SETTLE = "run udevadm settle --timeout=10"


def test_the_documented_pi4_bench_parses() -> None:
    config = parse_config(EXAMPLE.read_text(), str(EXAMPLE))
    assert config.engine == "unix:///var/run/balena-engine.sock" and config.image == "alpine:3.20"
    assert config.i2c_slot == I2CSlot(1, 0x77, "bmp280")
    units = {u.unit.id: u for u in config.units}
    assert units["ftdi"].power == Power(hub="1-1", port=2)
    assert units["ftdi"].unit.nodes == ("/dev/ttyUSB0",) and not units["ftdi"].unit.at_boot
    assert units["gpio-sim"].power.gpio_sim == ("hil-bank", 8)
    assert units["bt-dongle"].unit.kind == "bluetooth"


def test_usb_units_switch_their_hub_port_then_wait_for_udev() -> None:
    r = Recorder()
    attach(Power(hub="1-1", port=2), r, True)
    attach(Power(hub="1-1", port=2), r, False)
    assert r.done == [
        "run uhubctl -l 1-1 -p 2 -a on", SETTLE,
        "run uhubctl -l 1-1 -p 2 -a off", SETTLE,
    ]  # fmt: skip


def test_i2c_chips_come_and_go_through_new_device() -> None:
    r = Recorder()
    bench = RealBench(parse_config(EXAMPLE.read_text(), "x"), r)
    bench.i2c_add(I2CSlot(1, 0x77, "bmp280"))
    bench.i2c_remove(I2CSlot(1, 0x77, "bmp280"))
    assert r.done == [
        "write /sys/bus/i2c/devices/i2c-1/new_device bmp280 0x77", SETTLE,
        "write /sys/bus/i2c/devices/i2c-1/delete_device 0x77", SETTLE,
    ]  # fmt: skip


def test_gpio_sim_chips_are_built_and_torn_down_in_configfs() -> None:
    r = Recorder()
    attach(Power(gpio_sim=("hil-bank", 8)), r, True)
    attach(Power(gpio_sim=("hil-bank", 8)), r, False)
    root = "/sys/kernel/config/gpio-sim/hil-bank"
    assert r.done == [
        f"mkdir {root}", f"mkdir {root}/bank0", f"write {root}/bank0/num_lines 8",
        f"write {root}/live 1", SETTLE,
        f"write {root}/live 0", f"rmdir {root}/bank0", f"rmdir {root}", SETTLE,
    ]  # fmt: skip


def test_rfkill_switches_are_found_by_name(tmp_path: Path) -> None:
    for index, name in ((0, "phy0"), (3, "hci1")):
        (tmp_path / f"rfkill{index}").mkdir()
        (tmp_path / f"rfkill{index}" / "name").write_text(name + "\n")
    r = Recorder()
    attach(Power(rfkill="hci1"), r, False, rfkill_root=tmp_path)
    assert r.done == ["run rfkill block 3", SETTLE]
    with pytest.raises(HwprovError, match="no rfkill switch named hci9"):
        attach(Power(rfkill="hci9"), r, True, rfkill_root=tmp_path)


def test_boot_puts_every_unit_in_its_boot_state() -> None:
    r = Recorder()
    RealBench(parse_config(EXAMPLE.read_text(), "x"), r).boot()
    assert [d for d in r.done if d != SETTLE][:2] == [
        "run uhubctl -l 1-1 -p 2 -a off",
        "run uhubctl -l 1-1 -p 3 -a off",
    ]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("bench: b\nengine: e\n", "image: is required"),
        ("bench: b\nengine: e\nimage: i\nunits: {}\n", "units: must be a mapping"),
        ("bench: b\nengine: e\nimage: i\nunits:\n  x: {kind: usb}\n", "kind must be one of"),
        ("bench: b\nengine: e\nimage: i\nunits:\n  x: {kind: serial}\n", "exactly one of"),
        (
            "bench: b\nengine: e\nimage: i\nunits:\n  x: {kind: serial, usb: {hub: '1-1'}}\n",
            "usb needs hub",
        ),
        (
            "bench: b\nengine: e\nimage: i\nunits:\n  x: {kind: i2c, i2c: {bus: 1}}\n",
            "needs bus, address and driver",
        ),
        ("bench: [\n", "not valid YAML"),
    ],
)
def test_a_broken_bench_file_names_the_entry(text: str, needle: str) -> None:
    with pytest.raises(BenchConfigError, match=needle) as err:
        parse_config(text, "lab.yaml")
    assert str(err.value).startswith("lab.yaml: ")
