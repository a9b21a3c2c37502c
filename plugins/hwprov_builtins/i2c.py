"""I2C buses (/dev/i2c-N, i2c-dev, major 89), probed for sensors the way i2cdetect does."""

from __future__ import annotations

import dataclasses
import logging
import re

from hwprov.plugins import (
    ChipSignature,
    Grant,
    Hardware,
    Kind,
    ProbeIO,
    Props,
    SMBusLike,
    UdevDevice,
    crc8_sensirion,
    hookimpl,
    identify,
    node_grant,
    register_equals,
    scan,
    word_register_equals,
)

NAME = "i2c"
log = logging.getLogger(__name__)


@hookimpl(trylast=True)
def hwprov_kinds() -> list[str]:
    return [Kind.I2C]


@hookimpl(trylast=True)
def hwprov_subsystems() -> list[str]:
    # "i2c" for the client devices the kernel adds on a bus (new_device, a driver binding):
    # the cue to scan that bus again.
    return ["i2c-dev", "i2c"]


@hookimpl(trylast=True)
def hwprov_sysfs_attributes() -> list[str]:
    return ["name"]


@hookimpl(trylast=True)
def hwprov_classify(device: UdevDevice) -> Hardware | None:
    if device.subsystem != "i2c-dev" or not device.node:
        return None
    number = device.sys_name.removeprefix("i2c-")
    if not (number.isascii() and number.isdigit()):  # isdigit alone takes superscripts
        return None
    adapter = device.ancestor("i2c")
    where = (adapter.sys_path if adapter else device.sys_path).removeprefix("/sys")
    name = device.attributes.get("name") or (adapter.attributes.get("name") if adapter else None)
    details = {"bus": number, "adapter": name}
    return Hardware.from_device(
        device, kind=Kind.I2C, id=f"i2c:{where}", plugin=NAME, details=details
    )


# An I2C client device's name: the adapter's number and the 4-digit address (1-0076; a 10-bit
# address is 1-a076). The kernel sets no DEVTYPE on clients, nor on adapters (6.1's
# i2c_client_type has no name): the name is what tells them apart, as i2c-core names them.
CLIENT_NAME = re.compile(r"^[0-9]+-[0-9a-f]{4}$")


@hookimpl(trylast=True)
def hwprov_affects(device: UdevDevice) -> list[str]:
    if device.subsystem != "i2c" or not CLIENT_NAME.match(device.sys_name):
        return []
    if not device.ancestors:
        return []
    adapter = device.ancestors[0]  # clients sit right below their adapter (i2c-N)
    if adapter.subsystem != "i2c":
        return []
    bus = adapter.sys_path.rsplit("/", 1)[-1]
    return [f"{adapter.sys_path}/i2c-dev/{bus}"]


@hookimpl(trylast=True)
def hwprov_probe(hardware: Hardware, io: ProbeIO) -> Hardware | None:
    if hardware.plugin != NAME:
        return None
    bus_number = int(hardware.details["bus"])
    try:
        with io.open_i2c(bus_number) as bus:
            found = scan(bus, io.deadline)
            probed = identify(bus, found, io.i2c_chips, io.deadline, io.i2c_clients(bus_number))
    except OSError as err:  # the bus vanished or cannot be opened: report, do not crash
        log.warning("cannot probe %s: %s", hardware.node, err)
        details = Props({**hardware.details, "probe_error": str(err)})
        return dataclasses.replace(hardware, details=details)
    return dataclasses.replace(hardware, probed=probed)


def _sht3x(bus: SMBusLike, address: int) -> bool:
    """SHT3x has no registers: send the 16-bit 'read status' command, check the CRC-8."""
    from smbus2 import i2c_msg

    write = i2c_msg.write(address, [0xF3, 0x2D])
    read = i2c_msg.read(address, 3)
    bus.i2c_rdwr(write, read)
    data = bytes(read)
    return crc8_sensirion(data[:2]) == data[2]


@hookimpl(trylast=True)
def hwprov_i2c_chips() -> list[ChipSignature]:
    # Datasheet chip-id registers. Order matters where addresses overlap: most specific first.
    return [
        ChipSignature("bme280", (0x76, 0x77), register_equals(0xD0, 0x60)),
        ChipSignature("bme680", (0x76, 0x77), register_equals(0xD0, 0x61)),
        ChipSignature("bmp280", (0x76, 0x77), register_equals(0xD0, 0x56, 0x57, 0x58)),
        ChipSignature("sht3x", (0x44, 0x45), _sht3x),
        # MCP9808: manufacturer id 0x0054 (reg 6), device id 0x04xx (reg 7)
        ChipSignature("mcp9808", tuple(range(0x18, 0x20)), word_register_equals(0x06, 0x0054)),
        # ADS1115 has no id register: its threshold registers reset to 0x8000 / 0x7FFF.
        ChipSignature("ads1115", (0x48, 0x49, 0x4A, 0x4B), _ads1115),
    ]


def _ads1115(bus: SMBusLike, address: int) -> bool:
    return word_register_equals(0x02, 0x8000)(bus, address) and word_register_equals(0x03, 0x7FFF)(
        bus, address
    )


@hookimpl(trylast=True)
def hwprov_grant(hardware: Hardware) -> Grant | None:
    if hardware.plugin != NAME or hardware.node is None:
        return None
    return node_grant(hardware, f"I2C bus {hardware.details.get('bus')}: its node, read/write")
