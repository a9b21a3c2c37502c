"""Board descriptions (hw-fixtures/*.yaml), parsed and checked into frozen records.

Pure: no umockdev here. A broken file gives BoardError naming the file and the entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from hwprov.errors import BoardError
from hwprov.hardware.nodeview import under_dev
from hwprov.records import Props
from hwprov.sim.paths import fixtures_dir

_DEV = re.compile(r"^(\d+):(\d+)$")
NACK_ERRNOS = {"EREMOTEIO": 121, "ENXIO": 6, "EIO": 5}
UEVENT_BUFFER_SIZE = 2048  # the kernel's limit for one uevent's properties (kobject.h)


@dataclass(frozen=True, slots=True)
class BoardDevice:
    path: str  # sysfs devpath without /sys, e.g. /devices/platform/soc/fe804000.i2c
    subsystem: str
    devtype: str | None = None
    driver: str | None = None
    node: str | None = None  # /dev-relative name
    major: int | None = None
    minor: int | None = None
    attributes: Props = field(default_factory=Props)
    properties: Props = field(default_factory=Props)  # kernel uevent properties
    udev: Props = field(default_factory=Props)  # udev database properties (ID_*, ...)
    links: tuple[str, ...] = ()  # udev symlinks, /dev-relative
    unit: str | None = None  # set on a hot-pluggable unit's top device
    plugged: bool = True


@dataclass(frozen=True, slots=True)
class I2CBus:
    bus: int
    nack_errno: int
    chips: tuple[tuple[int, str], ...]  # (address, model)


@dataclass(frozen=True, slots=True)
class Board:
    board: str
    name: str
    provenance: str
    source: str
    devices: tuple[BoardDevice, ...]
    i2c: tuple[I2CBus, ...] = ()
    # What no kernel or udevd would announce; the board still runs, so hostile cases are testable.
    warnings: tuple[str, ...] = ()

    def unit_devices(self, unit: str) -> tuple[BoardDevice, ...]:
        """The unit's top device and everything below its path, parents first."""
        tops = [d for d in self.devices if d.unit == unit]
        if not tops:
            raise KeyError(unit)
        top = tops[0].path
        below = [d for d in self.devices if d.path == top or d.path.startswith(top + "/")]
        return tuple(sorted(below, key=lambda d: d.path.count("/")))

    @property
    def units(self) -> tuple[str, ...]:
        return tuple(d.unit for d in self.devices if d.unit)

    def boot_devices(self) -> tuple[BoardDevice, ...]:
        absent = {
            p.path for u in self.units if not self._top(u).plugged for p in self.unit_devices(u)
        }
        return tuple(
            sorted(
                (d for d in self.devices if d.path not in absent), key=lambda d: d.path.count("/")
            )
        )

    def _top(self, unit: str) -> BoardDevice:
        return next(d for d in self.devices if d.unit == unit)


_NUMBERED_TTY = re.compile(r"^(ttyUSB|ttyACM)(\d+)$")
_USB_NODE = re.compile(r"^bus/usb/(\d{3})/(\d{3})$")


def enumerate_unit(
    devices: Iterable[BoardDevice], present: Iterable[str], last_devnum: dict[int, int]
) -> tuple[BoardDevice, ...]:
    """The unit's devices as the kernel would number them when plugged in now.

    usb-serial and cdc-acm take the lowest free minor (ttyUSB0 comes back as ttyUSB1 while
    ttyUSB0 is held), and a USB device gets the next device number on its bus, round-robin
    (usb_alloc_dev's devnum_next). `last_devnum` is updated in place.
    """
    taken = set(present)
    renames: dict[str, str] = {}
    out = []
    for d in devices:
        m = _NUMBERED_TTY.match(d.node or "")
        if m:
            prefix = m.group(1)
            n = next(i for i in range(1024) if f"{prefix}{i}" not in taken)
            name = f"{prefix}{n}"
            taken.add(name)
            renames[d.node or ""] = name
            d = replace(d, node=name, minor=n)
        u = _USB_NODE.match(d.node or "")
        if u:
            bus = int(u.group(1))
            devnum = last_devnum.get(bus, int(u.group(2)) - 1) % 127 + 1
            while f"bus/usb/{bus:03d}/{devnum:03d}" in taken:
                devnum = devnum % 127 + 1
            last_devnum[bus] = devnum
            taken.add(f"bus/usb/{bus:03d}/{devnum:03d}")
            d = replace(
                d,
                node=f"bus/usb/{bus:03d}/{devnum:03d}",
                minor=(bus - 1) * 128 + devnum - 1,
                properties=Props({**d.properties, "DEVNUM": f"{devnum:03d}"}),
                attributes=Props({**d.attributes, "devnum": str(devnum)}),
            )
        out.append(d)
    # The tty's name is also a directory name on its sysfs path (.../1-2:1.0/ttyUSB0/tty/ttyUSB0).
    return tuple(
        replace(d, path="/".join(renames.get(part, part) for part in d.path.split("/")))
        for d in out
    )


