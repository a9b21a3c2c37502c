"""Find and recognise chips on an I2C bus, the way i2cdetect does, within a time budget.

The bus is reached through a narrow `SMBusLike` interface (smbus2.SMBus fits it), opened by a
`ProbeIO` at the edge, so this module is tested against the simulator and against plain fakes.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from hwprov.records import ProbedDevice

# i2cdetect skips 0x00-0x02 (general call, CBUS, other bus formats) and 0x78-0x7f (10-bit
# addressing, reserved); so do we.
FIRST_ADDRESS = 0x03
LAST_ADDRESS = 0x77
# i2cdetect's default mode reads a byte here instead of a quick write: a quick write can
# corrupt the write-protect state of some EEPROMs (0x50-0x5f) and lock up some chips (0x30-0x37).
READ_BYTE_RANGES = (range(0x30, 0x38), range(0x50, 0x60))
# I2C_SLAVE answers EBUSY when a kernel driver has claimed the address (i2cdetect shows "UU").
BUSY_ERRNOS = {errno.EBUSY}


class SMBusLike(Protocol):
    def read_byte(self, i2c_addr: int) -> int: ...
    def write_quick(self, i2c_addr: int) -> None: ...
    def read_byte_data(self, i2c_addr: int, register: int) -> int: ...
    def read_word_data(self, i2c_addr: int, register: int) -> int: ...
    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None: ...
    def i2c_rdwr(self, *msgs: Any) -> None: ...  # smbus2.i2c_msg: only smbus2 builds them


class ProbeIO(Protocol):
    """What a probe may touch. `deadline` is a time.monotonic() value not to exceed."""

    deadline: float
    i2c_chips: tuple[ChipSignature, ...]

    def open_i2c(self, bus: int) -> AbstractContextManager[SMBusLike]: ...

    def i2c_clients(self, bus: int) -> Mapping[int, str]:
        """The chips a kernel driver holds on this bus (address -> the client's name, as
        /sys/bus/i2c/devices/N-00AA/name says: a device tree's or new_device's model)."""
        ...


Identify = Callable[[SMBusLike, int], bool]


@dataclass(frozen=True, slots=True)
class ChipSignature:
    """How to recognise one chip model: the addresses it can sit at and a check to run there."""

    model: str
    addresses: tuple[int, ...]
    identify: Identify


def register_equals(register: int, *values: int) -> Identify:
    """A chip-id byte register that reads one of `values` (BME280's 0xD0 reads 0x60)."""

    def check(bus: SMBusLike, address: int) -> bool:
        return bus.read_byte_data(address, register) in values

    return check


def word_register_equals(register: int, value: int, mask: int = 0xFFFF) -> Identify:
    """A big-endian 16-bit register; SMBus word reads are little-endian, so swap the bytes."""

    def check(bus: SMBusLike, address: int) -> bool:
        raw = bus.read_word_data(address, register)
        return (swap16(raw) & mask) == value

    return check


def swap16(word: int) -> int:
    return ((word & 0xFF) << 8) | (word >> 8)


def crc8_sensirion(data: bytes) -> int:
    """CRC-8 of Sensirion sensors (SHT3x, SHT4x, SGP30): poly 0x31, init 0xFF."""
    crc = 0xFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _answers(bus: SMBusLike, address: int) -> str:
    """'yes', 'no' or 'busy' for one address, using i2cdetect's method for its range."""
    try:
        if any(address in r for r in READ_BYTE_RANGES):
            bus.read_byte(address)
        else:
            bus.write_quick(address)
    except OSError as err:
        return "busy" if err.errno in BUSY_ERRNOS else "no"
    return "yes"


def scan(bus: SMBusLike, deadline: float, addresses: Iterable[int] | None = None) -> dict[int, str]:
    """Addresses that answer ('yes') or are claimed by a driver ('busy'); stops at the deadline."""
    found: dict[int, str] = {}
    for address in addresses or range(FIRST_ADDRESS, LAST_ADDRESS + 1):
        if time.monotonic() > deadline:
            break
        state = _answers(bus, address)
        if state != "no":
            found[address] = state
    return found


def identify(
    bus: SMBusLike,
    found: dict[int, str],
    signatures: Iterable[ChipSignature],
    deadline: float,
    clients: Mapping[int, str] | None = None,
) -> tuple[ProbedDevice, ...]:
    """Name what answered, first matching signature wins; a chip error means 'not this model'.

    An address a driver holds cannot be read from user space (EBUSY); the kernel's client
    name there (`clients`) is the model, when it is one of the signatures' models: a bound
    BME280 is a BME280 to a service asking for one, not an unknown busy chip.
    """
    models = set()
    by_address: dict[int, list[ChipSignature]] = {}
    for sig in signatures:
        models.add(sig.model)
        for address in sig.addresses:
            by_address.setdefault(address, []).append(sig)
    result = []
    for address, state in sorted(found.items()):
        model = None
        if state == "yes":
            for sig in by_address.get(address, ()):
                if time.monotonic() > deadline:
                    break
                try:
                    if sig.identify(bus, address):
                        model = sig.model
                        break
                except (OSError, ValueError):
                    continue
        elif (name := (clients or {}).get(address)) in models:
            model = name
        label = "busy" if state == "busy" else ("identified" if model else "unknown")
        result.append(ProbedDevice(address=f"0x{address:02x}", model=model, state=label))
    return tuple(result)
