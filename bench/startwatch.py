"""Container `start` events with the engine's own timestamps, the end mark of a recreate.

The engine stamps `timeNano` with the host's realtime clock, the clock `time.time_ns()` reads,
so "request sent" and "container started" are on one time line with no polling in between.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import docker
import requests.exceptions
from hwprov.errors import HwprovError


class StartWatch:
    def __init__(self, url: str) -> None:
        self._api = docker.APIClient(base_url=url, version="auto", timeout=None)
        # Subscribed once this returns: the engine flushes the response headers at once.
        self._stream: Any = self._api.events(
            decode=True, filters={"type": "container", "event": "start"}
        )
        self._seen: list[tuple[str, int]] = []  # (container name, timeNano)
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, name="bench-start-events", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in self._stream:
                name = ((event.get("Actor") or {}).get("Attributes") or {}).get("name", "")
                with self._cond:
                    self._seen.append((name, int(event["timeNano"])))
                    self._cond.notify_all()
        except (requests.exceptions.RequestException, OSError, AttributeError, ValueError):
            pass  # closed under the reader: the stream's socket goes away

    def wait(self, name: str, after_ns: int, timeout: float = 30.0) -> int:
        """The engine time of the first start of `name` at or after `after_ns`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for seen, stamp in self._seen:
                    if seen == name and stamp >= after_ns:
                        return stamp
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HwprovError(f"no start event for {name} within {timeout:.0f} s")
                self._cond.wait(left)

    def count(self, after_ns: int) -> int:
        with self._cond:
            return sum(stamp >= after_ns for _, stamp in self._seen)

    def close(self) -> None:
        self._stream.close()
        self._thread.join(timeout=5)
        self._api.close()

    def __enter__(self) -> StartWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
