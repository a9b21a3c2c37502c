"""The one wiring of the hardware side: the plugin host, the inventory it fills, the I2C probe,
and the coldplug that loads it. `hwprov run`, every command that looks at hardware and the
benchmarks open it here, so they all see the same inventory.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hwprov.hardware.inventory import Inventory
from hwprov.hardware.nodeview import check_node
from hwprov.hardware.owners import read_owners
from hwprov.hardware.smbus_io import SMBusProbeIO
from hwprov.hardware.udev import RECEIVE_BUFFER, UdevMonitor, coldplug
from hwprov.plugins.host import PluginHost, Problem
from hwprov.records import Hardware, HardwareEvent, Refused, UdevEvent


@dataclass(frozen=True, slots=True)
class Session:
    host: PluginHost
    inventory: Inventory

    @classmethod
    def open(cls, disabled: Iterable[str] = (), probe: bool = True) -> Session:
        """Load the plugins (entry points, then the built-ins not disabled); probe I2C buses
        for the chips the plugins know unless `probe` is false."""
        host = PluginHost(disabled=tuple(disabled)).load()
        chips = tuple(host.i2c_chips())
        probe_io = (lambda: SMBusProbeIO(chips)) if probe else None
        return cls(host, Inventory(host, probe_io, check_node, read_owners))

    def fresh(self) -> Session:
        """The same plugins and probe, an empty inventory (a scan from scratch)."""
        return Session(
            self.host,
            Inventory(
                self.host,
                self.inventory.probe_io,
                self.inventory.check_node,
                self.inventory.read_owners,
            ),
        )

    @property
    def problems(self) -> list[Problem]:
        return self.host.problems

    def hardware(self) -> list[Hardware]:
        return self.inventory.hardware()

    def refused(self) -> list[Refused]:
        """What a plugin recognised but whose node is not what udev said: never mapped."""
        return [self.inventory.refused[p] for p in sorted(self.inventory.refused)]

    def monitor(
        self,
        events: queue.SimpleQueue[object] | None = None,
        source: str | None = None,
        buffer: int = RECEIVE_BUFFER,
        on_remove: Callable[[UdevEvent], None] | None = None,
    ) -> UdevMonitor:
        """A hotplug monitor for the subsystems the plugins asked for (not yet started);
        `on_remove` hears each remove in the monitor's thread (see UdevMonitor)."""
        return UdevMonitor(
            self.host.subsystems(),
            self.host.sysfs_attributes(),
            source=source,
            events=events,
            buffer=buffer,
            on_remove=on_remove,
        )

    def coldplug(self, monitor: UdevMonitor | None = None) -> list[HardwareEvent]:
        """Enumerate what is attached into the inventory. Start `monitor` first, so nothing
        plugged in between is missed; it learns each node, so an early remove still names it."""
        changes = self.inventory.load(
            coldplug(self.host.subsystems(), self.host.sysfs_attributes())
        )
        if monitor is not None:
            for change in changes:
                monitor.remember_path(change.hardware.sys_path, change.hardware.node)
        return changes

    def resync(self, monitor: UdevMonitor | None = None) -> list[HardwareEvent]:
        """Enumerate again and diff against the inventory, for when events may have been lost
        (the monitor died, or SIGHUP asked): the changes, as udev would have reported them.
        Start `monitor` first, as for `coldplug`."""
        changes = self.inventory.resync(
            coldplug(self.host.subsystems(), self.host.sysfs_attributes())
        )
        if monitor is not None:
            for hw in self.inventory.hardware():
                monitor.remember_path(hw.sys_path, hw.node)
        return changes
