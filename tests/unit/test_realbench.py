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
    """A runner that records what it is asked, over a pretend filesystem: what was made or
    written exists (configfs makes a gadget's and a chip's attribute files on mkdir)."""

    def __init__(self) -> None:
        self.done: list[str] = []
        self.files: dict[Path, str] = {}

    def run(self, argv: Sequence[str]) -> None:
        self.done.append("run " + " ".join(argv))

    def write(self, path: Path, text: str) -> None:
        self.done.append(f"write {path} {text}")
        self.files[path] = text

    def mkdir(self, path: Path) -> None:
        self.done.append(f"mkdir {path}")
        self.files[path] = ""
        if path.parent.name == "gpio-sim":
            self.files[path / "live"] = "0"
        if path.parent.name == "usb_gadget":
            self.files[path / "UDC"] = ""

    def rmdir(self, path: Path) -> None:
        self.done.append(f"rmdir {path}")
        self.files = {p: t for p, t in self.files.items() if path not in (p, *p.parents)}

    def symlink(self, path: Path, target: Path) -> None:
        self.done.append(f"symlink {path} -> {target}")
        self.files[path] = ""

    def read(self, path: Path) -> str:
        return self.files[path]

    def exists(self, path: Path) -> bool:
        return path in self.files

    def hold(self, path: Path, first: bytes) -> None:
        self.done.append(f"hold {path} {first.hex()}")

    def release(self, path: Path) -> None:
        self.done.append(f"release {path}")


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


KERNEL_BENCH = Path(__file__).resolve().parents[2] / "hw-fixtures" / "benches" / "kernel-q35.yaml"
GADGETS = Path("/sys/kernel/config/usb_gadget")


def test_the_kernel_benchs_board_parses_with_its_gadgets_vhci_and_stub_chip() -> None:
    config = parse_config(KERNEL_BENCH.read_text(), str(KERNEL_BENCH))
    units = {u.unit.id: u for u in config.units}
    ftdi = units["ftdi"].power.gadget
    assert ftdi is not None and (ftdi.vendor, ftdi.product, ftdi.bcd_device) == (
        0x0403, 0x6001, 0x0600,
    )  # fmt: skip
    assert units["ftdi"].sysfs == "/sys/devices/platform/dummy_hcd.0"
    # Each USB unit on its own UDC: a storm plugs them all at once.
    udcs = [u.power.gadget.udc for u in config.units if u.power.gadget is not None]
    assert len(udcs) == len(set(udcs)) == 3
    assert units["vhci-bt"].power.vhci and units["vhci-bt"].unit.kind == "bluetooth"
    assert config.i2c_slot == I2CSlot(1, 0x76, "bme280")
    assert config.i2c_registers == ((0xD0, 0x60),)


def test_a_usb_gadget_is_built_once_then_plugged_by_binding_its_udc() -> None:
    config = parse_config(KERNEL_BENCH.read_text(), "x")
    power = next(u.power for u in config.units if u.unit.id == "ftdi")
    r = Recorder()
    attach(power, r, True)
    root = GADGETS / "ftdi"
    assert r.done[:4] == [
        f"mkdir {root}", f"write {root}/idVendor 0x0403", f"write {root}/idProduct 0x6001",
        f"write {root}/bcdDevice 0x0600",
    ]  # fmt: skip
    assert f"symlink {root}/configs/c.1/gser.ftdi -> {root}/functions/gser.ftdi" in r.done
    assert r.done[-2:] == [f"write {root}/UDC dummy_udc.0", SETTLE]
    r.done.clear()
    attach(power, r, True)  # plugged already: binding twice would be EBUSY
    assert r.done == [SETTLE]
    attach(power, r, False)
    attach(power, r, False)  # unplugged already: nothing to write
    assert r.done == [SETTLE, f"write {root}/UDC \n", SETTLE, SETTLE]


def test_a_vhci_controller_lives_while_the_bench_holds_dev_vhci() -> None:
    r = Recorder()
    attach(Power(vhci=True), r, True)
    attach(Power(vhci=True), r, False)
    assert r.done == ["hold /dev/vhci ff00", SETTLE, "release /dev/vhci", SETTLE]


def test_a_stub_chip_gets_its_registers_before_new_device_and_loses_them_after() -> None:
    config = parse_config(KERNEL_BENCH.read_text(), "x")
    r = Recorder()
    bench = RealBench(config, r)
    slot = I2CSlot(1, 0x76, "bme280")
    bench.i2c_add(slot)
    r.files[Path("/sys/bus/i2c/devices/1-0076")] = ""  # the kernel made the client
    bench.i2c_remove(slot)
    assert r.done == [
        "run i2cset -y 1 0x76 0xd0 0x60 b",
        "write /sys/bus/i2c/devices/i2c-1/new_device bme280 0x76", SETTLE,
        "write /sys/bus/i2c/devices/i2c-1/delete_device 0x76",
        "run i2cset -y 1 0x76 0xd0 0 b", SETTLE,
    ]  # fmt: skip


def test_a_units_nodes_are_read_below_its_sysfs_root(tmp_path: Path) -> None:
    from lab.realbench import nodes_under

    sys_root = tmp_path / "sys"
    tty_class = sys_root / "class" / "tty"
    tty_class.mkdir(parents=True)
    dev = tmp_path / "dev"
    dev.mkdir()
    port = sys_root / "devices" / "dummy_hcd.1" / "usb2" / "2-1" / "2-1:1.0"
    for name, subsystem in (("ttyUSB1", tty_class), ("ignored", sys_root / "class" / "usb")):
        folder = port / name / "tty" / name
        folder.mkdir(parents=True)
        (folder / "uevent").write_text(f"MAJOR=188\nMINOR=1\nDEVNAME={name}\n")
        (folder / "dev").write_text("188:1\n")
        subsystem.mkdir(parents=True, exist_ok=True)
        (folder / "subsystem").symlink_to(subsystem)
    # Not yet in /dev (udev has not made it): waited for, then reported only once it is.
    root = sys_root / "devices" / "dummy_hcd.1"
    assert nodes_under(root, ("tty",), 0.0, dev) == []
    (dev / "ttyUSB1").touch()
    assert nodes_under(root, ("tty",), 1.0, dev) == ["/dev/ttyUSB1"]
