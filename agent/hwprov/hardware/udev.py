"""The udev edge: coldplug enumeration and a hotplug monitor, both yielding `UdevDevice` snapshots.

This is the only module that touches pyudev. Snapshots are taken here, in the monitor thread,
while sysfs still holds the device; the core never sees a pyudev object.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import select
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import pyudev
from pyudev._util import udev_list_iterate  # type: ignore[import-untyped]

from hwprov import threads
from hwprov.errors import UdevError
from hwprov.hardware.senders import SENDER_GONE, UDEVD_BINARIES, SenderCheck, udevd_binaries
from hwprov.records import (
    Action,
    Ancestor,
    MonitorLost,
    Props,
    UdevDevice,
    UdevEvent,
    UntrustedUevent,
)

log = logging.getLogger(__name__)

# Bursts (a hub re-enumerating) overflow the default socket buffer and end in ENOBUFS;
# Home Assistant's supervisor uses the same 32 MiB.
RECEIVE_BUFFER = 32 * 1024 * 1024
# More losses of the monitor than this within the window: it does not stay open, and the owner
# is better off exiting for its service manager to restart it.
MAX_LOSSES, LOSS_WINDOW_S = 5, 60.0
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
        pairs = _property_pairs(dev)
    except (UnicodeDecodeError, OSError):
        return props
    for key, value in pairs:
        try:
            props[_text(key)] = _text(value)
        except (UnicodeDecodeError, OSError):
            continue  # one undecodable property must not lose the device
    return props


def _property_pairs(dev: pyudev.Device) -> list[tuple[bytes | str, bytes | str]]:
    """Names and values from the one list libudev keeps: pyudev's mapping looks each name up
    again (a third of a scan's time on real sysfs, bench/real_scan.py)."""
    try:
        libudev = dev._libudev
        entry = libudev.udev_device_get_properties_list_entry(dev)
    except AttributeError:  # a pyudev without these internals: its public mapping
        return [(key, dev.properties.get(key, "")) for key in iter(dev.properties)]
    return [(name, value or b"") for name, value in udev_list_iterate(libudev, entry)]


def _attributes(dev: pyudev.Device, names: Iterable[str]) -> Props:
    # Only the files that are there: most devices have few of the attributes plugins name, and
    # asking libudev for a missing one costs a failed open each time.
    wanted = tuple(names)
    try:
        present = set(os.listdir(dev.sys_path)).intersection(wanted)
    except OSError:
        present = set(wanted)
    values = {}
    for name in wanted:
        if name not in present:
            continue
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


@functools.cache
def scan_context() -> pyudev.Context:
    """The udev context enumerations share: each new one looks libudev up through ldconfig
    (a subprocess, 1.7 ms), a tenth of a scan on real sysfs. Enumerations run on the main
    thread only; monitors make their own."""
    return pyudev.Context()


def coldplug(
    subsystems: Iterable[str], attributes: Iterable[str], context: pyudev.Context | None = None
) -> Iterator[UdevDevice]:
    wanted = sorted(set(subsystems))
    if not wanted:
        return  # an enumerator with no match would list every device
    context = context or scan_context()
    names = tuple(attributes)
    # One enumeration for all subsystems (libudev ORs the matches): one per subsystem scanned
    # sysfs once each, a fifth of a scan on real sysfs.
    devices = context.list_devices()
    for subsystem in wanted:
        devices = devices.match_subsystem(subsystem)
    for dev in devices:
        yield snapshot(dev, names)


def default_source() -> str:
    """'udev' when udevd's database exists (host, or host network with /run/udev), else 'kernel'.

    Inside a container there is no udevd broadcast to hear unless it shares the host network
    namespace; kernel uevents arrive either way.
    """
    if Path("/run/udev/control").exists() or under_umockdev():
        return "udev"
    return "kernel"


def under_umockdev() -> bool:
    """Inside umockdev's testbed, whose "netlink" is a unix socket its own process sends on."""
    # umockdev sets UMOCKDEV_DIR only in the C environment, not always in os.environ.
    return "UMOCKDEV_DIR" in os.environ or "libumockdev-preload" in os.environ.get("LD_PRELOAD", "")


class Netlink(Protocol):
    """What the monitor thread uses of a `pyudev.Monitor` (tests pass one that fails)."""

    def fileno(self) -> int: ...
    def start(self) -> None: ...
    def poll(self, timeout: float | None = None) -> pyudev.Device | None: ...


def open_netlink(
    source: str,
    subsystems: Iterable[str],
    context: pyudev.Context | None = None,
    buffer: int = RECEIVE_BUFFER,
) -> Netlink:
    """A netlink monitor filtered in the kernel by subsystem, not yet receiving, with a
    receive buffer of `buffer` bytes (the kernel doubles it for its own accounting)."""
    try:
        monitor = pyudev.Monitor.from_netlink(context or pyudev.Context(), source=source)
        for subsystem in subsystems:
            monitor.filter_by(subsystem=subsystem)
        try:
            monitor.set_receive_buffer_size(buffer)
        except (OSError, pyudev.DeviceNotFoundError) as err:  # CAP_NET_ADMIN above rmem_max
            log.info("cannot raise the netlink receive buffer: %s", err)
    except (OSError, ValueError) as err:
        raise UdevError(f"cannot open the udev netlink socket ({source}): {err}") from err
    return monitor


class UdevMonitor:
    """Hotplug events, filtered in the kernel by subsystem, handed to a queue.

    Its thread only snapshots and enqueues. When the socket fails (ENOBUFS after an overrun:
    events were dropped) the thread puts a `MonitorLost` on the queue and ends, instead of
    dying with a traceback and leaving the process deaf: the owner reopens (`reopen`) and
    enumerates again.

    Each message's sender is checked first (`senders.SenderCheck`): one that neither the kernel
    nor udevd sent is dropped unread and reported once per sender as an `UntrustedUevent`. The
    fakes that tests pass as `opener`, and umockdev's testbed, are not the kernel's netlink
    (umockdev's sender is the simulator itself), so the check is off with them unless
    `check_senders` asks for it.
    """

    def __init__(
        self,
        subsystems: Iterable[str],
        attributes: Iterable[str],
        source: str | None = None,
        context: pyudev.Context | None = None,
        events: queue.SimpleQueue[object] | None = None,
        opener: Callable[[str, tuple[str, ...]], Netlink] | None = None,
        check_senders: bool | None = None,
        udevd_paths: Iterable[str] = UDEVD_BINARIES,
        buffer: int = RECEIVE_BUFFER,
        on_remove: Callable[[UdevEvent], None] | None = None,
    ) -> None:
        self.subsystems = tuple(sorted(set(subsystems)))
        self.attributes = tuple(attributes)
        # The daemon passes its own queue, so udev events and its other wake-ups share one. A
        # SimpleQueue: signal handlers put on it too, and only its put is reentrant (a
        # Queue's lock, held by the main thread inside get when a handler runs there, is not).
        self.events: queue.SimpleQueue[object] = queue.SimpleQueue() if events is None else events
        # Told of each remove in this thread, before the queue: it must only hand it on.
        self.on_remove = on_remove
        self._nodes: dict[str, str] = {}  # sys_path -> node: a remove event may lack DEVNAME
        self._lock = threading.Lock()
        self.source = source or default_source()
        self._opener = opener
        self.buffer = buffer
        if opener is not None:
            self.netlink = opener(self.source, self.subsystems)
        else:
            self.netlink = open_netlink(self.source, self.subsystems, context, buffer)
        if check_senders is None:
            check_senders = opener is None and not under_umockdev()
        self._check_senders = check_senders
        self._udevd_paths = tuple(udevd_paths)
        self._untrusted: set[tuple[int, str]] = set()  # (pid, reason) already reported
        self._stop_r, self._stop_w = os.pipe()
        self._closed = False
        self._losses: list[float] = []  # when the monitors before this one were lost
        self._thread = threading.Thread(target=self._run, name="hwprov-udev", daemon=True)

    def remember_path(self, sys_path: str, node: str | None) -> None:
        """Seed the node cache from coldplug, so an early remove still names its node."""
        if node:
            with self._lock:
                self._nodes[sys_path] = node

    def _on_event(self, dev: pyudev.Device) -> None:
        received = time.monotonic_ns()
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
            event = UdevEvent(action, device, received)
            if action == Action.REMOVE and self.on_remove is not None:
                self.on_remove(event)
            self.events.put(event)
        except Exception:  # one device's broken sysfs must not cost a resync
            log.exception("dropped a udev event for %s", getattr(dev, "sys_path", "?"))

    def _run(self) -> None:
        check = None
        try:
            fileno = self.netlink.fileno()
            if self._check_senders:
                check = SenderCheck(fileno, udevd_binaries(self._udevd_paths))
            poller = select.poll()
            poller.register(fileno, select.POLLIN)
            poller.register(self._stop_r, select.POLLIN)
            while True:
                for fd, mask in poller.poll():
                    if fd == self._stop_r:
                        return
                    if mask & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
                        raise _socket_error(fd, mask)
                    if check is None:
                        while (dev := self.netlink.poll(timeout=0)) is not None:
                            self._on_event(dev)
                    else:
                        self._receive_checked(check)
        except Exception as err:  # whatever it was, the events after it are not coming
            self.events.put(MonitorLost(f"the udev monitor stopped: {err}"))
        finally:
            if check is not None:
                check.close()

    def _receive_checked(self, check: SenderCheck) -> None:
        """Every waiting message, each peeked at before libudev reads it.

        libudev reads on by itself past a message it ignores, unpeeked; with the subsystem
        filter in the kernel, udevd's messages that reach here all pass libudev's own filter,
        and a kernel-group message is checked by libudev itself (port id 0), so nothing an
        outsider sends is read that way.
        """
        while (sender := check.peek()) is not None:
            reason = check.problem(sender)
            if reason is None:
                if (dev := self.netlink.poll(timeout=0)) is not None:
                    self._on_event(dev)
                continue
            check.drop()
            if (sender.pid, reason) not in self._untrusted:
                self._untrusted.add((sender.pid, reason))
                log.warning("dropped a uevent: %s (%s)", reason, sender.describe())
                self.events.put(UntrustedUevent(sender.describe(), reason, reason == SENDER_GONE))

    def start(self) -> None:
        """Receive from now on, so an enumeration started after this misses nothing."""
        try:
            self.netlink.start()  # here, not in the thread: it must be done when this returns
        except OSError as err:
            raise UdevError(f"cannot open the udev netlink socket ({self.source}): {err}") from err
        threads.start(self._thread)

    def stop(self) -> None:
        """Stop the thread (at once if it ended already); idempotent."""
        if self._closed:
            return
        self._closed = True
        os.write(self._stop_w, b"x")
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        os.close(self._stop_r)
        os.close(self._stop_w)

    def reopen(self, why: str = "it was lost") -> UdevMonitor:
        """A new monitor like this one, on the same queue and already started, for when this
        one was lost; it keeps the nodes this one learnt. UdevError when no socket opens, or
        when monitors keep being lost (more than MAX_LOSSES in LOSS_WINDOW_S): reopening in a
        loop would only burn the CPU."""
        self.stop()
        now = time.monotonic()
        losses = [t for t in self._losses if now - t < LOSS_WINDOW_S] + [now]
        if len(losses) > MAX_LOSSES:
            raise UdevError(
                f"the udev monitor was lost {len(losses)} times in {LOSS_WINDOW_S:.0f} s ({why})"
            )
        fresh = UdevMonitor(
            self.subsystems,
            self.attributes,
            self.source,
            events=self.events,
            opener=self._opener,
            check_senders=self._check_senders,
            udevd_paths=self._udevd_paths,
            buffer=self.buffer,
            on_remove=self.on_remove,
        )
        fresh._losses = losses
        with self._lock:
            fresh._nodes.update(self._nodes)
        try:
            fresh.start()
        except UdevError:
            fresh.stop()
            raise
        return fresh


def _socket_error(fd: int, mask: int) -> OSError:
    """The error pending on the socket (ENOBUFS after an overrun), read and cleared."""
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    except OSError as err:
        return err
    if code:
        return OSError(code, os.strerror(code))
    return OSError(f"the socket reported poll events {mask:#x}")


def resync_reason(items: Iterable[object], asked: bool) -> str | None:
    """Why what is attached must be enumerated again after this burst, or None: the monitor
    was lost, a uevent whose sender was gone could not be believed, or `asked` (SIGHUP)."""
    taken = list(items)
    lost = next((i for i in taken if isinstance(i, MonitorLost)), None)
    if lost is not None:
        return lost.reason
    unsure = next((i for i in taken if isinstance(i, UntrustedUevent) and i.resync), None)
    if unsure is not None:
        return unsure.reason
    return "SIGHUP" if asked else None


def next_burst(
    events: queue.SimpleQueue[object], window_s: float = 0.0, timeout: float | None = None
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


def quiet_tail(
    events: queue.SimpleQueue[object],
    quiet_s: float,
    most_s: float,
    urgent: Callable[[object], bool] = lambda _: False,
) -> list[object]:
    """What else arrives until the queue has been quiet for `quiet_s`, for at most `most_s`,
    or until an `urgent` item (SIGTERM's) arrives.

    For a storm: a hub re-enumerating, or adapters plugged and pulled in a burst, keeps sending
    while the last pass swapped containers; planning each slice of it would swap the same
    services again and again. Waiting for the quiet plans the burst once, as it ended.
    """
    taken: list[object] = []
    deadline = time.monotonic() + most_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            taken.append(events.get(timeout=min(quiet_s, left)))
        except queue.Empty:
            break
        if urgent(taken[-1]):
            break
    return taken


def _with_node(device: UdevDevice, node: str) -> UdevDevice:
    return replace(device, node=node)
