"""The real bench: a board in a hardware lab, driven the standard ways labs do.

- USB devices by hub port power (`uhubctl -l <hub> -p <port> -a on|off`, needs a hub with
  per-port power switching);
- I2C chips through the kernel's `new_device` / `delete_device` (the chip must be wired;
  the kernel announces a client device, which is hwprov's cue to probe the bus again);
- GPIO chips with the gpio-sim module through configfs (kernel 5.19+);
- Bluetooth adapters by power (a USB dongle on a switchable port) or rfkill.

The bench is described by a YAML file (docs/hil.md); every action is a command or a sysfs
write made through a `Runner`, so what would run is testable without the hardware.
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

from lab.bench import I2CSlot, Unit

KINDS = ("serial", "i2c", "gpio", "bluetooth")
GPIO_SIM = Path("/sys/kernel/config/gpio-sim")
I2C_DEVICES = Path("/sys/bus/i2c/devices")
RFKILL = Path("/sys/class/rfkill")


class BenchConfigError(HwprovError):
    def __init__(self, source: str, where: str, problem: str) -> None:
        super().__init__(f"{source}: {where}: {problem}")


@dataclass(frozen=True, slots=True)
class Power:
    """How a unit is attached and detached; exactly one way per unit."""

    hub: str | None = None  # uhubctl location, e.g. "1-1"
    port: int | None = None
    i2c: I2CSlot | None = None  # new_device / delete_device on this bus
    gpio_sim: tuple[str, int] | None = None  # (chip name, number of lines)
    rfkill: str | None = None  # the rfkill name, e.g. hci1


@dataclass(frozen=True, slots=True)
class RealUnit:
    unit: Unit
    power: Power


@dataclass(frozen=True, slots=True)
class BenchConfig:
    bench: str
    engine: str
    image: str
    units: tuple[RealUnit, ...]
    i2c_slot: I2CSlot | None = None  # where the "sensor appears" scenario adds a chip


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


def _power(raw: Mapping[str, Any], source: str, where: str) -> Power:
    ways = [k for k in ("usb", "i2c", "gpio_sim", "rfkill") if k in raw]
    if len(ways) != 1:
        raise BenchConfigError(source, where, "give exactly one of usb, i2c, gpio_sim, rfkill")
    way = ways[0]
    value = raw[way]
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
        units.append(RealUnit(unit, _power(raw, source, where)))
    slot = _slot(doc["i2c_slot"], source, "i2c_slot") if "i2c_slot" in doc else None
    return BenchConfig(doc["bench"], doc["engine"], doc["image"], tuple(units), slot)


class Runner(Protocol):
    def run(self, argv: Sequence[str]) -> None: ...

    def write(self, path: Path, text: str) -> None: ...

    def mkdir(self, path: Path) -> None: ...

    def rmdir(self, path: Path) -> None: ...


class SystemRunner:
    """Does it for real."""

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


def rfkill_index(name: str, root: Path = RFKILL) -> str:
    for entry in sorted(root.glob("rfkill*")):
        if (entry / "name").read_text().strip() == name:
            return entry.name.removeprefix("rfkill")
    raise HwprovError(f"no rfkill switch named {name} under {root}")


def attach(power: Power, runner: Runner, on: bool, rfkill_root: Path = RFKILL) -> None:
    """Attach (on) or detach one unit."""
    if power.hub is not None:
        runner.run(["uhubctl", "-l", power.hub, "-p", str(power.port), "-a", "on" if on else "off"])
    elif power.i2c is not None:
        bus = I2C_DEVICES / f"i2c-{power.i2c.bus}"
        if on:
            runner.write(bus / "new_device", f"{power.i2c.model} 0x{power.i2c.address:02x}")
        else:
            runner.write(bus / "delete_device", f"0x{power.i2c.address:02x}")
    elif power.gpio_sim is not None:
        name, lines = power.gpio_sim
        chip = GPIO_SIM / name
        if on:
            runner.mkdir(chip)
            runner.mkdir(chip / "bank0")
            runner.write(chip / "bank0" / "num_lines", str(lines))
            runner.write(chip / "live", "1")
        else:
            runner.write(chip / "live", "0")
            runner.rmdir(chip / "bank0")
            runner.rmdir(chip)
    elif power.rfkill is not None:
        index = rfkill_index(power.rfkill, rfkill_root)
        runner.run(["rfkill", "unblock" if on else "block", index])
    runner.run(["udevadm", "settle", "--timeout=10"])


class RealBench:
    def __init__(self, config: BenchConfig, runner: Runner | None = None) -> None:
        self.config = config
        self.name = f"real:{config.bench}"
        self.engine_url = config.engine
        self.runner = runner or SystemRunner()
        self._units = {u.unit.id: u for u in config.units}

    def units(self) -> Mapping[str, Unit]:
        return {uid: u.unit for uid, u in self._units.items()}

    def i2c_slot(self) -> I2CSlot | None:
        return self.config.i2c_slot

    def boot(self, all_attached: bool = False) -> None:
        """Back to the boot state: units attached at boot on, the others off."""
        for u in self._units.values():
            attach(u.power, self.runner, all_attached or u.unit.at_boot)

    def shutdown(self) -> None:
        self.boot()

    def plug(self, unit: str) -> list[str]:
        attach(self._units[unit].power, self.runner, True)
        # The kernel may have numbered it differently (ttyUSB1): report what exists now.
        return [n for n in self._units[unit].unit.nodes if os.path.exists(n)] or list(
            self._units[unit].unit.nodes
        )

    def unplug(self, unit: str) -> None:
        attach(self._units[unit].power, self.runner, False)

    def i2c_add(self, slot: I2CSlot) -> None:
        attach(Power(i2c=slot), self.runner, True)

    def i2c_remove(self, slot: I2CSlot) -> None:
        attach(Power(i2c=slot), self.runner, False)

    def spawn(self, argv: Sequence[str], stderr: int | None = None) -> subprocess.Popen[str]:
        env = {**os.environ, "DOCKER_HOST": self.engine_url}
        return subprocess.Popen(
            list(argv), env=env, stdout=subprocess.DEVNULL, stderr=stderr, text=True
        )

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DOCKER_HOST": self.engine_url}
        return subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=120)

    def engine_numbers(self, node: str) -> str:
        deadline = time.monotonic() + 5
        while True:
            try:
                rdev = os.stat(node).st_rdev
                return f"{os.major(rdev)}:{os.minor(rdev)}"
            except FileNotFoundError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
