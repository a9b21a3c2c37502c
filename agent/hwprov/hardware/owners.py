"""Which nodes another part of the system already uses, read from sysfs at the edge.

A UART can be the kernel's console (`console=ttyS0`, listed in /sys/class/tty/console/active,
the same list /proc/consoles shows), or the port a serdev driver drives (the Pi's Bluetooth:
hci_uart_bcm on serial0-0 under the PL011 whose tty is ttyAMA0). Mapping such a node into a
container because it asked for `kind=serial` would steal the console or the Bluetooth link, so
hardware on these nodes carries an `owner` and is given only to a match that says more than a
kind (planning/matchlabels.py). Modems are tagged by the serial plugin from udev's own
properties; this module holds what needs a look beyond one device.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyudev

from hwprov.hardware.udev import scan_context
from hwprov.records import Hardware

log = logging.getLogger(__name__)

CONSOLES = Path("/sys/class/tty/console/active")
PROC_CONSOLES = Path("/proc/consoles")
# A serdev device is <controller>/serialN/serialN-M; the controller's tty is <controller>/tty/X.
_SERDEV = re.compile(r"^(?P<controller>.+)/serial\d+/serial\d+-\d+$")


@dataclass(frozen=True, slots=True)
class Owners:
    consoles: frozenset[str] = frozenset()  # tty names: ttyS0, ttyAMA0
    serdev: tuple[tuple[str, str], ...] = ()  # (controller sys_path, "driver on device")

    def owner_of(self, hw: Hardware) -> str | None:
        """Who uses this hardware's node, or None. Pure: the facts were read before."""
        if hw.node is None:
            return None
        if hw.name in self.consoles:
            return f"the kernel console is on {hw.name}"
        for controller, bound in self.serdev:
            if hw.sys_path.startswith(f"{controller}/tty/"):
                return f"the serdev driver {bound} drives this UART"
        return None

    def mark(self, hw: Hardware) -> Hardware:
        """`hw` with its owner, unless its plugin named one already."""
        if hw.owner is not None:
            return hw
        owner = self.owner_of(hw)
        return hw if owner is None else dataclasses.replace(hw, owner=owner)


def active_consoles(sysfs: str | None, proc: str | None) -> frozenset[str]:
    """Console tty names from the sysfs list, else from /proc/consoles' first column."""
    if sysfs is not None and sysfs.strip():
        return frozenset(sysfs.split())
    if proc is not None:
        return frozenset(line.split()[0] for line in proc.splitlines() if line.split())
    return frozenset()


def serdev_controllers(devices: Iterable[tuple[str, str | None]]) -> tuple[tuple[str, str], ...]:
    """(controller, who) for each serdev device (sys_path, driver) that a driver is bound to."""
    out = []
    for sys_path, driver in devices:
        found = _SERDEV.match(sys_path)
        if found and driver:
            name = sys_path.rsplit("/", 1)[-1]
            out.append((found.group("controller"), f"{driver} (on {name})"))
    return tuple(sorted(out))


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def read_owners(context: pyudev.Context | None = None) -> Owners:
    """What the running system owns now; unreadable facts count as no owner, said in the log."""
    consoles = active_consoles(_read(CONSOLES), _read(PROC_CONSOLES))
    try:
        found = [
            (d.sys_path, d.driver or d.properties.get("DRIVER"))  # umockdev: only DRIVER=
            for d in (context or scan_context()).list_devices(subsystem="serial")
        ]
    except (OSError, pyudev.DeviceNotFoundError) as err:
        log.warning("cannot list serdev devices: %s", err)
        found = []
    return Owners(consoles, serdev_controllers(found))
