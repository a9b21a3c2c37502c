"""What the daemon tells operators besides its decision lines: the status file `hwprov status`
reads, and the Prometheus metrics. The main loop (daemon/loop.py) calls one method per thing
that happened; this module keeps the per-service standing between passes and publishes.

Both outputs are optional (a Daemon made without them, as the tests make it, reports nothing),
and neither can stop the agent: a status file that cannot be written is said once as a log
line and tried again at the next beat.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hwprov import __version__
from hwprov.containers.outcome import Outcome, OutcomeAction
from hwprov.daemon import statusfile
from hwprov.daemon.converge import Failure
from hwprov.daemon.state import (
    HEARTBEAT_S,
    AgentState,
    HardwareSeen,
    ServiceStatus,
    service_status,
)
from hwprov.errors import EngineError
from hwprov.planning.plan import Plan
from hwprov.records import GrantMode, Hardware, UdevEvent, UnplugPolicy, UntrustedUevent

if TYPE_CHECKING:  # only its methods are called here: no import of prometheus_client
    from hwprov.daemon.metrics import Metrics

log = logging.getLogger(__name__)

# What each outcome that gave a service its hardware says about how it was given.
GIVEN = {OutcomeAction.RECREATED: GrantMode.RECREATE, OutcomeAction.GRANTED: GrantMode.LIVE}


@dataclass
class Report:
    status_file: Path | None = None
    metrics: Metrics | None = None
    metrics_at: str | None = None  # where the metrics endpoint listens, for the status file
    default_unplug: UnplugPolicy = UnplugPolicy.RECREATE
    clock: Callable[[], float] = time.time
    _project: str = field(default="", init=False)
    _compose_file: str = field(default="", init=False)
    _started: float = field(default=0.0, init=False)
    _last_pass: float | None = field(default=None, init=False)
    _engine_error: str | None = field(default=None, init=False)
    _services: dict[str, ServiceStatus] = field(default_factory=dict, init=False)
    _write_error: str | None = field(default=None, init=False)  # the last one said

    def started(self, project: str, compose_file: Path) -> None:
        self._project, self._compose_file = project, str(compose_file)
        self._started = self.clock()

    def received(self, items: Iterable[object]) -> None:
        """A burst taken off the wake queue: its uevents are counted."""
        if self.metrics is None:
            return
        items = list(items)
        received = sum(isinstance(i, UdevEvent) for i in items)
        self.metrics.uevents(received, sum(isinstance(i, UntrustedUevent) for i in items))

    def revoked(self, failed: bool, seconds: float | None) -> None:
        """From the revoker's thread: one node taken (or not) as its device's remove was read.
        Only metrics: the status file is the main loop's, and the pass that follows renews it."""
        if self.metrics is not None:
            self.metrics.revoke(failed, seconds)

    def resynced(self) -> None:
        if self.metrics is not None:
            self.metrics.resync()

    def engine_broke(self, event: str, err: EngineError) -> None:
        self._engine_error = str(err)
        if self.metrics is not None:
            self.metrics.engine_error(event)

    def passed(
        self,
        plan: Plan,
        selected: Plan,
        outcomes: Sequence[Outcome],
        failed: Mapping[str, Failure],
        since_ns: int | None = None,
        ended_ns: int | None = None,
    ) -> None:
        """A pass over `selected` (part of `plan`) ended at `ended_ns` (time.monotonic_ns)
        with `outcomes`; `failed` is the daemon's record of failed attempts after it, and
        `since_ns` when the burst that brought the pass came off the socket, if one did."""
        self._engine_error = None
        by_service: dict[str, list[Outcome]] = {}
        for o in outcomes:
            by_service.setdefault(o.service, []).append(o)
        for s in selected.services:
            got = by_service.get(s.service, [])
            failure = failed.get(s.service)
            self._services[s.service] = service_status(s, got, failure, self.default_unplug)
        wanted = {s.service for s in plan.services}
        self._services = {k: v for k, v in self._services.items() if k in wanted}
        if selected.services:
            self._last_pass = self.clock()
        if self.metrics is None:
            return
        for o in outcomes:
            self.metrics.decision(o.action)
            mode = GIVEN.get(o.action)
            if mode is not None and since_ns is not None and ended_ns is not None:
                self.metrics.plug_to_ready(mode, (ended_ns - since_ns) / 1e9)
            if o.action == OutcomeAction.GRANTED and o.grant_ns is not None:
                self.metrics.live_grant(o.grant_ns / 1e9)

    def state(self, hardware: Iterable[Hardware]) -> AgentState:
        now = self.clock()
        return AgentState(
            pid=os.getpid(),
            pid_namespace=statusfile.pid_namespace(),
            version=__version__,
            started=self._started,
            heartbeat=now,
            heartbeat_every_s=HEARTBEAT_S,
            project=self._project,
            compose_file=self._compose_file,
            last_pass=self._last_pass,
            engine_error=self._engine_error,
            hardware=tuple(HardwareSeen(h.id, str(h.kind), h.node) for h in hardware),
            services=tuple(self._services[name] for name in sorted(self._services)),
            metrics=self.metrics_at,
        )

    def stopped(self) -> None:
        """A clean stop: no status file is left to look like a dead agent's last words."""
        if self.status_file is not None:
            self.status_file.unlink(missing_ok=True)

    def beat(self, hardware: Iterable[Hardware]) -> None:
        """The main loop is alive: publish the status file, if there is one."""
        if self.status_file is None:
            return
        try:
            statusfile.publish(self.status_file, self.state(hardware))
        except OSError as err:
            said = f"{self.status_file}: {err.strerror or err}"
            if said != self._write_error:  # once, not at every beat
                log.warning("cannot write the status file %s", said)
            self._write_error = said
        else:
            self._write_error = None
