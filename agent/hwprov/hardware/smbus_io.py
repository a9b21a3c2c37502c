"""The real bus edge for probes: smbus2 on /dev/i2c-N, with a time budget."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from smbus2 import SMBus

from hwprov.plugins.i2cprobe import ChipSignature, SMBusLike

# A full 0x03-0x77 scan at 100 kHz takes ~15 ms on real buses; a stuck bus (SDA held low)
# makes every transfer time out, so the whole probe gets a bound.
DEFAULT_BUDGET_S = 2.0
I2C_DEVICES = Path("/sys/bus/i2c/devices")


class SMBusProbeIO:
    def __init__(
        self, chips: tuple[ChipSignature, ...], budget_s: float = DEFAULT_BUDGET_S
    ) -> None:
        self.i2c_chips = chips
        self.deadline = time.monotonic() + budget_s

    @contextmanager
    def open_i2c(self, bus: int) -> Iterator[SMBusLike]:
        with SMBus(bus) as handle:
            yield handle

    def i2c_clients(self, bus: int, root: Path = I2C_DEVICES) -> dict[int, str]:
        clients = {}
        for entry in root.glob(f"{bus}-00[0-7][0-9a-f]"):
            try:
                clients[int(entry.name.split("-")[1], 16)] = (entry / "name").read_text().strip()
            except (OSError, ValueError):
                continue  # gone meanwhile, or not a 7-bit client
        return clients
