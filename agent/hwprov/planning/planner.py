"""Inventory + requirements -> plan. Pure: every fact it needs comes in as data.

Policy, in one place:
- a `devices:` entry is mapped as declared (read/write unless it gave permissions); when a
  plugin claims the node, the plugin's grant adds what the node needs (SYS_RAWIO for /dev/mem,
  the node's group); a node no plugin claims (a console, /dev/kvm) is mapped as declared too;
- paths that are not device nodes, or that leave /dev, are reported and never mapped; a node a
  plugin grants must be a normalised path below /dev (the inventory already refused hardware
  whose udev node is not the node udev announced);
- a match label maps whatever attached hardware matches it; nothing matching is "unmet";
  hardware another part of the system owns (the console, a serdev UART, a modem) is never
  given for a kind alone: the plan says what was left out, or given, and why;
- `privileged: true` is never granted. It is replaced by what the service declares, or, when
  it declares no hardware, by every attached device of the plugin kinds except explicit-only
  ones (/dev/mem) and Bluetooth unless the service is already on the host network;
- cap_add is kept as declared; io.balena.features.* labels give the mounts balena gives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from hwprov.features import FEATURES
from hwprov.hardware.nodeview import NodeInfo, NodeType, under_dev
from hwprov.planning.index import HardwareIndex
from hwprov.planning.plan import Plan, PlannedDevice, PlannedMount, ServicePlan, Setting, Unmet
from hwprov.planning.requirements import DeclaredNode, Requirements
from hwprov.records import DeviceNode, Grant, GrantFn, GrantMode, Hardware, UnplugPolicy

DEFAULT_PERMISSIONS = "rw"


@dataclass
class _Builder:
    service: str
    devices: dict[tuple[str, str], PlannedDevice] = field(default_factory=dict)
    caps: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    mounts: dict[str, PlannedMount] = field(default_factory=dict)
    env: dict[str, Setting] = field(default_factory=dict)
    network: Setting | None = None
    unmet: list[Unmet] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    hardware: dict[str, None] = field(default_factory=dict)  # ids granted, in order

    def node(
        self,
        host: str,
        container: str,
        permissions: str,
        numbers: NodeInfo | DeviceNode,
        hardware_id: str | None,
        reason: str,
    ) -> None:
        """Map `host` at `container`, with the numbers (major, minor) `numbers` carries."""
        d = PlannedDevice(
            host=host,
            container=container,
            permissions=permissions,
            major=numbers.major,
            minor=numbers.minor,
            hardware_id=hardware_id,
            reason=reason,
        )
        self.devices.setdefault((d.host, d.container), d)

    def grant(self, g: Grant, why: str, declared_network: str | None) -> None:
        """Everything but the nodes of a grant (the caller maps nodes at the right path)."""
        self.hardware.setdefault(g.hardware_id)
        for cap in g.capabilities:
            self.caps.setdefault(cap, f"{why}: {g.reason}")
        for gid in g.group_add:
            self.groups.setdefault(gid, f"{why}: group of the device node")
        for m in g.mounts:
            self.mounts.setdefault(m.target, PlannedMount(m.source, m.target, m.read_only, why))
        for name, value in g.env.items():
            self.env.setdefault(name, Setting(f"{name}={value}", why))
        if g.network_mode and g.network_mode != declared_network and self.network is None:
            self.network = Setting(g.network_mode, f"{why}: {g.reason}")

    def build(
        self,
        was_privileged: bool,
        on_unplug: UnplugPolicy | None = None,
        grant: GrantMode | None = None,
    ) -> ServicePlan:
        return ServicePlan(
            service=self.service,
            devices=tuple(sorted(self.devices.values(), key=lambda d: (d.container, d.host))),
            capabilities=tuple(Setting(c, r) for c, r in sorted(self.caps.items())),
            group_add=tuple(Setting(g, r) for g, r in sorted(self.groups.items())),
            network_mode=self.network,
            mounts=tuple(m for _, m in sorted(self.mounts.items())),
            env=tuple(s for _, s in sorted(self.env.items())),
            unmet=tuple(self.unmet),
            notes=tuple(self.notes),
            was_privileged=was_privileged,
            on_unplug=on_unplug,
            grant=grant,
            hardware=tuple(self.hardware),
        )


def _declared(
    b: _Builder,
    req: Requirements,
    node: DeclaredNode,
    info: NodeInfo | None,
    by_node: Mapping[str, Hardware],
    grant: GrantFn,
) -> None:
    perms = node.permissions or DEFAULT_PERMISSIONS
    label = f"devices: {node.host} ({node.where})"
    if not perms or set(perms) - set("rwm"):
        # The engine would refuse them; mapping with guessed permissions would grant too much.
        b.notes.append(f"{label}: permissions '{perms}' are not letters of 'rwm'; not mapped")
        return
    if info is None or info.type == NodeType.MISSING:
        b.unmet.append(
            Unmet(node.host, False, f"{label}: absent now; hwprov maps it when it appears")
        )
        return
    if info.type == NodeType.OUTSIDE:
        b.notes.append(f"{label}: resolves outside /dev ({info.resolved}); not mapped")
        return
    if info.type == NodeType.OTHER:
        b.notes.append(f"{label}: not a device node; not mapped")
        return
    if info.type == NodeType.DIR:
        for member in info.members:
            rel = member.path[len(info.resolved or node.host) :]
            target = node.container.rstrip("/") + rel
            why = f"{label}: a directory means its nodes"
            b.node(member.path, target, perms, member, None, why)
        return
    resolved = info.resolved or node.host
    hw = by_node.get(resolved)
    if hw is None:
        why = f"{label}: mapped as declared; no plugin claims this node"
        b.node(resolved, node.container, perms, info, None, why)
        return
    g = grant(hw)
    why = f"{label}: {hw.plugin} plugin, {hw.kind} {hw.name}"
    if hw.owner is not None:
        why += f", given although {hw.owner} (named explicitly)"
    b.node(resolved, node.container, perms, info, hw.id, why)
    if g is not None:
        b.grant(g, why, req.network_mode)


def _owned_note(label: str, hw: Hardware, taken: bool) -> str:
    what = f"{label}: {hw.kind} {hw.name}"
    if taken:
        return f"{what} given although {hw.owner}: the label says more than a kind"
    return f"{what} left out: {hw.owner}; name it (name={hw.name}) to map it"


def _hardware_grant(
    b: _Builder, req: Requirements, hw: Hardware, g: Grant, why: str, container: str | None
) -> None:
    for d in g.devices:
        if not under_dev(d.path_on_host):
            # The inventory holds udev's own nodes to this; a plugin's extra nodes too.
            b.notes.append(f"{why}: {d.path_on_host} is not a path below /dev; not mapped")
            continue
        target = container or d.path_in_container
        b.node(d.path_on_host, target, d.permissions, d, hw.id, why)
    b.grant(g, why, req.network_mode)


def plan_service(
    req: Requirements,
    hardware: Sequence[Hardware],
    grant: GrantFn,
    nodes: Mapping[str, NodeInfo],
) -> ServicePlan:
    return _plan_service(req, HardwareIndex(hardware), grant, nodes)


def _plan_service(
    req: Requirements,
    attached: HardwareIndex,
    grant: GrantFn,
    nodes: Mapping[str, NodeInfo],
) -> ServicePlan:
    b = _Builder(req.service)
    if not req.enabled:
        b.notes.append("io.hwprov.enable is false: hwprov leaves this service alone")
        return ServicePlan(req.service, notes=tuple(b.notes), managed=False)
    for node in req.nodes:
        _declared(b, req, node, nodes.get(node.host), attached.by_node(), grant)
    for match in req.matches:
        held = attached.holding(match)
        found = [hw for hw in held if match.may_take(hw)]
        label = f"label io.hwprov.device.{match.slot} ({match.describe()})"
        for hw in held:
            if hw.owner is not None:
                b.notes.append(_owned_note(label, hw, taken=hw in found))
        if not found:
            state = "optional, " if match.optional else ""
            taken = ", ".join(hw.name for hw in held)
            what = (
                f"only what the system uses matches ({taken})"
                if held
                else "nothing attached matches"
            )
            b.unmet.append(Unmet(label, match.optional, f"{state}{what}"))
            continue
        single_path = match.container_path if len(found) == 1 else None
        if match.container_path and len(found) > 1:
            b.notes.append(f"{label}: {len(found)} devices match; each mapped at its own path")
        for hw in found:
            g = grant(hw)
            if g is not None:
                _hardware_grant(b, req, hw, g, f"{label}: {hw.kind} {hw.name}", single_path)
    for cap in req.capabilities:
        b.caps.setdefault(cap, "declared in cap_add")
    # the supervisor's own table (hwprov.features), so a plain-Docker host gives the same access
    for feature in (FEATURES[f] for f in req.features if f in FEATURES):
        for m in feature.mounts:
            b.mounts.setdefault(
                m.target, PlannedMount(m.source, m.target, m.read_only, feature.label)
            )
        for name, value in feature.env.items():
            b.env.setdefault(name, Setting(f"{name}={value}", feature.label))
    if req.privileged:
        _replace_privileged(b, req, attached.hardware, grant)
    return b.build(req.privileged, req.on_unplug, req.grant)


def _replace_privileged(
    b: _Builder, req: Requirements, hardware: Sequence[Hardware], grant: GrantFn
) -> None:
    if req.nodes or req.matches:
        b.notes.append(
            "privileged: true is never granted; replaced by the hardware the service declares"
        )
        return
    offered = []
    for hw in hardware:
        if hw.explicit_only:
            continue
        if hw.owner is not None:
            b.notes.append(f"privileged: {hw.kind} {hw.name} not offered: {hw.owner}")
            continue
        g = grant(hw)
        if g is None:
            continue
        if g.network_mode and g.network_mode != req.network_mode:
            b.notes.append(
                f"privileged: {hw.kind} {hw.name} not offered: it needs network_mode "
                f"{g.network_mode}, the service has {req.network_mode or 'the default'}"
            )
            continue
        why = f"privileged service declares no hardware: attached {hw.kind} {hw.name}"
        _hardware_grant(b, req, hw, g, why, None)
        offered.append(hw.name)
    b.notes.append(
        "privileged: true is never granted; replaced by every attached device of the plugin "
        f"kinds ({', '.join(offered) or 'none attached'}); declare devices or io.hwprov.device.* "
        "labels to narrow it"
    )


def make_plan(
    source: str,
    requirements: Sequence[Requirements],
    hardware: Sequence[Hardware],
    grant: GrantFn,
    nodes: Mapping[str, NodeInfo],
    warnings: Iterable[str] = (),
) -> Plan:
    # One index for every service: building it is a pass over the hardware.
    attached = HardwareIndex(hardware)
    services = tuple(
        _plan_service(r, attached, grant, nodes)
        for r in sorted(requirements, key=lambda r: r.service)
    )
    return Plan(source=source, services=services, warnings=tuple(warnings))
