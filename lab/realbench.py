"""The real bench: a board in a hardware lab, driven the standard ways labs do.

- USB devices by hub port power (`uhubctl -l <hub> -p <port> -a on|off`, needs a hub with
  per-port power switching);
- I2C chips through the kernel's `new_device` / `delete_device` (the chip must be wired;
  the kernel announces a client device, which is hwprov's cue to probe the bus again);
- GPIO chips with the gpio-sim module through configfs (kernel 5.19+);
- Bluetooth adapters by power (a USB dongle on a switchable port) or rfkill.

Two more ways stand in for those where the kernel's own test drivers do the hardware's part
(the kernel bench, lab/kernelbench.py, and any lab host with the modules):

- USB devices as configfs gadgets on a dummy_hcd UDC (`usb_gadget`): the host side of the loop
  enumerates a real USB device, and real drivers (ftdi_sio, cdc_acm) bind to it;
- Bluetooth controllers from hci_vhci (`vhci`): a controller lives as long as /dev/vhci is
  held open.

The bench is described by a YAML file (docs/hil.md); every action is a command or a sysfs
write made through a `Runner`, so what would run is testable without the hardware, and the
same bench drives a board it does not run on (the kernel bench's guest) through another one.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml
from hwprov.errors import HwprovError

from lab.bench import I2CSlot, SharedFiles, Unit

KINDS = ("serial", "i2c", "gpio", "bluetooth")
# The subsystems of the nodes a unit of each kind brings (as the built-in plugins classify).
NODE_SUBSYSTEMS = {"serial": ("tty",), "i2c": ("i2c-dev",), "gpio": ("gpio",), "bluetooth": ()}
GPIO_SIM = Path("/sys/kernel/config/gpio-sim")
USB_GADGET = Path("/sys/kernel/config/usb_gadget")
VHCI = Path("/dev/vhci")
# HCI vendor packet, "create a primary controller": hci_vhci registers hciN on it.
VHCI_CREATE = bytes([0xFF, 0x00])
I2C_DEVICES = Path("/sys/bus/i2c/devices")
RFKILL = Path("/sys/class/rfkill")


class BenchConfigError(HwprovError):
    def __init__(self, source: str, where: str, problem: str) -> None:
        super().__init__(f"{source}: {where}: {problem}")


@dataclass(frozen=True, slots=True)
class Gadget:
    """A USB device made by the kernel's gadget framework, bound to a UDC to plug it."""

    name: str  # the configfs gadget's folder
    udc: str  # e.g. dummy_udc.0
    vendor: int
    product: int
    function: str  # "gser" (a vendor-class serial port: ftdi_sio takes it) or "acm"
    serial: str
    manufacturer: str = ""
    product_name: str = ""
    bcd_device: int | None = None  # ftdi_sio tells an FT232R by bcdDevice 0x0600


@dataclass(frozen=True, slots=True)
class Power:
    """How a unit is attached and detached; exactly one way per unit."""

    hub: str | None = None  # uhubctl location, e.g. "1-1"
    port: int | None = None
    i2c: I2CSlot | None = None  # new_device / delete_device on this bus
    gpio_sim: tuple[str, int] | None = None  # (chip name, number of lines)
    rfkill: str | None = None  # the rfkill name, e.g. hci1
    gadget: Gadget | None = None
    vhci: bool = False


@dataclass(frozen=True, slots=True)
class RealUnit:
    unit: Unit
    power: Power
    # Where its devices appear in sysfs (a hub port's, a UDC's root hub): its nodes are read
    # there after a plug, so a unit the kernel numbered differently (ttyUSB1) reports that.
    sysfs: str | None = None


@dataclass(frozen=True, slots=True)
class BenchConfig:
    bench: str
    engine: str
    image: str
    units: tuple[RealUnit, ...]
    i2c_slot: I2CSlot | None = None  # where the "sensor appears" scenario adds a chip
    # Registers to set on an i2c-stub chip before new_device, and to clear after
    # delete_device: a stub answers at its address all along, and only these make it the
    # model the driver (and hwprov's probe) recognises.
    i2c_registers: tuple[tuple[int, int], ...] = ()
    # The engine as the commands on the board reach it, when the tests reach it another way
    # (the kernel bench's guest: a unix socket inside, a forwarded port outside).
    device_engine: str | None = None


