"""Container Device Interface (CDI) specs for the attached hardware: records in, plain dicts out.

One spec per kind: a CDI spec has exactly one `kind` (vendor/class), and the class is what users
type, `docker run --device hwprov.io/i2c=1`. What a device's entry does to the container is its
plugin's grant, the same record `hwprov plan` maps, so a third-party kind gets a spec with no
code here; what a grant asks for that CDI cannot carry is named in the spec's annotations.
The spec's JSON schema checks shapes only, so `problems()` carries the rules the runtimes'
loader (tags.cncf.io/container-device-interface v0.6.0: pkg/parser, pkg/cdi) applies on top:
names, known fields, the minimum version.

Each spec claims the lowest cdiVersion its fields need (the reference library's
MinimumRequiredVersion rule), since a loader refuses a whole spec newer than it knows: Debian
12's podman 4.3.1 (CDI 0.5) reads a 0.5.0 spec and refuses a 0.6.0 one. Annotations are what
needs 0.6.0, so `bare()` drops them for the runtimes that only read 0.5.0.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hwprov.hardware.nodeview import under_dev
from hwprov.records import DeviceNode, Grant, GrantFn, Hardware, Kind, Mount

# The newest cdiVersion whose loader rules problems() models; specs claim the lowest they need.
NEWEST_VERSION = "0.6.0"
VENDOR = "hwprov.io"
# A bind that brings no device nodes, setuid programs or executables of the host's along with it;
# rbind so that mounts below the source (a tmpfs /run/dbus) come too.
MOUNT_OPTIONS = ("rbind", "nosuid", "nodev", "noexec")

_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_.:-]+")
_NOT_IN_CLASS = re.compile(r"[^A-Za-z0-9_.-]+")
_EDGES = re.compile(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$")
_INTERFACE = re.compile(r":if([0-9A-Fa-f]{2})$")


def sanitise(text: str, *, fallback: str = "device") -> str:
    """A CDI device name: other characters become '_'; it begins and ends alphanumeric."""
    return _EDGES.sub("", _NOT_IN_NAME.sub("_", text)) or fallback


def class_name(kind: str) -> str:
    """The CDI class for a kind; classes (unlike device names) must begin with a letter."""
    cleaned = _EDGES.sub("", _NOT_IN_CLASS.sub("_", kind))
    return cleaned if cleaned[:1].isalpha() else f"kind-{cleaned or 'unknown'}"


def qualified(spec: Mapping[str, Any], device: Mapping[str, Any]) -> str:
    """What users type after --device: `hwprov.io/i2c=1`."""
    return f"{spec['kind']}={device['name']}"


def device_name(hw: Hardware) -> str:
    """Short and stable: the bus number, the adapter's maker and serial, the kernel name."""
    bus = hw.details.get("bus", "")
    if hw.kind == Kind.I2C and bus.isdigit():
        return bus
    if hw.kind == Kind.SERIAL and "vendor_id" in hw.details:
        return _usb_serial_name(hw)
    # On-chip UARTs, gpiochips and hci adapters keep their kernel names across boots.
    return sanitise(hw.name)


def _usb_serial_name(hw: Hardware) -> str:
    d = hw.details
    maker = d.get("manufacturer", "").split()
    label = maker[0].lower() if maker else d["vendor_id"]
    # Without a serial number the identity is where it is plugged (as in Hardware.id).
    where = d.get("serial") or f"usb{d.get('usb_port', '')}"
    found = _INTERFACE.search(hw.id)
    # Multi-port chips (FT4232: if00..if03) share one serial number.
    suffix = f"-if{found.group(1)}" if found and found.group(1) != "00" else ""
    return sanitise(f"{label}-{where}{suffix}")


def _natural(name: str) -> list[Any]:
    # re.split with a group alternates text and digits, so list comparison never mixes types.
    return [int(p) if i % 2 else p for i, p in enumerate(re.split(r"(\d+)", name))]


