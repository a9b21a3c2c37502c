"""What is attached right now: udev snapshots in, classified hardware and changes out.

Pure apart from the probe, which reaches the bus only through the `ProbeIO` it is given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from hwprov.hardware.owners import Owners
from hwprov.plugins.host import PluginHost
from hwprov.plugins.i2cprobe import ProbeIO
from hwprov.records import Action, Hardware, HardwareEvent, Refused, UdevDevice, UdevEvent

# Why a node is not the one udev announced (path, major, minor), or None: see nodeview.
NodeCheck = Callable[[str, int | None, int | None], str | None]


class Inventory:
    def __init__(
        self,
        host: PluginHost,
        probe_io: Callable[[], ProbeIO] | None = None,
        check_node: NodeCheck | None = None,
        read_owners: Callable[[], Owners] | None = None,
    ) -> None:
        self.host = host
        self.probe_io = probe_io
        self.check_node = check_node
        # Read again at each enumeration: consoles and serdev bindings change only with a boot
        # or a driver (un)bind, not on hotplug.
        self.read_owners = read_owners
        self.owners = Owners()
        self._by_path: dict[str, Hardware] = {}
        self.refused: dict[str, Refused] = {}  # sys_path -> why its node is not mapped

    def hardware(self) -> list[Hardware]:
        """Attached hardware in a stable order: by kind, then name."""
        return sorted(self._by_path.values(), key=lambda h: (h.kind, h.name, h.id))

    def _classify(self, device: UdevDevice) -> Hardware | None:
        self.refused.pop(device.sys_path, None)
        hardware = self.host.classify(device)
        if hardware is not None:
            hardware = self.owners.mark(hardware)
        if hardware is not None and hardware.node is not None and self.check_node is not None:
            # Before the probe, which opens the node: a bus at a hostile path is not read either.
            why = self.check_node(hardware.node, hardware.major, hardware.minor)
            if why is not None:
                self.refused[device.sys_path] = Refused(hardware, why)
                return None
        if hardware is not None and self.probe_io is not None:
            hardware = self.host.probe(hardware, self.probe_io())
        return hardware

    def load(self, devices: Iterable[UdevDevice]) -> list[HardwareEvent]:
        """Coldplug: every device as an add."""
        self._read_owners()
        return self.apply(UdevEvent(Action.ADD, d) for d in devices)

    def apply(self, events: Iterable[UdevEvent]) -> list[HardwareEvent]:
        """Apply a batch; only the last event per device counts, so a burst costs one change."""
        last: dict[str, UdevEvent] = {}
        for event in events:
            last.pop(event.device.sys_path, None)  # re-insert so order follows the last event
            last[event.device.sys_path] = event
        changes = []
        for sys_path, event in last.items():
            before = self._by_path.get(sys_path)
            if event.action == Action.REMOVE:
                self.refused.pop(sys_path, None)
            after = None if event.action == Action.REMOVE else self._classify(event.device)
            if after is None and before is None:
                changes += self._reprobe(self.host.affects(event.device))
                continue
            if after is None:
                if before is not None:
                    del self._by_path[sys_path]
                    changes.append(HardwareEvent(Action.REMOVE, before))
                continue
            self._by_path[sys_path] = after
            if before is not None and before.id != after.id:
                # Another device in the same place (an adapter swapped on one USB port, its
                # events merged in a burst or lost): the one granted is gone.
                changes.append(HardwareEvent(Action.REMOVE, before))
                changes.append(HardwareEvent(Action.ADD, after))
            elif before is None:
                changes.append(HardwareEvent(Action.ADD, after))
            elif before != after:
                changes.append(HardwareEvent(Action.CHANGE, after))
        return changes

    def resync(self, devices: Iterable[UdevDevice]) -> list[HardwareEvent]:
        """A fresh enumeration, after events may have been lost: what is gone is removed, what
        is new added, what differs changed; what is the same costs nothing."""
        self._read_owners()
        present = {d.sys_path: d for d in devices}
        for gone in set(self.refused) - set(present):
            del self.refused[gone]
        changes = [
            HardwareEvent(Action.REMOVE, self._by_path.pop(path))
            for path in sorted(set(self._by_path) - set(present))
        ]
        return changes + self.apply(UdevEvent(Action.ADD, d) for d in present.values())

    def _read_owners(self) -> None:
        if self.read_owners is not None:
            self.owners = self.read_owners()

    def _reprobe(self, sys_paths: Iterable[str]) -> list[HardwareEvent]:
        """Probe known hardware again because something below it changed."""
        changes = []
        for path in sys_paths:
            before = self._by_path.get(path)
            if before is None or self.probe_io is None:
                continue
            after = self.host.probe(dataclasses.replace(before, probed=()), self.probe_io())
            if after != before:
                self._by_path[path] = after
                changes.append(HardwareEvent(Action.CHANGE, after))
        return changes
