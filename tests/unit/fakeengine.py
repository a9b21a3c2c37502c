"""An in-memory engine with the Docker Engine's semantics for the calls the reconciler makes.

Names are unique (a create or rename onto a taken name is refused), a running container is
removed only with force, an unknown id is `EngineNotFound`; `fail` injects a refusal on the
n-th call of a kind, and `on` runs a callback before a call (another tool acting mid-swap).
Calls are serialised by one lock, as dockerd's store serialises them, so the reconciler's
workers can call it side by side.
It is the `EngineAPI` of hwprov.containers.engine; the real-engine tests check the same paths
against dockerd.
"""

from __future__ import annotations

import copy
import functools
import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hwprov.containers.labels import COMPOSE_PROJECT, COMPOSE_SERVICE
from hwprov.errors import EngineError, EngineNotFound, EngineUnreachable

F = TypeVar("F", bound=Callable[..., Any])


def serialised(method: F) -> F:
    @functools.wraps(method)
    def call(self: FakeEngine, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)

    return call  # type: ignore[return-value]


@dataclass
class FakeContainer:
    id: str
    name: str
    config: dict[str, Any]
    host: dict[str, Any]
    running: bool = False
    pid: int = 0
    exit_code: int = 0
    networks: dict[str, Any] = field(default_factory=dict)
    started_at: str = "0001-01-01T00:00:00Z"  # the engine's zero time: never started
    error: str = ""  # why the last start failed

    def attrs(self) -> dict[str, Any]:
        return copy.deepcopy(
            {
                "Id": self.id,
                "Name": "/" + self.name,
                "Config": self.config,
                "HostConfig": self.host,
                "State": {
                    "Running": self.running,
                    "Restarting": False,
                    "Pid": self.pid,
                    "ExitCode": self.exit_code,
                    "Error": self.error,
                    "StartedAt": self.started_at,
                },
                "Mounts": [],
                "NetworkSettings": {"Networks": self.networks},
            }
        )

    def summary(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Names": ["/" + self.name],
            "Labels": dict(self.config.get("Labels") or {}),
            "State": "running" if self.running else "exited",
        }


@dataclass
class FakeEngine:
    by_id: dict[str, FakeContainer] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    # (call name, n): the n-th call of that name (1-based) is refused
    fail: set[tuple[str, int]] = field(default_factory=set)
    # a call name -> what runs before it, once (removed when it fires)
    on: dict[str, Callable[[FakeEngine, str], None]] = field(default_factory=dict)
    # devices the host no longer has: a start of a container mapping one is refused, as runc does
    gone: set[str] = field(default_factory=set)
    down: bool = False
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _counts: dict[str, int] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    # -- building a world ---------------------------------------------------------------

    def add(
        self,
        name: str,
        service: str,
        project: str = "p",
        running: bool = True,
        labels: Mapping[str, str] | None = None,
        devices: tuple[str, ...] = (),
    ) -> str:
        cid = f"{next(self._ids):064x}"
        config = {
            "Image": "busybox",
            "Labels": {COMPOSE_PROJECT: project, COMPOSE_SERVICE: service, **(labels or {})},
            "Env": [],
        }
        host = {
            "Devices": [
                {"PathOnHost": d, "PathInContainer": d, "CgroupPermissions": "rw"} for d in devices
            ],
            "NetworkMode": "default",
        }
        c = FakeContainer(cid, name, config, host, running, pid=1000 + len(self.by_id))
        if running:
            c.started_at = "2026-12-03T00:00:00Z"
        self.by_id[cid] = c
        return cid

    def present(self, path: str) -> bool:
        """Whether a host node is there: every path is, but those in `gone`."""
        return path not in self.gone

    def named(self, name: str) -> FakeContainer | None:
        return next((c for c in self.by_id.values() if c.name == name), None)

    def names(self) -> list[str]:
        return sorted(c.name for c in self.by_id.values())

    # -- the EngineAPI --------------------------------------------------------------------

    def _call(self, what: str, target: str) -> None:
        if self.down:
            raise EngineUnreachable(f"{what} {target}: the engine is not reachable")
        self.calls.append((what, target))
        n = self._counts[what] = self._counts.get(what, 0) + 1
        if hook := self.on.pop(what, None):
            hook(self, target)
        if (what, n) in self.fail:
            raise EngineError(f"{what} {target}: the engine refused: injected")

    def _get(self, what: str, ref: str) -> FakeContainer:
        found = self.by_id.get(ref) or self.named(ref)
        if found is None:
            raise EngineNotFound(f"{what} {ref}: not found (No such container: {ref})")
        return found

    @serialised
    def containers(self) -> list[dict[str, Any]]:
        self._call("containers", "")
        return [c.summary() for c in self.by_id.values()]

    @serialised
    def inspect(self, container: str) -> dict[str, Any]:
        self._call("inspect", container)
        return self._get("inspect", container).attrs()

    @serialised
    def create(self, body: Mapping[str, Any], name: str) -> str:
        self._call("create", name)
        if self.named(name):
            raise EngineError(f"create {name}: the engine refused: name in use")
        body = copy.deepcopy(dict(body))
        host = body.pop("HostConfig", {}) or {}
        body.pop("NetworkingConfig", None)
        cid = f"{next(self._ids):064x}"
        self.by_id[cid] = FakeContainer(cid, name, body, host)
        return cid

    @serialised
    def connect(self, container: str, network: str, endpoint: Mapping[str, Any]) -> None:
        self._call("connect", container)
        self._get("connect", container).networks[network] = dict(endpoint)

    @serialised
    def start(self, container: str) -> None:
        self._call("start", container)
        c = self._get("start", container)
        missing = [
            d["PathOnHost"] for d in c.host.get("Devices") or () if d["PathOnHost"] in self.gone
        ]
        if missing:
            # runc's words, kept on the container as dockerd keeps them
            c.error = f"error gathering device information while adding custom device {missing[0]}"
            raise EngineError(f"start {container}: the engine refused: {c.error}")
        c.running, c.pid, c.error = True, c.pid or 2000 + len(self.calls), ""
        c.started_at = "2026-12-03T00:00:01Z"

    @serialised
    def stop(self, container: str, timeout: int | None = None) -> None:
        self._call("stop", container)
        self._get("stop", container).running = False

    @serialised
    def kill(self, container: str) -> None:
        self._call("kill", container)
        self._get("kill", container).running = False

    @serialised
    def rename(self, container: str, name: str) -> None:
        self._call("rename", container)
        c = self._get("rename", container)
        if (other := self.named(name)) and other is not c:
            raise EngineError(f"rename {container} to {name}: the engine refused: name in use")
        c.name = name

    @serialised
    def remove(self, container: str, force: bool = False) -> None:
        self._call("remove", container)
        c = self._get("remove", container)
        if c.running and not force:
            raise EngineError(f"remove {container}: the engine refused: it is running")
        del self.by_id[c.id]