def _int(value: Any, source: str, where: str) -> int:
    try:
        return value if isinstance(value, int) else int(str(value), 0)
    except ValueError:
        raise BenchConfigError(source, where, f"expected a number, got {value!r}") from None


def _slot(raw: Any, source: str, where: str) -> I2CSlot:
    if not isinstance(raw, dict) or not {"bus", "address", "driver"} <= set(raw):
        raise BenchConfigError(source, where, "needs bus, address and driver")
    return I2CSlot(_int(raw["bus"], source, where), _int(raw["address"], source, where),
                   str(raw["driver"]))  # fmt: skip


WAYS = ("usb", "i2c", "gpio_sim", "rfkill", "usb_gadget", "vhci")


def _gadget(raw: Any, source: str, where: str) -> Gadget:
    need = {"name", "udc", "vendor", "product", "function", "serial"}
    if not isinstance(raw, dict) or not need <= set(raw):
        raise BenchConfigError(source, where, f"usb_gadget needs {', '.join(sorted(need))}")
    if raw["function"] not in ("gser", "acm"):
        raise BenchConfigError(source, where, "usb_gadget function must be gser or acm")
    bcd = raw.get("bcd_device")
    return Gadget(
        str(raw["name"]), str(raw["udc"]), _int(raw["vendor"], source, where),
        _int(raw["product"], source, where), str(raw["function"]), str(raw["serial"]),
        str(raw.get("manufacturer", "")), str(raw.get("product_name", "")),
        None if bcd is None else _int(bcd, source, where),
    )  # fmt: skip


def _power(raw: Mapping[str, Any], source: str, where: str) -> Power:
    ways = [k for k in WAYS if k in raw]
    if len(ways) != 1:
        raise BenchConfigError(source, where, f"give exactly one of {', '.join(WAYS)}")
    way = ways[0]
    value = raw[way]
    if way == "usb_gadget":
        return Power(gadget=_gadget(value, source, where))
    if way == "vhci":
        return Power(vhci=bool(value))
    if way == "usb":
        if not isinstance(value, dict) or "hub" not in value or "port" not in value:
            raise BenchConfigError(source, where, "usb needs hub (e.g. '1-1') and port")
        return Power(hub=str(value["hub"]), port=_int(value["port"], source, where))
    if way == "i2c":
        return Power(i2c=_slot(value, source, where))
    if way == "gpio_sim":
        if not isinstance(value, dict) or "name" not in value:
            raise BenchConfigError(source, where, "gpio_sim needs name (and lines)")
        return Power(gpio_sim=(str(value["name"]), _int(value.get("lines", 8), source, where)))
    return Power(rfkill=str(value))


