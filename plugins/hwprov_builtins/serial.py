"""Serial UARTs: on-chip (ttyAMA*, ttyS*, ttyO*, ttyTHS*...) and USB adapters (ttyUSB*, ttyACM*).

Only ports with a UART behind them: virtual consoles (tty0..63), /dev/tty, /dev/console and
ptys live under /sys/devices/virtual; 8250 ports the kernel registered but found no chip for
(x86 ttyS1..3) report `type` 0, PORT_UNKNOWN.
"""

from __future__ import annotations

from hwprov.plugins import (
    USB_ATTRIBUTES,
    Grant,
    Hardware,
    Kind,
    UdevDevice,
    hookimpl,
    node_grant,
    usb_identity,
)

NAME = "serial"
BY_ID = "/dev/serial/by-id/"
BY_PATH = "/dev/serial/by-path/"
MM_PORT_TYPE = "ID_MM_PORT_TYPE_"


@hookimpl(trylast=True)
def hwprov_kinds() -> list[str]:
    return [Kind.SERIAL]


@hookimpl(trylast=True)
def hwprov_subsystems() -> list[str]:
    return ["tty"]


@hookimpl(trylast=True)
def hwprov_sysfs_attributes() -> list[str]:
    return ["type", "port_number", *USB_ATTRIBUTES]


def _is_uart(device: UdevDevice) -> bool:
    if device.subsystem != "tty" or not device.node or device.is_virtual:
        return False
    if not device.ancestors:  # a tty with no parent device has no hardware behind it
        return False
    return device.attributes.get("type", "").strip() not in ("0",)


@hookimpl(trylast=True)
def hwprov_classify(device: UdevDevice) -> Hardware | None:
    if not _is_uart(device):
        return None
    details: dict[str, str | None] = {"driver": _driver(device)}
    by_id = next((link for link in device.links if link.startswith(BY_ID)), None)
    usb = usb_identity(device)
    if usb is None:
        identity = f"serial:{device.sys_path.removeprefix('/sys')}"
    else:
        identity = f"serial:usb:{usb.stable_key}:if{usb.interface or '00'}"
        by_id = by_id or _computed_by_id(device, usb.id_serial, usb.interface)
        details.update(usb.details())
    details["by_id"] = by_id
    details["by_path"] = next((link for link in device.links if link.startswith(BY_PATH)), None)
    return Hardware.from_device(
        device, kind=Kind.SERIAL, id=identity, plugin=NAME, details=details, owner=_modem(device)
    )


def _modem(device: UdevDevice) -> str | None:
    """ModemManager's rules type the ports of the modems it knows (ID_MM_PORT_TYPE_AT_PRIMARY,
    ..._GPS): such a port is the modem's, not free for a kind=serial match."""
    props = device.properties
    # Keys first, a value only for ModemManager's: a Props lookup is a scan, and `items()` is
    # one per property, for every tty of a coldplug.
    types = sorted(
        k.removeprefix(MM_PORT_TYPE).lower()
        for k in props
        if k.startswith(MM_PORT_TYPE) and props[k] == "1"
    )
    return f"ModemManager types it as a modem port ({', '.join(types)})" if types else None


def _driver(device: UdevDevice) -> str | None:
    return next((a.driver for a in device.ancestors if a.driver), None)


def _computed_by_id(device: UdevDevice, id_serial: str, interface: str | None) -> str | None:
    """/dev/serial/by-id/ as 60-serial.rules names it: usb-<ID_SERIAL>-if<NN>[-port<N>]."""
    if interface is None:
        return None
    port = device.ancestor("usb-serial")
    port_number = port.attributes.get("port_number") if port else None
    suffix = f"-port{port_number}" if port_number else ""
    return f"{BY_ID}usb-{id_serial}-if{interface}{suffix}"


@hookimpl(trylast=True)
def hwprov_grant(hardware: Hardware) -> Grant | None:
    if hardware.plugin != NAME or hardware.node is None:
        return None
    return node_grant(hardware, f"serial port {hardware.name}: its node, read/write")
