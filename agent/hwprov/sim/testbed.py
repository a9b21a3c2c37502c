"""A umockdev testbed built from a Board, with units plugged and unplugged at run time.

Works around umockdev 0.17.16's traps (shared/notes/umockdev-bench.md):
- remove_device() sends no uevent: send `remove` first, children before parents;
- re-adding a PTY-backed node aborts the process: nodes are plain files ("N: name=00"), which
  re-plug any number of times (serial data does not flow through them);
- UMOCKDEV_DIR is only in the C environment: `env()` hands it to children explicitly;
- a burst far ahead of a slow monitor aborts the sender: the runner raises the datagram queue
  length in its own network namespace, or paces uevents (`pace_s`).
"""

from __future__ import annotations

import threading
import time

from hwprov.errors import SimulatorError
from hwprov.records import Props
from hwprov.sim.board import Board, BoardDevice, enumerate_unit
from hwprov.sim.i2c import I2CBusEmulator
from hwprov.sim.realnodes import RealNodes
from hwprov.sim.umockdev import UMockdev


def record(device: BoardDevice, kernel_only: bool) -> str:
    """One device in umockdev's record format (P:, N:, S:, E:, A:)."""
    lines = [f"P: {device.path}"]
    if device.node:
        lines.append(f"N: {device.node}=00")
        if not kernel_only:
            lines += [f"S: {link}" for link in device.links]
    props = {"SUBSYSTEM": device.subsystem, **dict(device.properties)}
    if device.devtype:
        props["DEVTYPE"] = device.devtype
    if device.driver:
        props["DRIVER"] = device.driver
    if device.node:
        props.update(
            DEVNAME=f"/dev/{device.node}", MAJOR=str(device.major), MINOR=str(device.minor)
        )
    if not kernel_only:
        props.update(device.udev)
        if device.links:
            props["DEVLINKS"] = " ".join(f"/dev/{link}" for link in device.links)
    lines += [f"E: {k}={v}" for k, v in props.items()]
    attrs = dict(device.attributes)
    if device.node:
        attrs["dev"] = f"{device.major}:{device.minor}"
    lines += [f"A: {k}={v}" for k, v in attrs.items()]
    return "\n".join(lines) + "\n"


class SimTestbed:
    def __init__(
        self, board: Board, nodes: RealNodes, *, kernel_only: bool = False, pace_s: float = 0.0
    ) -> None:
        self.board = board
        self.nodes = nodes
        self.kernel_only = kernel_only
        self.pace_s = pace_s
        self.lock = threading.Lock()
        self.tb = UMockdev.Testbed.new()
        self.buses: dict[int, I2CBusEmulator] = {}
        self.present: set[str] = set()  # node names, for kernel-like numbering at plug time
        self.last_devnum: dict[int, int] = {}
        for device in board.boot_devices():
            self._add(device)
        # What each plugged unit really is now (its numbering may differ from the file's).
        self.live: dict[str, tuple[BoardDevice, ...]] = {
            u: board.unit_devices(u) for u in board.units if self._top(u).plugged
        }
        for bus in board.i2c:
            emulator = I2CBusEmulator(dict(bus.chips), bus.nack_errno)
            self.tb.attach_ioctl(f"/dev/i2c-{bus.bus}", emulator)
            self.buses[bus.bus] = emulator

    @property
    def root(self) -> str:
        return self.tb.get_root_dir()

    def _top(self, unit: str) -> BoardDevice:
        return next(d for d in self.board.devices if d.unit == unit)

    def _add(self, device: BoardDevice) -> None:
        if not self.tb.add_from_string(record(device, self.kernel_only)):
            raise SimulatorError(f"umockdev refused {device.path}")
        if device.node and device.major is not None and device.minor is not None:
            self.nodes.add(device.node, device.major, device.minor)
            self.present.add(device.node)
        if self.pace_s:
            time.sleep(self.pace_s)

    def plug(self, unit: str) -> list[str]:
        with self.lock:
            if unit in self.live:
                raise SimulatorError(f"{unit} is already plugged")
            devices = enumerate_unit(self._unit(unit), self.present, self.last_devnum)
            for device in devices:
                self._add(device)
            self.live[unit] = devices
            return [f"/dev/{d.node}" for d in devices if d.node]

    def unplug(self, unit: str) -> list[str]:
        with self.lock:
            self._unit(unit)  # an unknown unit is named as such
            if unit not in self.live:
                raise SimulatorError(f"{unit} is not plugged")
            devices = self.live[unit]
            for device in reversed(devices):  # children first, as the kernel does
                sys_path = f"/sys{device.path}"
                self.tb.uevent(sys_path, "remove")  # remove_device() alone sends none
                if self.pace_s:
                    time.sleep(self.pace_s)
            for device in reversed(devices):
                self.tb.remove_device(f"/sys{device.path}")
                if device.node:
                    self.nodes.remove(device.node)
                    self.present.discard(device.node)
            del self.live[unit]
            return [f"/dev/{d.node}" for d in devices if d.node]

    def _unit(self, unit: str) -> tuple[BoardDevice, ...]:
        try:
            return self.board.unit_devices(unit)
        except KeyError:
            known = ", ".join(self.board.units) or "none"
            raise SimulatorError(
                f"board {self.board.board} has no unit '{unit}' (units: {known})"
            ) from None

    def i2c(self, bus: int) -> I2CBusEmulator:
        if bus not in self.buses:
            raise SimulatorError(f"board {self.board.board} has no emulated i2c-{bus}")
        return self.buses[bus]

    def _client(self, bus: int, address: int) -> str:
        adapter = next(
            (d.path for d in self.board.devices
             if d.devtype == "i2c_adapter" and d.path.endswith(f"/i2c-{bus}")),
            None,
        )  # fmt: skip
        if adapter is None:
            raise SimulatorError(f"board {self.board.board} has no i2c_adapter device i2c-{bus}")
        return f"{adapter}/{bus}-{address:04x}"

    def i2c_add(self, bus: int, address: int, model: str) -> None:
        """A chip appears, as `echo MODEL ADDR > .../i2c-N/new_device` makes it: it answers on
        the bus and the kernel announces a client device (the uevent hwprov re-probes on)."""
        with self.lock:
            self.i2c(bus).add(address, model)
            # No DEVTYPE: the kernel sets none on an I2C client (the kernel bench showed it).
            name = Props({"name": model})
            client = BoardDevice(self._client(bus, address), "i2c", attributes=name)
            self._add(client)

    def i2c_remove(self, bus: int, address: int) -> None:
        with self.lock:
            if address not in self.i2c(bus).models:
                raise SimulatorError(f"no chip at 0x{address:02x} on i2c-{bus}")
            self.i2c(bus).remove(address)
            path = f"/sys{self._client(bus, address)}"
            self.tb.uevent(path, "remove")
            self.tb.remove_device(path)

    def status(self) -> dict[str, object]:
        return {
            "board": self.board.board,
            "units": {u: u in self.live for u in self.board.units},
            "nodes_of": {
                u: [f"/dev/{d.node}" for d in devices if d.node] for u, devices in self.live.items()
            },
            "i2c": {
                str(b): {f"0x{a:02x}": m for a, m in sorted(e.models.items())}
                for b, e in self.buses.items()
            },
            "nodes": str(self.nodes.folder),
        }

    def close(self) -> None:
        for bus in self.buses:
            self.tb.detach_ioctl(f"/dev/i2c-{bus}")
        self.tb.clear()
        # Dropping the testbed lets umockdev remove its own root; removing it ourselves first
        # makes umockdev's finaliser abort with "cannot remove".
        del self.tb