def parse_config(text: str, source: str) -> BenchConfig:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise BenchConfigError(source, "file", f"not valid YAML: {err}") from None
    if not isinstance(doc, dict):
        raise BenchConfigError(source, "top", "expected a mapping")
    for key in ("bench", "engine", "image"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise BenchConfigError(source, key, "is required")
    raw_units = doc.get("units")
    if not isinstance(raw_units, dict) or not raw_units:
        raise BenchConfigError(source, "units", "must be a mapping of unit ids")
    units = []
    for uid, raw in raw_units.items():
        where = f"units.{uid}"
        if not isinstance(raw, dict):
            raise BenchConfigError(source, where, "must be a mapping")
        kind = raw.get("kind")
        if kind not in KINDS:
            raise BenchConfigError(source, where, f"kind must be one of {', '.join(KINDS)}")
        nodes = raw.get("nodes") or []
        if not isinstance(nodes, list) or not all(str(n).startswith("/dev/") for n in nodes):
            raise BenchConfigError(source, where, "nodes must be a list of /dev paths")
        unit = Unit(str(uid), kind, tuple(map(str, nodes)), bool(raw.get("at_boot", False)))
        sysfs = raw.get("sysfs")
        if sysfs is not None and not str(sysfs).startswith("/sys/"):
            raise BenchConfigError(source, where, "sysfs must be a path under /sys")
        units.append(RealUnit(unit, _power(raw, source, where), sysfs and str(sysfs)))
    slot = _slot(doc["i2c_slot"], source, "i2c_slot") if "i2c_slot" in doc else None
    registers = ()
    if slot is not None:
        raw_registers = doc["i2c_slot"].get("stub_registers") or {}
        if not isinstance(raw_registers, dict):
            raise BenchConfigError(source, "i2c_slot", "stub_registers must map register: value")
        registers = tuple(
            (_int(k, source, "i2c_slot"), _int(v, source, "i2c_slot"))
            for k, v in raw_registers.items()
        )
    device_engine = doc.get("device_engine")
    return BenchConfig(
        doc["bench"], doc["engine"], doc["image"], tuple(units), slot, registers,
        str(device_engine) if device_engine else None,
    )  # fmt: skip


class Runner(Protocol):
    """Where the bench's actions happen: here (`SystemRunner`) or on a machine the tests do
    not run on (lab/kernelbench.py's guest)."""

    def run(self, argv: Sequence[str]) -> None: ...

    def write(self, path: Path, text: str) -> None: ...

    def mkdir(self, path: Path) -> None: ...

    def rmdir(self, path: Path) -> None: ...

    def symlink(self, path: Path, target: Path) -> None: ...

    def read(self, path: Path) -> str: ...

    def exists(self, path: Path) -> bool: ...

    def hold(self, path: Path, first: bytes) -> None:
        """Open `path`, write `first`, and keep it open until `release`."""
        ...

    def release(self, path: Path) -> None: ...

    def nodes_under(self, root: Path, subsystems: tuple[str, ...], wait_s: float) -> list[str]:
        """`nodes_under` where the runner runs."""
        ...

    def rdev(self, node: str) -> str: ...

    def capture(
        self, argv: Sequence[str], env: Mapping[str, str]
    ) -> subprocess.CompletedProcess[str]: ...

    def spawn(
        self, argv: Sequence[str], env: Mapping[str, str], stderr: int | None
    ) -> subprocess.Popen[str]: ...


def nodes_under(
    root: Path, subsystems: tuple[str, ...], wait_s: float = 0.0, dev: Path = Path("/dev")
) -> list[str]:
    """The /dev nodes of devices below `root` in sysfs whose subsystem is one of `subsystems`,
    waited for (up to `wait_s`) until there is at least one and each exists in /dev: after a
    plug the kernel enumerates a USB device asynchronously, and `udevadm settle` may return
    before it has even started."""
    deadline = time.monotonic() + wait_s
    while True:
        found = []
        for folder, _, files in os.walk(root):
            if "uevent" not in files or "dev" not in files:
                continue
            subsystem = os.path.basename(os.path.realpath(os.path.join(folder, "subsystem")))
            if subsystem not in subsystems:
                continue
            try:
                text = Path(folder, "uevent").read_text()
            except OSError:
                continue
            name = next((ln[8:] for ln in text.splitlines() if ln.startswith("DEVNAME=")), "")
            if name:
                found.append(f"/dev/{name}")
        made = [n for n in found if (dev / n.removeprefix("/dev/")).exists()]
        if (found and made == found) or time.monotonic() > deadline:
            return sorted(made)
        time.sleep(0.05)


class SystemRunner:
    """Does it for real, here."""

    def __init__(self) -> None:
        self._held: dict[Path, Any] = {}

    def run(self, argv: Sequence[str]) -> None:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise HwprovError(f"{' '.join(argv)} failed: {done.stderr.strip()}")

    def write(self, path: Path, text: str) -> None:
        try:
            path.write_text(text)
        except OSError as err:
            raise HwprovError(f"cannot write {text!r} to {path}: {err.strerror}") from err

    def mkdir(self, path: Path) -> None:
        path.mkdir(exist_ok=True)

    def rmdir(self, path: Path) -> None:
        path.rmdir()

    def symlink(self, path: Path, target: Path) -> None:
        if not path.is_symlink():
            path.symlink_to(target)

    def read(self, path: Path) -> str:
        return path.read_text()

    def exists(self, path: Path) -> bool:
        return path.exists()

    def hold(self, path: Path, first: bytes) -> None:
        if path not in self._held:
            handle = path.open("r+b", buffering=0)
            handle.write(first)
            self._held[path] = handle

    def release(self, path: Path) -> None:
        held = self._held.pop(path, None)
        if held is not None:
            held.close()

    def nodes_under(self, root: Path, subsystems: tuple[str, ...], wait_s: float) -> list[str]:
        return nodes_under(root, subsystems, wait_s)

    def rdev(self, node: str) -> str:
        rdev = os.stat(node).st_rdev
        return f"{os.major(rdev)}:{os.minor(rdev)}"

    def capture(
        self, argv: Sequence[str], env: Mapping[str, str]
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv), env={**os.environ, **env}, capture_output=True, text=True, timeout=120
        )

    def spawn(
        self, argv: Sequence[str], env: Mapping[str, str], stderr: int | None
    ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            list(argv), env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=stderr,
            text=True,
        )  # fmt: skip


