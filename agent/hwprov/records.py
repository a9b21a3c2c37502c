"""The records that flow through hwprov: plain, frozen, JSON-serialisable.

No pyudev object crosses into the core: the udev source turns each device into a `UdevDevice`
snapshot, plugins turn snapshots into `Hardware`, and say what a container needs as a `Grant`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """Kinds the built-in plugins produce. Third-party plugins may use any other string."""

    I2C = "i2c"
    SERIAL = "serial"
    GPIO = "gpio"
    BLUETOOTH = "bluetooth"


class Action(StrEnum):
    ADD = "add"
    REMOVE = "remove"
    CHANGE = "change"
    BIND = "bind"
    UNBIND = "unbind"


class UnplugPolicy(StrEnum):
    """What happens to a service when its required hardware goes (io.hwprov.on-unplug)."""

    RECREATE = "recreate"  # recreated without the device, and again when it is back
    STOP = "stop"  # held stopped until the hardware is back


class GrantMode(StrEnum):
    """How a service gets its devices (io.hwprov.grant)."""

    RECREATE = "recreate"  # in the container's config: kept by a plain `docker start`
    LIVE = "live"  # into the running container, no restart; granted again on every start


class Props(Mapping[str, str]):
    """An immutable, hashable str -> str mapping, so records stay frozen all the way down."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items: tuple[tuple[str, str], ...] = tuple(sorted((str(k), str(v)) for k, v in pairs))

    def __getitem__(self, key: str) -> str:
        for k, v in self._items:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Props):
            return self._items == other._items
        return isinstance(other, Mapping) and dict(self._items) == dict(other)

    def __repr__(self) -> str:
        return f"Props({dict(self._items)!r})"


@dataclass(frozen=True, slots=True)
class Ancestor:
    """One parent of a udev device, with only what plugins look at."""

    sys_path: str
    subsystem: str | None
    devtype: str | None
    driver: str | None
    attributes: Props = field(default_factory=Props)


@dataclass(frozen=True, slots=True)
class UdevDevice:
    """A snapshot of one udev device, taken at the edge.

    `properties` are what udev reported (kernel uevent properties, plus ID_* when a udev database
    exists); `attributes` are the sysfs attributes read at snapshot time, which exist either way.
    """

    sys_path: str
    subsystem: str
    sys_name: str
    devtype: str | None = None
    driver: str | None = None
    node: str | None = None
    major: int | None = None
    minor: int | None = None
    node_gid: int | None = None
    node_mode: int | None = None
    properties: Props = field(default_factory=Props)
    attributes: Props = field(default_factory=Props)
    links: tuple[str, ...] = ()
    ancestors: tuple[Ancestor, ...] = ()

    def ancestor(self, subsystem: str, devtype: str | None = None) -> Ancestor | None:
        """The nearest parent of that subsystem (and devtype), like pyudev's find_parent."""
        for a in self.ancestors:
            if a.subsystem == subsystem and (devtype is None or a.devtype == devtype):
                return a
        return None

    @property
    def is_virtual(self) -> bool:
        return self.sys_path.startswith("/sys/devices/virtual/")


@dataclass(frozen=True, slots=True)
class UdevEvent:
    """A udev event as the monitor saw it: the action and a snapshot of the device."""

    action: Action
    device: UdevDevice
    # time.monotonic_ns() when it came off the socket (0: not from a monitor): where hwprov's
    # own time on the way from a plug to a container starts
    received_ns: int = 0


@dataclass(frozen=True, slots=True)
class MonitorLost:
    """The udev monitor stopped (its socket overran, or failed): the events it would have
    delivered are gone, so what is attached must be enumerated again."""

    reason: str


@dataclass(frozen=True, slots=True)
class UntrustedUevent:
    """A uevent that neither the kernel nor udevd sent was dropped unread (said once per sender
    and reason). Nothing it claimed is believed; the daemon says so in a decision line. With
    `resync`, its sender was gone before it could be looked at, so it may have been udevd's
    (an idle worker exits): what is attached is enumerated again rather than lost."""

    sender: str
    reason: str
    resync: bool = False


@dataclass(frozen=True, slots=True)
class ProbedDevice:
    """Something a probe found behind a device, e.g. a sensor at an I2C address."""

    address: str
    model: str | None
    state: str  # "identified", "unknown" (answers, not recognised) or "busy" (a driver owns it)


