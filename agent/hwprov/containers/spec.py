"""A container's hardware settings, wanted vs actual, and the clone that changes only those.

Pure: works on the engine's inspect document (a dict) and a `ServicePlan`. The create payload
keeps everything of the old container (Config, labels, volumes, restart policy, healthcheck,
stop signal and timeout, networks with aliases and static addresses) and changes only the
hardware fields. `Privileged` is always false on what hwprov creates.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hwprov.planning import matchlabels
from hwprov.planning.plan import ServicePlan

HostPath = Callable[[str], str]
# Set on a container hwprov keeps stopped because its required hardware is gone (the `stop`
# unplug policy); the value says what is missing. It lives on the container, so a restarted
# hwprov knows to start it again when the hardware returns.
HELD_LABEL = matchlabels.HELD_LABEL  # the io.hwprov.* vocabulary has one owner


@dataclass(frozen=True, slots=True)
class HardwareSpec:
    devices: tuple[tuple[str, str, str], ...] = ()  # (PathOnHost, PathInContainer, CgroupPerms)
    cap_add: tuple[str, ...] = ()
    group_add: tuple[str, ...] = ()
    binds: tuple[str, ...] = ()  # "source:target[:ro]" to be present
    env: tuple[str, ...] = ()  # "NAME=value" to be present
    network_mode: str | None = None  # None: leave as it is
    held: str | None = None  # keep it stopped, for this reason (HELD_LABEL)


def name_of(attrs: Mapping[str, Any]) -> str:
    """A container's name from its inspect document, without the engine's leading '/'."""
    return str(attrs.get("Name", "")).lstrip("/")


def labels_of(attrs: Mapping[str, Any]) -> dict[str, str]:
    return dict((attrs.get("Config") or {}).get("Labels") or {})


def wanted(plan: ServicePlan, host_path: HostPath = lambda p: p) -> HardwareSpec:
    return HardwareSpec(
        devices=tuple(
            sorted((host_path(d.host), d.container, d.permissions) for d in plan.devices)
        ),
        cap_add=tuple(sorted({c.value for c in plan.capabilities})),
        group_add=tuple(sorted({g.value for g in plan.group_add})),
        binds=tuple(
            sorted(f"{m.source}:{m.target}{':ro' if m.read_only else ''}" for m in plan.mounts)
        ),
        env=tuple(sorted(e.value for e in plan.env)),
        network_mode=plan.network_mode.value if plan.network_mode else None,
    )


def _devices(host: Mapping[str, Any]) -> tuple[tuple[str, str, str], ...]:
    return tuple(
        sorted(
            (d.get("PathOnHost", ""), d.get("PathInContainer", ""), d.get("CgroupPermissions", ""))
            for d in host.get("Devices") or ()
        )
    )


def caps_set(caps: Iterable[str] | None) -> set[str]:
    # The engine accepts "CAP_SYS_RAWIO" and "SYS_RAWIO" alike; compare without the prefix.
    return {str(c).upper().removeprefix("CAP_") for c in caps or ()}


def differences(attrs: Mapping[str, Any], spec: HardwareSpec) -> list[str]:
    """What differs between a container and the wanted spec, one readable line per field."""
    host = attrs.get("HostConfig") or {}
    config = attrs.get("Config") or {}
    out = []
    if host.get("Privileged"):
        out.append("Privileged: true -> false")
    if _devices(host) != spec.devices:
        out.append(f"Devices: {list(_devices(host))} -> {list(spec.devices)}")
    if caps_set(host.get("CapAdd")) != set(spec.cap_add):
        out.append(f"CapAdd: {sorted(caps_set(host.get('CapAdd')))} -> {list(spec.cap_add)}")
    missing_groups = set(spec.group_add) - {str(g) for g in host.get("GroupAdd") or ()}
    if missing_groups:
        out.append(f"GroupAdd: + {sorted(missing_groups)}")
    missing_binds = _missing_binds(host.get("Binds") or (), spec.binds)
    if missing_binds:
        out.append(f"Binds: + {missing_binds}")
    missing_env = sorted(set(spec.env) - set(config.get("Env") or ()))
    if missing_env:
        out.append(f"Env: + {missing_env}")
    if spec.network_mode and host.get("NetworkMode") != spec.network_mode:
        out.append(f"NetworkMode: {host.get('NetworkMode')} -> {spec.network_mode}")
    held = held_for(attrs)
    if held != spec.held:
        out.append(f"held: {held or 'no'} -> {spec.held or 'no'}")
    return out


def running(attrs: Mapping[str, Any]) -> bool:
    return bool((attrs.get("State") or {}).get("Running"))


def start_failed_for_a_device(attrs: Mapping[str, Any]) -> bool:
    """The engine could not start it because a device it maps was absent (`docker compose up`
    before the adapter was plugged: "error gathering device information ...")."""
    state = attrs.get("State") or {}
    return not state.get("Running") and "device" in str(state.get("Error") or "").lower()


def stopped_on_its_own(attrs: Mapping[str, Any]) -> bool:
    """It ran and stopped (exited, or a user stopped it), and no device kept it from running.

    A recreate would replace its exit code and logs with a fresh container that never ran."""
    state = attrs.get("State") or {}
    started = str(state.get("StartedAt") or "")
    has_run = bool(started) and not started.startswith("0001-")  # the engine's zero time
    return not state.get("Running") and has_run and not start_failed_for_a_device(attrs)


def held_for(attrs: Mapping[str, Any]) -> str | None:
    return labels_of(attrs).get(HELD_LABEL)


def _target(bind: str) -> str:
    parts = bind.split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _missing_binds(current: Iterable[str], wanted_binds: tuple[str, ...]) -> list[str]:
    have = {_target(b) for b in current}
    return [b for b in wanted_binds if _target(b) not in have]


def clone_payload(
    attrs: Mapping[str, Any], spec: HardwareSpec
) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """The create body for the replacement, and the networks to connect before it starts.

    Returns (body, extra_networks): the body carries HostConfig and the first network's
    endpoint settings; engines before API 1.44 accept one network at create, so any others
    are connected afterwards, still before start.
    """
    config = copy.deepcopy(dict(attrs.get("Config") or {}))
    host = copy.deepcopy(dict(attrs.get("HostConfig") or {}))
    host["Privileged"] = False
    host["Devices"] = [
        {"PathOnHost": h, "PathInContainer": c, "CgroupPermissions": p} for h, c, p in spec.devices
    ]
    host["CapAdd"] = list(spec.cap_add) or None
    groups = [str(g) for g in host.get("GroupAdd") or ()]
    host["GroupAdd"] = groups + [g for g in spec.group_add if g not in groups] or None
    binds = list(host.get("Binds") or ())
    host["Binds"] = binds + _missing_binds(binds, spec.binds) or None
    env = list(config.get("Env") or ())
    names = {e.split("=", 1)[0] for e in env}
    config["Env"] = env + [e for e in spec.env if e.split("=", 1)[0] not in names]
    if spec.network_mode:
        host["NetworkMode"] = spec.network_mode
    labels = dict(config.get("Labels") or {})
    labels.pop(HELD_LABEL, None)
    if spec.held:
        labels[HELD_LABEL] = spec.held
    config["Labels"] = labels
    networks = _endpoints(attrs, host.get("NetworkMode") or "default")
    body = dict(config)
    body["HostConfig"] = host
    first = networks[:1]
    body["NetworkingConfig"] = {"EndpointsConfig": dict(first)} if first else None
    return body, networks[1:]


def _endpoints(attrs: Mapping[str, Any], network_mode: str) -> list[tuple[str, dict[str, Any]]]:
    """User networks with their aliases and static addresses; the engine adds the rest."""
    if network_mode in ("host", "none") or network_mode.startswith(("container:", "service:")):
        return []
    settings = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    short_id = str(attrs.get("Id", ""))[:12]
    out = []
    # The network named by NetworkMode goes first: it is the one the create call attaches.
    for name in sorted(settings, key=lambda n: (n != network_mode, n)):
        ep = settings[name] or {}
        endpoint: dict[str, Any] = {}
        # The engine adds the container's short id as an alias itself; do not carry the old one.
        aliases = [a for a in ep.get("Aliases") or () if a != short_id]
        if aliases:
            endpoint["Aliases"] = aliases
        if ep.get("IPAMConfig"):
            endpoint["IPAMConfig"] = ep["IPAMConfig"]
        if ep.get("Links"):
            endpoint["Links"] = ep["Links"]
        if ep.get("DriverOpts"):
            endpoint["DriverOpts"] = ep["DriverOpts"]
        out.append((name, endpoint))
    return out