def _props(value: Any, where: str, key: str, source: str) -> Props:
    if value is None:
        return Props()
    if not isinstance(value, dict):
        raise BoardError(source, where, f"'{key}' must be a mapping of names to values")
    return Props({str(k): "" if v is None else str(v) for k, v in value.items()})


def _device(raw: Any, index: int, source: str) -> BoardDevice:
    where = f"devices[{index}]"
    if not isinstance(raw, dict):
        raise BoardError(source, where, "must be a mapping with at least 'path' and 'subsystem'")
    if raw.get("id"):
        where += f" ({raw['id']})"
    unknown = set(raw) - {
        "id",
        "path",
        "subsystem",
        "devtype",
        "driver",
        "node",
        "dev",
        "attributes",
        "properties",
        "udev",
        "links",
        "plugged",
    }
    if unknown:
        raise BoardError(source, where, f"unknown keys {sorted(unknown)}")
    path, subsystem = raw.get("path"), raw.get("subsystem")
    if not isinstance(path, str) or not path.startswith("/devices/") or ".." in path.split("/"):
        raise BoardError(
            source, where, f"'path' must be a sysfs path under /devices/, got {path!r}"
        )
    if not isinstance(subsystem, str) or not subsystem:
        raise BoardError(source, where, "'subsystem' is required")
    node, major, minor = raw.get("node"), None, None
    if node is not None:
        m = _DEV.match(str(raw.get("dev", "")))
        if not m:
            raise BoardError(source, where, f"'dev' must be MAJOR:MINOR, got {raw.get('dev')!r}")
        major, minor = int(m.group(1)), int(m.group(2))
        if not isinstance(node, str) or node.startswith("/") or ".." in node.split("/"):
            raise BoardError(source, where, f"'node' must be a name relative to /dev, got {node!r}")
    links = raw.get("links") or []
    if not isinstance(links, list) or not all(isinstance(x, str) for x in links):
        raise BoardError(source, where, "'links' must be a list of /dev-relative names")
    props = {
        **_props(raw.get("properties"), where, "properties", source),
        **_props(raw.get("udev"), where, "udev", source),
    }
    size = sum(len(k) + len(v) + 2 for k, v in props.items()) + len(path) + 64
    if size > UEVENT_BUFFER_SIZE:
        raise BoardError(
            source,
            where,
            f"properties take {size} bytes; a uevent holds at most "
            f"{UEVENT_BUFFER_SIZE} (the kernel's UEVENT_BUFFER_SIZE)",
        )
    return BoardDevice(
        path=path,
        subsystem=subsystem,
        devtype=raw.get("devtype"),
        driver=raw.get("driver"),
        node=node,
        major=major,
        minor=minor,
        attributes=_props(raw.get("attributes"), where, "attributes", source),
        properties=_props(raw.get("properties"), where, "properties", source),
        udev=_props(raw.get("udev"), where, "udev", source),
        links=tuple(links),
        unit=raw.get("id"),
        plugged=bool(raw.get("plugged", True)),
    )


def _consoles(count: Any, active: Any, source: str) -> list[BoardDevice]:
    """Virtual consoles tty0..N-1 plus tty, console, ptmx: every real board has them. `active`
    is the kernel's console list (`console=` on the command line), as /sys/class/tty/console/
    active shows it: "tty1 ttyS0"."""
    if not isinstance(count, int) or not 0 <= count <= 64:
        raise BoardError(source, "consoles", "must be a number of virtual consoles, 0 to 64")
    if not isinstance(active, str):
        raise BoardError(source, "console", "must be the active consoles, e.g. 'tty1 ttyS0'")
    out = [
        BoardDevice(f"/devices/virtual/tty/tty{n}", "tty", node=f"tty{n}", major=4, minor=n)
        for n in range(count)
    ]
    for name, minor in (("tty", 0), ("console", 1), ("ptmx", 2)):
        attributes = Props({"active": active} if name == "console" else {})
        out.append(
            BoardDevice(
                f"/devices/virtual/tty/{name}", "tty", node=name, major=5, minor=minor,
                attributes=attributes,
            )
        )  # fmt: skip
    return out