def _node(d: DeviceNode, path: str) -> dict[str, Any]:
    node: dict[str, Any] = {"path": path}
    if d.path_on_host != path:
        node["hostPath"] = d.path_on_host
    # Without the numbers the runtime reads type and numbers from the host node itself.
    if d.major is not None and d.minor is not None:
        node |= {"type": d.node_type, "major": d.major, "minor": d.minor}
    if d.permissions:  # empty would mean the runtime's default, rwm
        node["permissions"] = d.permissions
    return node


def _mount(m: Mount) -> dict[str, Any]:
    options = [*MOUNT_OPTIONS, "ro"] if m.read_only else list(MOUNT_OPTIONS)
    return {"hostPath": m.source, "containerPath": m.target, "options": options}


def _by_id(hw: Hardware) -> str | None:
    # A plugin may compute by_id from sysfs when there is no udev database (no links).
    by_id = hw.details.get("by_id") or next((link for link in hw.links if "/by-id/" in link), None)
    return by_id if by_id and by_id != hw.node else None


def container_edits(hw: Hardware, g: Grant) -> dict[str, Any]:
    """What the runtime adds to the container for this grant; empty if CDI can carry none of it."""
    nodes = [_node(d, d.path_in_container) for d in g.devices if under_dev(d.path_on_host)]
    own = next((d for d in g.devices if d.path_on_host == hw.node), None)
    by_id = _by_id(hw)
    if own and by_id and all(n["path"] != by_id for n in nodes):
        # Same node again at its stable name, so configs that say by-id work unchanged.
        nodes.append(_node(own, by_id))
    edits: dict[str, Any] = {}
    if g.env:
        edits["env"] = [f"{name}={value}" for name, value in g.env.items()]
    if nodes:
        edits["deviceNodes"] = nodes
    if g.mounts:
        edits["mounts"] = [_mount(m) for m in g.mounts]
    return edits


def _annotations(hw: Hardware) -> dict[str, str]:
    notes = {f"{VENDOR}/id": hw.id}
    if hw.probed:
        notes[f"{VENDOR}/probed"] = " ".join(f"{p.address}={p.model or p.state}" for p in hw.probed)
    return notes


def cannot_express(grants: Iterable[Grant]) -> dict[str, str]:
    """What these grants ask for beyond CDI (network mode, capabilities), as spec annotations.

    `also-needs` is the docker run flags, network first, then capabilities in the order the
    grants give them; `why` says what CDI lacks and gives the grants' own reasons.
    """
    wanting = [g for g in grants if g.network_mode or g.capabilities]
    networks = list(dict.fromkeys(g.network_mode for g in wanting if g.network_mode))
    caps = list(dict.fromkeys(c for g in wanting for c in g.capabilities))
    if not wanting:
        return {}
    flags = [f"--network {n}" for n in networks] + [f"--cap-add {c}" for c in caps]
    lacking = ["the host network" if n == "host" else f"network mode {n}" for n in networks]
    lacking += ["capabilities"] if caps else []
    reasons = "; ".join(dict.fromkeys(g.reason for g in wanting))
    return {
        f"{VENDOR}/also-needs": " ".join(flags),
        f"{VENDOR}/why": (
            f"CDI cannot express {' or '.join(lacking)}; pass these to docker run. {reasons}"
        ),
    }


@dataclass(frozen=True, slots=True)
class _Entry:
    hardware: Hardware
    grant: Grant
    edits: dict[str, Any]


def build_specs(hardware: Iterable[Hardware], grant: GrantFn) -> list[dict[str, Any]]:
    """One CDI spec per kind, classes in order, devices in natural name order.

    Left out: explicit-only hardware (/dev/mem: a spec file would make it a one-flag grant, and
    it needs CAP_SYS_RAWIO, which CDI cannot give), hardware no plugin grants, and grants with
    nothing CDI can carry (no node, mount or variable).
    """
    by_class: dict[str, list[_Entry]] = defaultdict(list)
    for hw in hardware:
        if hw.explicit_only or (g := grant(hw)) is None:
            continue
        if edits := container_edits(hw, g):
            by_class[class_name(hw.kind)].append(_Entry(hw, g, edits))
    return [_spec(cls, by_class[cls]) for cls in sorted(by_class)]


