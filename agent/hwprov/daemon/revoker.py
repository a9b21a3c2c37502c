"""A removed device's node taken out of live-granted containers as its uevent is read.

The main loop plans a remove only after the pass in flight, which can be recreating other
services for seconds (a hand-over holds it up to its timeout); the freed numbers can come back
meanwhile as another device. So the udev monitor hands each remove to this thread (a put: the
monitor must read on), and it denies and unlinks the node at once (LiveGrants.revoke_gone).
The pass that the same event brings later finds nothing left to take.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from hwprov import threads
from hwprov.containers.livegrant import LiveGrants
from hwprov.daemon.decisions import Decisions
from hwprov.daemon.report import Report
from hwprov.records import Action, UdevEvent

log = logging.getLogger(__name__)

# The decision lines it writes (a pass's own revoke is a `granted` outcome with "- node")
REVOKED = "revoked"
REVOKE_FAILED = "revoke-failed"


class Revoker:
    def __init__(self, live: LiveGrants, emit: Decisions, report: Report | None = None) -> None:
        self.live = live
        self.emit = emit
        self.report = report or Report()
        self._removes: queue.SimpleQueue[UdevEvent | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="hwprov-revoke", daemon=True)

    def start(self) -> None:
        threads.start(self._thread)

    def stop(self) -> None:
        self._removes.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def put(self, event: UdevEvent) -> None:
        """From the monitor's thread: never blocks."""
        if event.action == Action.REMOVE and event.device.major is not None:
            self._removes.put(event)

    def _run(self) -> None:
        while (event := self._removes.get()) is not None:
            try:
                self.revoke(event)
            except Exception:  # one bad revoke must not end the fast path for the rest
                log.exception("revoking %s failed", event.device.node or event.device.sys_path)

    def revoke(self, event: UdevEvent) -> None:
        """Revoke the event's device everywhere it was granted live, with a decision line each."""
        dev = event.device
        if dev.major is None or dev.minor is None:
            return
        for r in self.live.revoke_gone(dev.major, dev.minor):
            fields: dict[str, object] = {
                "service": r.service,
                "container": r.container,
                "node": r.path,
                "device": f"{r.major}:{r.minor}",
            }
            took = (time.monotonic_ns() - event.received_ns) / 1e9 if event.received_ns else None
            if took is not None:
                fields["uevent_to_revoke_ms"] = round(took * 1000, 2)
            self.report.revoked(r.error is not None, took)
            if r.error is None:
                self.emit(REVOKED, **fields)
            else:
                self.emit(REVOKE_FAILED, error=r.error, **fields)
