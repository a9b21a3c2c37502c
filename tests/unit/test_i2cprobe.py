"""The i2cdetect-style scan and chip identification, on a plain in-memory bus."""

from __future__ import annotations

import errno
import time

from hwprov.plugins.host import PluginHost
from hwprov.plugins.i2cprobe import crc8_sensirion, identify, scan, swap16


class FakeBus:
    """Answers like a Linux i2c-dev bus: registers per address, NACK as EREMOTEIO."""

    def __init__(self, chips: dict[int, dict[int, int]], busy: set[int] = frozenset()) -> None:
        self.chips = chips
        self.busy = set(busy)
        self.calls: list[tuple[str, int]] = []

    def _check(self, op: str, addr: int) -> dict[int, int]:
        self.calls.append((op, addr))
        if addr in self.busy:
            raise OSError(errno.EBUSY, "busy")
        if addr not in self.chips:
            raise OSError(errno.EREMOTEIO, "nack")
        return self.chips[addr]

    def read_byte(self, addr: int) -> int:
        return self._check("read_byte", addr).get(0, 0)

    def write_quick(self, addr: int) -> None:
        self._check("quick", addr)

    def read_byte_data(self, addr: int, reg: int) -> int:
        return self._check("read_byte_data", addr).get(reg, 0)

    def read_word_data(self, addr: int, reg: int) -> int:
        regs = self._check("read_word_data", addr)
        return swap16(regs.get(reg, 0))  # chips send MSB first, SMBus words are LSB first

    def write_byte_data(self, addr: int, reg: int, value: int) -> None:
        self._check("write_byte_data", addr)[reg] = value

    def i2c_rdwr(self, *msgs: object) -> None:
        raise OSError(errno.EOPNOTSUPP, "no rdwr here")


def chips():
    return PluginHost().load(eps=[]).i2c_chips()


def test_scan_finds_what_answers_and_marks_driver_claimed_addresses_busy() -> None:
    bus = FakeBus({0x76: {0xD0: 0x60}, 0x50: {}}, busy={0x1A})
    found = scan(bus, time.monotonic() + 5)
    assert found == {0x1A: "busy", 0x50: "yes", 0x76: "yes"}
    # i2cdetect's rules: EEPROM range read, elsewhere quick write, reserved addresses untouched
    ops = dict((addr, op) for op, addr in bus.calls)
    assert ops[0x50] == "read_byte" and ops[0x76] == "quick" and ops[0x34] == "read_byte"
    assert min(ops) == 0x03 and max(ops) == 0x77


def test_identify_names_known_chips_and_leaves_others_unknown() -> None:
    bus = FakeBus({
        0x76: {0xD0: 0x60},                       # BME280
        0x77: {0xD0: 0x58},                       # BMP280
        0x18: {0x06: 0x0054, 0x07: 0x0400},       # MCP9808
        0x48: {0x01: 0x8583, 0x02: 0x8000, 0x03: 0x7FFF},  # ADS1115 after reset
        0x3C: {},                                 # something unrecognised (an OLED)
    })  # fmt: skip
    deadline = time.monotonic() + 5
    result = identify(bus, scan(bus, deadline), chips(), deadline)
    assert [(p.address, p.model, p.state) for p in result] == [
        ("0x18", "mcp9808", "identified"),
        ("0x3c", None, "unknown"),
        ("0x48", "ads1115", "identified"),
        ("0x76", "bme280", "identified"),
        ("0x77", "bmp280", "identified"),
    ]


def test_a_chip_that_errors_during_identification_is_unknown_not_a_crash() -> None:
    bus = FakeBus({0x44: {}})  # SHT3x address, but i2c_rdwr fails here
    deadline = time.monotonic() + 5
    assert [(p.address, p.state) for p in identify(bus, {0x44: "yes"}, chips(), deadline)] == [
        ("0x44", "unknown")
    ]


def test_scan_stops_at_the_deadline() -> None:
    bus = FakeBus({})
    assert scan(bus, time.monotonic() - 1) == {}
    assert bus.calls == []


def test_sensirion_crc_matches_the_datasheet_example() -> None:
    assert crc8_sensirion(bytes([0xBE, 0xEF])) == 0x92  # SHT3x datasheet, section 4.12


def test_a_chip_a_driver_holds_is_named_by_the_kernels_client_not_left_unknown() -> None:
    """Found on the kernel bench: new_device binds the real bmp280 driver to a BME280, the
    address then answers EBUSY, and a service asking for `sensor=bme280` never got the bus."""
    bus = FakeBus({}, busy={0x76, 0x50, 0x1A})
    deadline = time.monotonic() + 5
    clients = {0x76: "bme280", 0x50: "24c32", 0x20: "bme280"}  # 0x20: a client gone meanwhile
    result = identify(bus, scan(bus, deadline), chips(), deadline, clients)
    assert [(p.address, p.model, p.state) for p in result] == [
        ("0x1a", None, "busy"),  # no client named: nothing to go on
        ("0x50", None, "busy"),  # a client, but not a model any plugin knows
        ("0x76", "bme280", "busy"),
    ]


def test_the_bus_edge_reads_client_names_from_sysfs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hwprov.hardware.smbus_io import SMBusProbeIO

    for name, model in (("1-0076", "bme280\n"), ("1-0050", "24c32\n"), ("10-0076", "other\n"),
                        ("1-1050", "ten-bit\n")):  # fmt: skip
        (tmp_path / name).mkdir()
        (tmp_path / name / "name").write_text(model)
    (tmp_path / "1-0077").mkdir()  # gone between the listing and the read: skipped
    io = SMBusProbeIO(())
    assert io.i2c_clients(1, root=tmp_path) == {0x76: "bme280", 0x50: "24c32"}
