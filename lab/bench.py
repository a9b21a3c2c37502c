"""The test bench the hardware-in-the-loop suite drives: one interface, two implementations.

A bench boots a board, plugs and unplugs its units, and runs commands where they see the
board's udev and /dev (the agent under test among them). `SimBench` (lab/simbench.py)
does it with `hwprov sim` on a fixture board; `RealBench` (lab/realbench.py) with hub
port power, sysfs `new_device`, gpio-sim and rfkill on a real one.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Unit:
    """Something the bench can attach and detach."""

    id: str
    kind: str  # the plugin kind it shows up as: serial, i2c, gpio, bluetooth
    nodes: tuple[str, ...]  # /dev paths it brings when attached alone (may differ when not)
    at_boot: bool  # attached when the bench boots


@dataclass(frozen=True, slots=True)
class I2CSlot:
    """An I2C bus where the bench can make a chip appear."""

    bus: int
    address: int
    model: str


class Bench(Protocol):
    name: str
    engine_url: str

    def units(self) -> Mapping[str, Unit]: ...

    def i2c_slot(self) -> I2CSlot | None:
        """A free address on a bus with a chip model the bench can add there, if any."""
        ...

    def boot(self, all_attached: bool = False) -> None:
        """Power up in the boot state (or with every unit attached)."""
        ...

    def shutdown(self) -> None: ...

    def plug(self, unit: str) -> list[str]:
        """Attach a unit; returns the /dev nodes it got, as the kernel numbered them."""
        ...

    def unplug(self, unit: str) -> None: ...

    def i2c_add(self, slot: I2CSlot) -> None: ...

    def i2c_remove(self, slot: I2CSlot) -> None: ...

    def spawn(self, argv: Sequence[str], stderr: int | None = None) -> subprocess.Popen[str]:
        """Start a command that sees the board (its udev, /dev and sysfs)."""
        ...

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]: ...

    def engine_numbers(self, node: str) -> str:
        """MAJOR:MINOR of the node the engine maps for the board's /dev `node`."""
        ...
