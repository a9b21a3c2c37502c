"""The engine edge: the few Docker Engine API calls hwprov makes, with errors that say what failed.

Listing is sparse (/containers/json with label filters, no per-container inspect: 6 ms for 50
containers against 67 ms for the SDK's full `containers.list()`); only the candidates are
inspected.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import docker
import docker.errors
import requests.exceptions

from hwprov.errors import EngineError, EngineNotFound, EngineUnreachable

T = TypeVar("T")
DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def _call(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except docker.errors.NotFound as err:
        raise EngineNotFound(f"{what}: not found ({err.explanation})") from err
    except docker.errors.APIError as err:
        raise EngineError(f"{what}: the engine refused: {err.explanation or err}") from err
    except (requests.exceptions.ConnectionError, FileNotFoundError, ConnectionError) as err:
        raise EngineUnreachable(f"{what}: the engine is not reachable ({err})") from err


class EngineAPI(Protocol):
    """The engine calls the reconciler makes: `Engine` here, an in-memory fake in unit tests.

    Each raises EngineNotFound for a container that is gone, EngineUnreachable when no
    engine answers, and EngineError when the engine refused.
    """

    def containers(self) -> list[dict[str, Any]]: ...
    def inspect(self, container: str) -> dict[str, Any]: ...
    def create(self, body: Mapping[str, Any], name: str) -> str: ...
    def connect(self, container: str, network: str, endpoint: Mapping[str, Any]) -> None: ...
    def start(self, container: str) -> None: ...
    def stop(self, container: str, timeout: int | None = None) -> None: ...
    def kill(self, container: str) -> None: ...
    def rename(self, container: str, name: str) -> None: ...
    def remove(self, container: str, force: bool = False) -> None: ...


@dataclass
class Backoff:
    """Doubling waits while the engine is away, reset when it answers again."""

    first_s: float = 0.5
    max_s: float = 30.0
    delay_s: float = 0.5

    def next(self) -> float:
        delay, self.delay_s = self.delay_s, min(self.delay_s * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self.delay_s = self.first_s


class Engine:
    def __init__(self, base_url: str | None = None, timeout: float | None = 30) -> None:
        self.base_url = base_url or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
        try:
            self.api = docker.APIClient(base_url=self.base_url, version="auto", timeout=timeout)
        except docker.errors.DockerException as err:
            raise EngineUnreachable(f"cannot reach the engine at {self.base_url}: {err}") from err

    def close(self) -> None:
        self.api.close()

    def ping(self) -> None:
        _call(f"ping {self.base_url}", self.api.ping)

    def containers(self) -> list[dict[str, Any]]:
        """Sparse summaries of all containers, running or not (the reconciler matches labels
        itself: the engine cannot OR label filters)."""
        return _call("list containers", lambda: self.api.containers(all=True))

    def inspect(self, container: str) -> dict[str, Any]:
        return _call(f"inspect {container}", lambda: self.api.inspect_container(container))

    def create(self, body: Mapping[str, Any], name: str) -> str:
        def create() -> str:
            return self.api.create_container_from_config(dict(body), name=name)["Id"]

        return _call(f"create {name}", create)

    def connect(self, container: str, network: str, endpoint: Mapping[str, Any]) -> None:
        _call(
            f"connect {container} to {network}",
            lambda: self.api.connect_container_to_network(
                container,
                network,
                aliases=endpoint.get("Aliases"),
                links=endpoint.get("Links"),
                ipv4_address=(endpoint.get("IPAMConfig") or {}).get("IPv4Address"),
                ipv6_address=(endpoint.get("IPAMConfig") or {}).get("IPv6Address"),
                driver_opt=endpoint.get("DriverOpts"),
            ),
        )

    def start(self, container: str) -> None:
        _call(f"start {container}", lambda: self.api.start(container))

    def stop(self, container: str, timeout: int | None = None) -> None:
        _call(f"stop {container}", lambda: self.api.stop(container, timeout=timeout))

    def kill(self, container: str) -> None:
        _call(f"kill {container}", lambda: self.api.kill(container))

    def rename(self, container: str, name: str) -> None:
        _call(f"rename {container} to {name}", lambda: self.api.rename(container, name))

    def remove(self, container: str, force: bool = False) -> None:
        # Never v=True: named volumes outlive every container hwprov removes.
        _call(f"remove {container}", lambda: self.api.remove_container(container, force=force))

    def events(self, filters: Mapping[str, Any]) -> EventStream:
        """The engine's event stream; an engine built with timeout=None waits on it forever."""
        return EventStream(
            _call("events", lambda: self.api.events(decode=True, filters=dict(filters)))
        )


class EventStream:
    """Decoded events until the engine goes away (EngineUnreachable) or `close` is called."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            yield from self._stream
        except (requests.exceptions.RequestException, OSError) as err:
            raise EngineUnreachable(f"events: the stream broke ({err})") from err

    def close(self) -> None:
        self._stream.close()  # unblocks a reader waiting in __iter__


class HostPaths:
    """Where the engine finds a device node that hwprov sees at /dev/X.

    Identity on a real device. Under `hwprov sim`, /dev is an LD_PRELOAD illusion the engine
    cannot see, so the simulator keeps real stand-in nodes and a map (HWPROV_SIM_NODES); the
    map is read on every call because plugging rewrites it.
    """

    def __init__(self, sim_nodes: Path | None = None) -> None:
        self.sim_nodes = sim_nodes

    @classmethod
    def from_environment(cls) -> HostPaths:
        folder = os.environ.get("HWPROV_SIM_NODES")
        return cls(Path(folder) if folder else None)

    def __call__(self, path: str) -> str:
        if self.sim_nodes is None:
            return path
        try:
            doc = json.loads((self.sim_nodes / "nodes.json").read_text())
        except (OSError, ValueError):
            return path
        entry = doc.get(path) if isinstance(doc, dict) else None
        if isinstance(entry, dict) and entry.get("host_path"):
            return str(entry["host_path"])
        return path
