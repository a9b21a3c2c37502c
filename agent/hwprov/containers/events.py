"""Container `start` events from the engine, for the daemon's wake queue.

A restart gives a container a fresh /dev and device cgroup, so whatever hwprov granted live is
gone; `docker compose up` may also recreate a container without the devices hwprov gave it.
Both show up as a `start` event, which arrives within a millisecond of the engine's own
timestamp (shared/notes/docker-engine.md §6), so the daemon follows events instead of polling.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hwprov import threads
from hwprov.containers.engine import Backoff, Engine, EventStream
from hwprov.containers.labels import service_of
from hwprov.errors import EngineError


@dataclass(frozen=True, slots=True)
class ContainerStarted:
    container: str  # full id
    service: str


class EngineWatch:
    """Puts a ContainerStarted on `put` for each start of a container of the project.

    Reconnects with backoff when the engine goes away; `on_reconnect` is called each time the
    stream is opened again after a failure, so the daemon can converge at once.
    """

    def __init__(
        self,
        base_url: str,
        project: str | None,
        put: Callable[[object], None],
        on_reconnect: Callable[[], None] = lambda: None,
    ) -> None:
        self.base_url = base_url
        self.project = project
        self.put = put
        self.on_reconnect = on_reconnect
        self._stop = threading.Event()
        self._stream: EventStream | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="hwprov-engine-events", daemon=True)

    def start(self) -> None:
        threads.start(self._thread)  # SIGTERM and SIGHUP stay with the main thread

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self._stream is not None:
                self._stream.close()  # unblocks the reader
        self._thread.join(timeout=5)

    def _run(self) -> None:
        backoff, failed = Backoff(), False
        while not self._stop.is_set():
            engine = None
            try:
                # No read timeout: an idle stream is a quiet engine, not a dead one.
                engine = Engine(self.base_url, timeout=None)
                stream = engine.events({"type": "container", "event": ["start"]})
                with self._lock:
                    if self._stop.is_set():
                        stream.close()
                        return
                    self._stream = stream
                if failed:
                    self.on_reconnect()
                backoff.reset()
                failed = False
                for event in stream:
                    self._handle(event)
            except EngineError:
                pass  # the engine is down or restarting: retried below
            finally:
                with self._lock:
                    self._stream = None
                if engine is not None:
                    engine.close()
            if self._stop.wait(backoff.next()):
                return
            failed = True

    def _handle(self, event: Mapping[str, Any]) -> None:
        actor = event.get("Actor") or {}
        service = service_of(actor.get("Attributes"), self.project)
        if service is not None and actor.get("ID"):
            self.put(ContainerStarted(str(actor["ID"]), service))
