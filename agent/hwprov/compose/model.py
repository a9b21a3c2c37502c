"""The compose records hwprov reads: frozen, hashable, each with the line it came from.

Every field is immutable and hashable all the way down (tuples, `Props` for str -> str maps,
`FrozenMap` for the rest), so a `Service` or `Project` can be compared, hashed and cached,
and no consumer can change what the loader read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hwprov.records import Props

FEATURE_PREFIX = "io.balena.features."
# What the balena supervisor counts as "on" (src/lib/validation.ts checkTruthy), lower-cased.
TRUTHY = ("1", "true", "on")


class FrozenMap(Mapping[str, Any]):
    """An immutable, hashable mapping that keeps the order it was given (raw compose values)."""

    __slots__ = ("_hash", "_items")

    def __init__(self, items: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> None:
        self._items: dict[str, Any] = dict(items)
        self._hash: int | None = None

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._items.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"


@dataclass(frozen=True, slots=True)
class DeviceMapping:
    """One `devices:` entry. `permissions` is None when the entry gave none: the engine and the
    supervisor then use "rwm", but a least-privilege planner may choose less."""

    host: str
    container: str
    permissions: str | None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    line: int  # the line of the service's name (its key under `services:`)
    image: str | None = None
    build: str | FrozenMap | None = None
    devices: tuple[DeviceMapping, ...] = ()
    cap_add: tuple[str, ...] = ()  # as written: the engine accepts any case, with or without CAP_
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    network_mode: str | None = None  # "service: x" is read as "service:x", as the supervisor does
    labels: Props = field(default_factory=Props)  # io.resin.* already renamed to io.balena.*
    environment: Props = field(default_factory=Props)
    volumes: tuple[str | FrozenMap, ...] = ()
    depends_on: tuple[str, ...] = ()
    restart: str | None = None
    group_add: tuple[str, ...] = ()
    device_cgroup_rules: tuple[str, ...] = ()
    ulimits: FrozenMap = field(default_factory=FrozenMap)  # name -> (soft, hard)
    command: str | tuple[str, ...] | None = None
    raw: FrozenMap = field(default_factory=FrozenMap)  # every key, interpolated, as written

    @property
    def features(self) -> tuple[str, ...]:
        """The io.balena.features.* switched on, without the prefix, sorted (e.g. "dbus")."""
        return tuple(
            sorted(
                key.removeprefix(FEATURE_PREFIX)
                for key, value in self.labels.items()
                if key.startswith(FEATURE_PREFIX) and value.lower() in TRUTHY
            )
        )


@dataclass(frozen=True, slots=True)
class Project:
    source: str
    version: str | None
    services: tuple[Service, ...]
    name: str | None = None
    volumes: FrozenMap = field(default_factory=FrozenMap)  # name -> config (None when bare)
    networks: FrozenMap = field(default_factory=FrozenMap)
    warnings: tuple[str, ...] = ()  # things a user should fix or know, each with file:line
    notes: tuple[str, ...] = ()  # fields the balena supervisor would ignore, each with file:line

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    def dependencies(self) -> dict[str, tuple[str, ...]]:
        """Each service's depends_on: what must be done before it."""
        return {s.name: s.depends_on for s in self.services}

    def start_order(self) -> list[str]:
        """Service names with their dependencies first (depends_on orders starts; a cycle
        keeps file order)."""
        depends = self.dependencies()
        order: dict[str, None] = {}  # a set that keeps its order
        # Depth first with a stack of its own: a chain of a thousand depends_on is no reason to
        # run out of Python's.
        for first in depends:
            path, stack = {first}, [(first, iter(depends[first]))]
            while stack and first not in order:
                name, deps = stack[-1]
                dep = next((d for d in deps if d not in order and d not in path), None)
                if dep is None:
                    stack.pop()
                    path.discard(name)
                    order[name] = None
                else:
                    path.add(dep)
                    stack.append((dep, iter(depends.get(dep, ()))))
        return list(order)