def rfkill_index(name: str, root: Path = RFKILL) -> str:
    for entry in sorted(root.glob("rfkill*")):
        if (entry / "name").read_text().strip() == name:
            return entry.name.removeprefix("rfkill")
    raise HwprovError(f"no rfkill switch named {name} under {root}")


def gadget_on(gadget: Gadget, runner: Runner) -> None:
    """Build the gadget in configfs (once) and bind it to its UDC: the host side enumerates."""
    root = USB_GADGET / gadget.name
    function = f"{gadget.function}.{gadget.name}"
    if not runner.exists(root):
        runner.mkdir(root)
        runner.write(root / "idVendor", f"0x{gadget.vendor:04x}")
        runner.write(root / "idProduct", f"0x{gadget.product:04x}")
        if gadget.bcd_device is not None:
            runner.write(root / "bcdDevice", f"0x{gadget.bcd_device:04x}")
        runner.mkdir(root / "strings")
        runner.mkdir(root / "strings" / "0x409")
        for name, value in (("serialnumber", gadget.serial), ("manufacturer",
                            gadget.manufacturer), ("product", gadget.product_name)):  # fmt: skip
            if value:
                runner.write(root / "strings" / "0x409" / name, value)
        runner.mkdir(root / "configs")
        runner.mkdir(root / "configs" / "c.1")
        runner.mkdir(root / "functions")
        runner.mkdir(root / "functions" / function)
        runner.symlink(root / "configs" / "c.1" / function, root / "functions" / function)
    if runner.read(root / "UDC").strip() != gadget.udc:  # bound twice is EBUSY
        runner.write(root / "UDC", gadget.udc)


def attach(power: Power, runner: Runner, on: bool, rfkill_root: Path = RFKILL) -> None:
    """Attach (on) or detach one unit."""
    if power.gadget is not None:
        if on:
            gadget_on(power.gadget, runner)
        else:
            udc = USB_GADGET / power.gadget.name / "UDC"
            # Unbound already: the write fails (ENODEV) where there is nothing to unplug.
            if runner.exists(udc) and runner.read(udc).strip():
                runner.write(udc, "\n")  # an empty write is no write at all
    elif power.vhci:
        if on:
            runner.hold(VHCI, VHCI_CREATE)
        else:
            runner.release(VHCI)
    elif power.hub is not None:
        runner.run(["uhubctl", "-l", power.hub, "-p", str(power.port), "-a", "on" if on else "off"])
    elif power.i2c is not None:
        i2c_attach(power.i2c, (), runner, on)
    elif power.gpio_sim is not None:
        name, lines = power.gpio_sim
        chip = GPIO_SIM / name
        live = runner.exists(chip / "live") and runner.read(chip / "live").strip() == "1"
        if on and not live:
            runner.mkdir(chip)
            runner.mkdir(chip / "bank0")
            runner.write(chip / "bank0" / "num_lines", str(lines))
            runner.write(chip / "live", "1")
        elif not on and runner.exists(chip):
            if live:
                runner.write(chip / "live", "0")
            runner.rmdir(chip / "bank0")
            runner.rmdir(chip)
    elif power.rfkill is not None:
        index = rfkill_index(power.rfkill, rfkill_root)
        runner.run(["rfkill", "unblock" if on else "block", index])
    runner.run(["udevadm", "settle", "--timeout=10"])