@dataclass(frozen=True, slots=True)
class Hardware:
    """A piece of attached hardware as a plugin classified it.

    `id` is stable across re-enumeration and across the two ways a device can be seen (with a
    udev database, or kernel-only inside a container): it is built from sysfs, not from ID_*.
    """

    id: str
    kind: str
    name: str
    plugin: str
    sys_path: str
    node: str | None = None
    major: int | None = None
    minor: int | None = None
    node_gid: int | None = None
    node_mode: int | None = None
    links: tuple[str, ...] = ()
    details: Props = field(default_factory=Props)
    probed: tuple[ProbedDevice, ...] = ()
    # Granted only when a service names it explicitly (e.g. /dev/mem): never offered by kind.
    explicit_only: bool = False
    # Another part of the system uses it (the kernel console, a serdev driver, ModemManager):
    # never given for a kind alone, only to a match that says more. Says who, for the plan.
    owner: str | None = None

    @classmethod
    def from_device(
        cls,
        device: UdevDevice,
        *,
        kind: str,
        id: str,
        plugin: str,
        details: Mapping[str, str | None] | None = None,  # None values are left out
        explicit_only: bool = False,
        owner: str | None = None,
    ) -> Hardware:
        """A record carrying the snapshot's node facts; the plugin supplies identity and details."""
        return cls(
            id=id,
            kind=kind,
            name=device.sys_name,
            plugin=plugin,
            sys_path=device.sys_path,
            node=device.node,
            major=device.major,
            minor=device.minor,
            node_gid=device.node_gid,
            node_mode=device.node_mode,
            links=device.links,
            details=Props({k: v for k, v in (details or {}).items() if v is not None}),
            explicit_only=explicit_only,
            owner=owner,
        )

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = to_json(self)
        return doc


@dataclass(frozen=True, slots=True)
class Refused:
    """Hardware a plugin recognised whose node is not what udev said (outside /dev, a link, other
    numbers): kept out of the inventory, so nothing maps it, and reported."""

    hardware: Hardware
    reason: str


@dataclass(frozen=True, slots=True)
class DeviceNode:
    """A node to map: Docker's Devices entry, with the numbers for exact cgroup rules."""

    path_on_host: str
    path_in_container: str
    permissions: str = "rw"
    major: int | None = None
    minor: int | None = None
    # "c" character or "b" block: the two have separate number spaces (c 8:0 is not b 8:0).
    node_type: str = "c"

    @property
    def cgroup_rule(self) -> str | None:
        return cgroup_rule(self.major, self.minor, self.permissions, self.node_type)


def cgroup_rule(
    major: int | None, minor: int | None, permissions: str, node_type: str = "c"
) -> str | None:
    """The exact device-cgroup rule for one node: `c MAJOR:MINOR perms` (or `b ...`)."""
    if major is None or minor is None:
        return None
    return f"{node_type} {major}:{minor} {permissions}"


@dataclass(frozen=True, slots=True)
class Mount:
    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class Grant:
    """What a container needs to use one piece of hardware, and no more."""

    hardware_id: str
    reason: str
    devices: tuple[DeviceNode, ...] = ()
    capabilities: tuple[str, ...] = ()
    group_add: tuple[str, ...] = ()
    network_mode: str | None = None
    mounts: tuple[Mount, ...] = ()
    env: Props = field(default_factory=Props)
    # balena feature labels that give the same access on a supervisor-managed device
    labels: Props = field(default_factory=Props)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = to_json(self)
        return doc


# What a plugin host's grant hook looks like from outside: None when no plugin claims it.
GrantFn = Callable[[Hardware], Grant | None]


@dataclass(frozen=True, slots=True)
class HardwareEvent:
    """A change in the inventory: what was added, removed or changed."""

    action: Action
    hardware: Hardware


def to_json(record: Any) -> Any:
    """Plain JSON types for any record above (dataclasses, Props, tuples, enums)."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {f.name: to_json(getattr(record, f.name)) for f in dataclasses.fields(record)}
    if isinstance(record, Props):
        return dict(record)
    if isinstance(record, StrEnum):
        return str(record)
    if isinstance(record, tuple | list):
        return [to_json(x) for x in record]
    return record
