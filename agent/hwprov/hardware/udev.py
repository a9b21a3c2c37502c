"""The udev edge: coldplug enumeration and a hotplug monitor, both yielding `UdevDevice` snapshots.

This is the only module that touches pyudev. Snapshots are taken here, in the monitor thread,
while sysfs still holds the device; the core never sees a pyudev object.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import stat
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import pyudev

from hwprov.errors import UdevError
from hwprov.records import Action, Ancestor, Props, UdevDevice, UdevEvent

log = logging.getLogger(__name__)

# Bursts (a hub re-enumerating) overflow the default socket buffer and end in ENOBUFS;
# Home Assistant's supervisor uses the same 32 MiB.
RECEIVE_BUFFER = 32 * 1024 * 1024
# A property or attribute value longer than this is cut: sysfs attributes are at most a page,
# so anything longer is broken data, and one must not cost unbounded memory per event.
MAX_VALUE = 4096


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = str(value).strip()
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE] + "..."


def _properties(dev: pyudev.Device) -> dict[str, str]:
    props: dict[str, str] = {}
    try:
        keys = list(dev.properties)
    except (UnicodeDecodeError, OSError):
        return props
    for key in keys:
        try:
            props[_text(key)] = _text(dev.properties.get(key, ""))
        except (UnicodeDecodeError, OSError, KeyError):
            continue  # one undecodable property must not lose the device
    return props


def _attributes(dev: pyudev.Device, names: Iterable[str]) -> Props:
    values = {}
    for name in names:
        try:
            raw = dev.attributes.get(name)
        except (OSError, UnicodeDecodeError):
            continue
        if raw is not None:
            values[name] = _text(raw)
    return Props(values)


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _links(dev: pyudev.Device, props: dict[str, str]) -> tuple[str, ...]:
    # With a udev database, device_links; without one (umockdev, kernel-only), DEVLINKS may
    # still be a plain property.
    links = set(props.get("DEVLINKS", "").split())
    with contextlib.suppress(OSError, UnicodeDecodeError):
        links.update(dev.device_links)
    return tuple(sorted(link for link in links if link.startswith("/dev/")))


def snapshot(dev: pyudev.Device, attributes: Iterable[str]) -> UdevDevice:
    """Everything plugins may look at, copied out of pyudev and sysfs now."""
    names = tuple(attributes)
    props = _properties(dev)
    node = props.get("DEVNAME") or None
    if node and not node.startswith("/"):
        node = f"/dev/{node}"
    gid = mode = None
    if node:
        try:
            st = os.stat(node)
            gid, mode = st.st_gid, stat.S_IMODE(st.st_mode)
        except OSError:
            pass  # removed already, or not yet created: the record still names it
    ancestors = []
    parent = dev.parent
    while parent is not None:
        ancestors.append(
            Ancestor(
                sys_path=parent.sys_path,
                subsystem=parent.subsystem,
                devtype=parent.device_type,
                driver=parent.driver or parent.properties.get("DRIVER"),
                attributes=_attributes(parent, names),
            )
        )
        parent = parent.parent
    return UdevDevice(
        sys_path=dev.sys_path,
        subsystem=props.get("SUBSYSTEM") or dev.subsystem or "",
        sys_name=dev.sys_name,
        devtype=props.get("DEVTYPE") or None,
        driver=props.get("DRIVER") or dev.driver,
        node=node,
        major=_int(props.get("MAJOR")),
        minor=_int(props.get("MINOR")),
        node_gid=gid,
        node_mode=mode,
        properties=Props(props),
        attributes=_attributes(dev, names),
        links=_links(dev, props),
        ancestors=tuple(ancestors),
    )


def coldplug(
    subsystems: Iterable[str], attributes: Iterable[str], context: pyudev.Context | None = None
) -> Iterator[UdevDevice]:
    context = context or pyudev.Context()
    names = tuple(attributes)
    for subsystem in sorted(set(subsystems)):
        for dev in context.list_devices(subsystem=subsystem):
            yield snapshot(dev, names)


def default_source() -> str:
    """'udev' when udevd's database exists (host, or host network with /run/udev), else 'kernel'.

    Inside a container there is no udevd broadcast to hear unless it shares the host network
    namespace; kernel uevents arrive either way.
    """
    if Path("/run/udev/control").exists() or "UMOCKDEV_DIR" in os.environ:
        return "udev"
    # umockdev sets UMOCKDEV_DIR only in the C environment, not in os.environ.
    if "libumockdev-preload" in os.environ.get("LD_PRELOAD", ""):
        return "udev"
    return "kernel"


class UdevMonitor:
    """Hotplug events, filtered in the kernel by subsystem, handed to a queue without loss.

    The observer thread does nothing but snapshot and enqueue: pyudev's observer thread dies
    silently if its callback raises.
    """

    def __init__(
        self,
        subsystems: Iterable[str],
        attributes: Iterable[str],
        source: str | None = None,
        context: pyudev.Context | None = None,
        events: queue.Queue[object] | None = None,
    ) -> None:
        self.attributes = tuple(attributes)
        # The daemon passes its own queue, so udev events and its other wake-ups share one.
        self.events: queue.Queue[object] = events if events is not None else queue.Queue()
        self._nodes: dict[str, str] = {}  # sys_path -> node: a remove event may lack DEVNAME
        self._lock = threading.Lock()
        context = context or pyudev.Context()
        self.source = source or default_source()
        try:
            self.monitor = pyudev.Monitor.from_netlink(context, source=self.source)
            for subsystem in sorted(set(subsystems)):
                self.monitor.filter_by(subsystem=subsystem)
            try:
                self.monitor.set_receive_buffer_size(RECEIVE_BUFFER)
            except (
                OSError,
                pyudev.DeviceNotFoundError,
            ) as err:  # needs CAP_NET_ADMIN above rmem_max
                log.info("cannot raise the netlink receive buffer: %s", err)
        except (OSError, ValueError) as err:
            raise UdevError(f"cannot open the udev netlink socket ({self.source}): {err}") from err
        self._observer = pyudev.MonitorObserver(self.monitor, callback=self._on_event, name="udev")

    def remember_path(self, sys_path: str, node: str | None) -> None:
        """Seed the node cache from coldplug, so an early remove still names its node."""
        if node:
            with self._lock:
                self._nodes[sys_path] = node

    def _on_event(self, dev: pyudev.Device) -> None:
        try:
            action = Action(dev.action)
        except ValueError:
            return  # "online"/"offline"/"move": nothing a plugin grants depends on them
        try:
            device = snapshot(dev, self.attributes if action != Action.REMOVE else ())
            with self._lock:
                if action == Action.REMOVE:
                    node = self._nodes.pop(device.sys_path, None)
                    if device.node is None and node is not None:
                        device = _with_node(device, node)
                elif device.node:
                    self._nodes[device.sys_path] = device.node
            self.events.put(UdevEvent(action, device))
        except Exception:  # never let the observer thread die
            log.exception("dropped a udev event for %s", getattr(dev, "sys_path", "?"))

    def start(self) -> None:
        self._observer.start()

    def stop(self) -> None:
        if self._observer.is_alive():
            self._observer.stop()

    def batches(self, timeout: float | None = None) -> Iterator[list[object]]:
        """Bursts of events, until none comes for `timeout` seconds (None: forever)."""
        while (burst := next_burst(self.events, timeout=timeout)) is not None:
            yield burst


def next_burst(
    events: queue.Queue[object], window_s: float = 0.0, timeout: float | None = None
) -> list[object] | None:
    """Block for the next item, then take whatever else is queued with it or arrives within
    `window_s`; None when nothing came for `timeout` seconds.

    The first event of a burst is never delayed by the window; the rest of the burst, queued
    behind it, is handled in the same batch, so a hub re-enumerating costs one pass.
    """
    try:
        burst = [events.get(timeout=timeout)]
    except queue.Empty:
        return None
    deadline = time.monotonic() + window_s
    while True:
        left = deadline - time.monotonic()
        try:
            burst.append(events.get(timeout=left) if left > 0 else events.get_nowait())
        except queue.Empty:
            return burst


def _with_node(device: UdevDevice, node: str) -> UdevDevice:
    return replace(device, node=node)