def _i2c(raw: Any, index: int, source: str, nodes: set[str]) -> I2CBus:
    where = f"i2c[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("bus"), int):
        raise BoardError(source, where, "must be a mapping with an integer 'bus'")
    bus = raw["bus"]
    if f"i2c-{bus}" not in nodes:
        raise BoardError(source, where, f"no device has node i2c-{bus}")
    nack = raw.get("nack", "EREMOTEIO")
    if nack not in NACK_ERRNOS:
        raise BoardError(source, where, f"'nack' must be one of {sorted(NACK_ERRNOS)}")
    from hwprov.sim.sensors import MODELS

    chips = []
    for addr, model in (raw.get("chips") or {}).items():
        address = addr if isinstance(addr, int) else int(str(addr), 0)
        if not 0x03 <= address <= 0x77:
            raise BoardError(source, f"{where} chip {addr}", "address must be 0x03..0x77")
        if model not in MODELS:
            raise BoardError(
                source, f"{where} chip {addr}", f"unknown model {model!r}; known: {sorted(MODELS)}"
            )
        chips.append((address, str(model)))
    return I2CBus(bus, NACK_ERRNOS[nack], tuple(sorted(chips)))


def parse_board(text: str, source: str) -> Board:
    try:
        doc = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise BoardError(source, where, f"not valid YAML: {err.problem}") from None
    if not isinstance(doc, dict):
        raise BoardError(source, "top", "expected a mapping with board, name, provenance, devices")
    for key in ("board", "name", "provenance"):
        if not isinstance(doc.get(key), str) or not doc[key].strip():
            raise BoardError(source, key, "is required (text)")
    raw_devices = doc.get("devices")
    if not isinstance(raw_devices, list) or not raw_devices:
        raise BoardError(source, "devices", "must be a non-empty list")
    devices = [_device(d, i, source) for i, d in enumerate(raw_devices)]
    devices += _consoles(doc.get("consoles", 0), doc.get("console", "tty0"), source)
    seen: set[str] = set()
    for d in devices:
        if d.path in seen:
            raise BoardError(source, d.path, "the same sysfs path is listed twice")
        seen.add(d.path)
    units = [d.unit for d in devices if d.unit]
    if len(units) != len(set(units)):
        raise BoardError(source, "devices", "two devices share an 'id'")
    nodes = {d.node for d in devices if d.node}
    i2c = tuple(_i2c(b, i, source, nodes) for i, b in enumerate(doc.get("i2c") or []))
    warnings = tuple(unrealistic(devices))
    return Board(
        doc["board"], doc["name"], doc["provenance"], source, tuple(devices), i2c, warnings
    )


def unrealistic(devices: list[BoardDevice]) -> list[str]:
    """The nodes these devices announce that no kernel would: the kernel names a node relative
    to /dev with the numbers it has, and `node:`/`dev:` say exactly that, so a DEVNAME, MAJOR or
    MINOR given as a plain property is a lie about the node (or another device's link)."""
    nodes = {d.node: d for d in devices if d.node}
    links = {link for d in devices for link in d.links}
    out = []
    for d in devices:
        given = {k: v for k, v in d.properties.items() if k in ("DEVNAME", "MAJOR", "MINOR")}
        if not given or d.node:  # with a node, the testbed announces node and dev instead
            continue
        name = given.get("DEVNAME", "")
        path = name if name.startswith("/") else f"/dev/{name}"
        if not under_dev(path):
            why = f"DEVNAME '{name}' is not a node below /dev"
        elif name in links:
            why = f"DEVNAME '{name}' is a udev link, not a node"
        elif name in nodes and (nodes[name].major, nodes[name].minor) != _numbers(given):
            owner = nodes[name]
            why = f"DEVNAME '{name}' is {owner.major}:{owner.minor}, not the MAJOR:MINOR given"
        else:
            why = "DEVNAME, MAJOR and MINOR belong in 'node' and 'dev'"
        out.append(f"{d.path}: {why}; hwprov must refuse it (not a realistic board)")
    return out


def _numbers(props: Mapping[str, str]) -> tuple[int | None, int | None]:
    major, minor = props.get("MAJOR", ""), props.get("MINOR", "")
    return (int(major) if major.isdigit() else None, int(minor) if minor.isdigit() else None)


def load_board(name_or_path: str) -> Board:
    path = Path(name_or_path)
    if not path.suffix:
        path = fixtures_dir() / f"{name_or_path}.yaml"
    try:
        text = path.read_text()
    except OSError as err:
        known = ", ".join(sorted(p.stem for p in fixtures_dir().glob("*.yaml")))
        raise BoardError(
            str(path), "file", f"cannot read it ({err.strerror}); boards: {known}"
        ) from None
    return parse_board(text, str(path))