def i2c_attach(
    slot: I2CSlot, registers: tuple[tuple[int, int], ...], runner: Runner, on: bool
) -> None:
    bus = I2C_DEVICES / f"i2c-{slot.bus}"
    client = I2C_DEVICES / f"{slot.bus}-{slot.address:04x}"
    address = f"0x{slot.address:02x}"
    if on:
        for register, value in registers:  # i2cset before a driver claims the address
            runner.run(["i2cset", "-y", str(slot.bus), address, f"0x{register:02x}",
                        f"0x{value:02x}", "b"])  # fmt: skip
        runner.write(bus / "new_device", f"{slot.model} {address}")
    else:
        if not registers or runner.exists(client):
            runner.write(bus / "delete_device", address)
        for register, _ in registers:
            runner.run(["i2cset", "-y", str(slot.bus), address, f"0x{register:02x}", "0", "b"])


class RealBench(SharedFiles):
    def __init__(self, config: BenchConfig, runner: Runner | None = None) -> None:
        self.config = config
        self.name = f"real:{config.bench}"
        self.engine_url = config.engine
        self.runner = runner or SystemRunner()
        self._units = {u.unit.id: u for u in config.units}
        self.compose_argv: tuple[str, ...] = ()
        self.networked = True

    def units(self) -> Mapping[str, Unit]:
        return {uid: u.unit for uid, u in self._units.items()}

    def i2c_slot(self) -> I2CSlot | None:
        return self.config.i2c_slot

    def boot(self, all_attached: bool = False) -> None:
        """Back to the boot state: units attached at boot on, the others off."""
        for u in self._units.values():
            attach(u.power, self.runner, all_attached or u.unit.at_boot)
        if self.config.i2c_slot is not None and self.config.i2c_registers:
            self.i2c_remove(self.config.i2c_slot)  # a chip a scenario added is gone at boot

    def shutdown(self) -> None:
        self.boot()

    def plug(self, unit: str) -> list[str]:
        real = self._units[unit]
        attach(real.power, self.runner, True)
        # The kernel may have numbered it differently (ttyUSB1): report what exists now.
        if real.sysfs is not None:
            subsystems = NODE_SUBSYSTEMS[real.unit.kind]
            return self.runner.nodes_under(Path(real.sysfs), subsystems, 15.0)
        if real.power.gpio_sim is not None:
            chip = GPIO_SIM / real.power.gpio_sim[0] / "bank0" / "chip_name"
            return [f"/dev/{self.runner.read(chip).strip()}"]
        exists = [n for n in real.unit.nodes if self.runner.exists(Path(n))]
        return exists or list(real.unit.nodes)

    def unplug(self, unit: str) -> None:
        attach(self._units[unit].power, self.runner, False)

    def i2c_add(self, slot: I2CSlot) -> None:
        i2c_attach(slot, self.config.i2c_registers, self.runner, True)
        self.runner.run(["udevadm", "settle", "--timeout=10"])

    def i2c_remove(self, slot: I2CSlot) -> None:
        i2c_attach(slot, self.config.i2c_registers, self.runner, False)
        self.runner.run(["udevadm", "settle", "--timeout=10"])

    def _env(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.config.device_engine or self.engine_url}

    def spawn(self, argv: Sequence[str], stderr: int | None = None) -> subprocess.Popen[str]:
        return self.runner.spawn(argv, self._env(), stderr)

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return self.runner.capture(argv, self._env())

    def engine_numbers(self, node: str) -> str:
        deadline = time.monotonic() + 5
        while True:
            try:
                return self.runner.rdev(node)
            except (FileNotFoundError, HwprovError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