def _spec(cls: str, entries: Sequence[_Entry]) -> dict[str, Any]:
    devices: list[dict[str, Any]] = []
    taken: set[str] = set()
    ordered = sorted(entries, key=lambda e: e.hardware.id)  # by identity: stable suffixes
    for e in ordered:
        base = name = device_name(e.hardware)
        n = 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name)
        devices.append(
            {"name": name, "annotations": _annotations(e.hardware), "containerEdits": e.edits}
        )
    spec: dict[str, Any] = {"cdiVersion": NEWEST_VERSION, "kind": f"{VENDOR}/{cls}"}
    if notes := cannot_express(e.grant for e in ordered):
        spec["annotations"] = notes
    spec["devices"] = sorted(devices, key=lambda d: _natural(d["name"]))
    spec["cdiVersion"] = minimum_version(spec)
    return spec


def bare(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec without annotations, at the lower cdiVersion that leaves it (0.5.0 or less).

    Annotations are for people and tools, not for the runtime, and they alone make a spec
    0.6.0, which CDI 0.5 loaders (podman 4.3, containerd 1.6/1.7.0-1.7.1) refuse whole.
    """
    devices = [{k: v for k, v in d.items() if k != "annotations"} for d in spec["devices"]]
    out = {k: v for k, v in spec.items() if k != "annotations"} | {"devices": devices}
    return out | {"cdiVersion": minimum_version(out)}


# -- what the CDI loader (up to v0.6.0) checks beyond the JSON schema ------------------------

KNOWN_VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.5.0", "0.6.0")
# The Go loader fails on unknown fields; the schema allows them (no additionalProperties).
FIELDS = {
    "spec": {"cdiVersion", "kind", "annotations", "devices", "containerEdits"},
    "device": {"name", "annotations", "containerEdits"},
    "edits": {"env", "deviceNodes", "hooks", "mounts"},
    "node": {"path", "hostPath", "type", "major", "minor", "fileMode", "permissions", "uid", "gid"},
    "mount": {"hostPath", "containerPath", "options", "type"},
    "hook": {"hookName", "path", "args", "env", "timeout"},
}
_VENDOR_OR_CLASS = re.compile(r"[A-Za-z](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?")
_DEVICE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.:-]*[A-Za-z0-9])?")
# Annotation keys are Kubernetes qualified names: [DNS subdomain/]name, checked lowercased.
_DNS_SUBDOMAIN = re.compile(
    r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
)
_QUALIFIED_NAME = re.compile(r"[a-z0-9](?:[-a-z0-9_.]*[a-z0-9])?")


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


def minimum_version(spec: Mapping[str, Any]) -> str:
    """The lowest cdiVersion whose loader accepts the fields this spec uses.

    The reference library's rule (pkg/cdi/version.go, MinimumRequiredVersion) for the fields
    up to 0.6.0: annotations and a dot in the class need 0.6.0; a device name that does not
    begin with a letter and a node's hostPath 0.5.0; a mount's type 0.4.0; 0.3.0 is the
    earliest the loaders accept.
    """
    devices = spec.get("devices") or []
    edits = [d.get("containerEdits") or {} for d in devices] + [spec.get("containerEdits") or {}]
    cls = str(spec.get("kind", "")).partition("/")[2]
    if spec.get("annotations") or any(d.get("annotations") for d in devices) or "." in cls:
        return "0.6.0"
    not_letter_first = any(_not_letter(str(d.get("name", ""))[:1]) for d in devices)
    if not_letter_first or any(
        n.get("hostPath") for e in edits for n in e.get("deviceNodes") or []
    ):
        return "0.5.0"
    if any(m.get("type") for e in edits for m in e.get("mounts") or []):
        return "0.4.0"
    return "0.3.0"


def _not_letter(first: str) -> bool:
    return bool(first) and not ("a" <= first.lower() <= "z")


def _annotation_problems(where: str, notes: Mapping[str, Any]) -> list[str]:
    found = []
    for key, value in notes.items():
        prefix, _, name = key.lower().rpartition("/")
        bad_prefix = "/" in key and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix))
        if bad_prefix or len(name) > 63 or not _QUALIFIED_NAME.fullmatch(name):
            found.append(f"{where}: annotation key {key!r} is not a qualified name")
        if not isinstance(value, str):
            found.append(f"{where}: annotation {key!r} is not a string")
    return found


def _unknown(where: str, obj: Mapping[str, Any], level: str) -> list[str]:
    return [
        f"{where}: unknown field {k!r} (not in CDI {NEWEST_VERSION})"
        for k in obj
        if k not in FIELDS[level]
    ]


def _edits_problems(where: str, edits: Mapping[str, Any]) -> list[str]:
    found = _unknown(where, edits, "edits")
    for node in edits.get("deviceNodes") or []:
        found += _unknown(f"{where}: node {node.get('path')!r}", node, "node")
        if not node.get("path"):
            found.append(f"{where}: device node with an empty path")
        if node.get("type", "") not in ("", "b", "c", "u", "p"):
            found.append(f"{where}: node {node.get('path')!r}: invalid type {node['type']!r}")
        if set(node.get("permissions", "")) - set("rwm"):
            found.append(f"{where}: node {node.get('path')!r}: invalid permissions")
    for mount in edits.get("mounts") or []:
        found += _unknown(f"{where}: mount {mount.get('containerPath')!r}", mount, "mount")
    for hook in edits.get("hooks") or []:
        found += _unknown(f"{where}: hook {hook.get('hookName')!r}", hook, "hook")
    return found


def problems(spec: Mapping[str, Any]) -> list[str]:
    """Why a CDI v0.6.0 runtime would refuse this spec; empty when it would load it.

    A spec that passes also loads in an older runtime whose CDI version is at least its
    cdiVersion: what a version's loader refuses is the fields of later versions.
    """
    found = _unknown("spec", spec, "spec")
    version = str(spec.get("cdiVersion", ""))
    if version not in KNOWN_VERSIONS:
        found.append(f"cdiVersion {version!r} is not one of {', '.join(KNOWN_VERSIONS)}")
    elif _version(minimum_version(spec)) > _version(version):
        found.append(f"the fields used need cdiVersion {minimum_version(spec)}, not {version}")
    vendor, slash, cls = str(spec.get("kind", "")).partition("/")
    if not (slash and _VENDOR_OR_CLASS.fullmatch(vendor) and _VENDOR_OR_CLASS.fullmatch(cls)):
        found.append(f"kind {spec.get('kind')!r} is not vendor/class")
    found += _annotation_problems("spec", spec.get("annotations") or {})
    found += _edits_problems("spec", spec.get("containerEdits") or {})
    devices = spec.get("devices") or []
    if not devices:
        found.append("a spec needs at least one device")
    seen: set[str] = set()
    for device in devices:
        name = str(device.get("name", ""))
        where = f"device {name!r}"
        found += _unknown(where, device, "device")
        if not _DEVICE_NAME.fullmatch(name):
            found.append(f"{where}: not a CDI device name")
        if name in seen:
            found.append(f"{where}: name used twice")
        seen.add(name)
        found += _annotation_problems(where, device.get("annotations") or {})
        edits = device.get("containerEdits") or {}
        if not any(edits.values()):
            found.append(f"{where}: no container edits")
        found += _edits_problems(where, edits)
    return found
