"""SPI user-space devices: /dev/spidevB.C (subsystem spidev, major 153)."""

from __future__ import annotations

from hwprov.plugins import Grant, Hardware, UdevDevice, hookimpl, node_grant

NAME = "spidev"


@hookimpl
def hwprov_kinds() -> list[str]:
    return ["spi"]


@hookimpl
def hwprov_subsystems() -> list[str]:
    return ["spidev"]


@hookimpl
def hwprov_classify(device: UdevDevice) -> Hardware | None:
    if device.subsystem != "spidev" or not device.node:
        return None
    bus, _, chip_select = device.sys_name.removeprefix("spidev").partition(".")
    return Hardware.from_device(
        device,
        kind="spi",
        id=f"spi:{device.sys_path.removeprefix('/sys')}",
        plugin=NAME,
        details={"bus": bus, "chip_select": chip_select},
    )


@hookimpl
def hwprov_grant(hardware: Hardware) -> Grant | None:
    if hardware.plugin != NAME:
        return None
    return node_grant(hardware, f"SPI device {hardware.name}: its node, read/write")
