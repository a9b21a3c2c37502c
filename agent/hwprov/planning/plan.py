"""The plan: for each service, the exact hardware settings, each with the reason for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hwprov.records import GrantMode, UnplugPolicy, cgroup_rule, to_json


@dataclass(frozen=True, slots=True)
class PlannedDevice:
    host: str
    container: str
    permissions: str
    major: int | None
    minor: int | None
    hardware_id: str | None
    reason: str

    @property
    def cgroup_rule(self) -> str | None:
        return cgroup_rule(self.major, self.minor, self.permissions)


@dataclass(frozen=True, slots=True)
class Setting:
    """One capability, group, env variable or the network mode, with why it is there."""

    value: str
    reason: str


@dataclass(frozen=True, slots=True)
class PlannedMount:
    source: str
    target: str
    read_only: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Unmet:
    what: str
    optional: bool
    reason: str


@dataclass(frozen=True, slots=True)
class ServicePlan:
    service: str
    devices: tuple[PlannedDevice, ...] = ()
    capabilities: tuple[Setting, ...] = ()
    group_add: tuple[Setting, ...] = ()
    network_mode: Setting | None = None
    mounts: tuple[PlannedMount, ...] = ()
    env: tuple[Setting, ...] = ()  # value is "NAME=value"
    unmet: tuple[Unmet, ...] = ()
    notes: tuple[str, ...] = ()
    was_privileged: bool = False
    managed: bool = True  # False when the service opted out with io.hwprov.enable=false
    on_unplug: UnplugPolicy | None = None  # io.hwprov.on-unplug; None: the daemon's default
    grant: GrantMode | None = None  # io.hwprov.grant; None: the daemon's default
    hardware: tuple[str, ...] = ()  # ids of the hardware granted, devices or not

    @property
    def privileged(self) -> bool:
        """Always False: hwprov never grants privileged. A property so no plan can say otherwise."""
        return False

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = to_json(self)
        doc["privileged"] = False
        return doc


@dataclass(frozen=True, slots=True)
class Plan:
    source: str
    services: tuple[ServicePlan, ...]
    warnings: tuple[str, ...] = ()

    def service(self, name: str) -> ServicePlan:
        return next(s for s in self.services if s.service == name)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "services": [s.to_json() for s in self.services],
            "warnings": list(self.warnings),
        }
