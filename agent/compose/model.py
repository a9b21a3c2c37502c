"""The compose records hwprov reads: frozen, with the line each came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.records import Props


@dataclass(frozen=True, slots=True)
class DeviceMapping:
    host: str
    container: str
    permissions: str | None  # None when the entry gave none (the engine's default is rwm)
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    line: int
    image: str | None = None
    build: object = None
    devices: tuple[DeviceMapping, ...] = ()
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    network_mode: str | None = None
    labels: Props = field(default_factory=Props)
    environment: Props = field(default_factory=Props)
    volumes: tuple[object, ...] = ()
    depends_on: tuple[str, ...] = ()
    restart: str | None = None
    group_add: tuple[str, ...] = ()
    device_cgroup_rules: tuple[str, ...] = ()
    command: object = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def features(self) -> tuple[str, ...]:
        """io.balena.features.* that are switched on."""
        prefix = "io.balena.features."
        on = ("1", "true", "yes", "on")
        return tuple(
            sorted(k[len(prefix) :] for k, v in self.labels.items() if k.startswith(prefix)
                   and v.strip().lower() in on)
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Project:
    source: str
    version: str | None
    services: tuple[Service, ...]
    name: str | None = None
    volumes: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)
