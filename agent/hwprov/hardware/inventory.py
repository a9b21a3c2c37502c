"""What is attached right now: udev snapshots in, classified hardware and changes out.

Pure apart from the probe, which reaches the bus only through the `ProbeIO` it is given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from hwprov.plugins.host import PluginHost
from hwprov.plugins.i2cprobe import ProbeIO
from hwprov.records import Action, Hardware, HardwareEvent, UdevDevice, UdevEvent


class Inventory:
    def __init__(self, host: PluginHost, probe_io: Callable[[], ProbeIO] | None = None) -> None:
        self.host = host
        self.probe_io = probe_io
        self._by_path: dict[str, Hardware] = {}

    def hardware(self) -> list[Hardware]:
        """Attached hardware in a stable order: by kind, then name."""
        return sorted(self._by_path.values(), key=lambda h: (h.kind, h.name, h.id))

    def _classify(self, device: UdevDevice) -> Hardware | None:
        hardware = self.host.classify(device)
        if hardware is not None and self.probe_io is not None:
            hardware = self.host.probe(hardware, self.probe_io())
        return hardware

    def load(self, devices: Iterable[UdevDevice]) -> list[HardwareEvent]:
        """Coldplug: every device as an add."""
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
        present = {d.sys_path: d for d in devices}
        changes = [
            HardwareEvent(Action.REMOVE, self._by_path.pop(path))
            for path in sorted(set(self._by_path) - set(present))
        ]
        return changes + self.apply(UdevEvent(Action.ADD, d) for d in present.values())

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
