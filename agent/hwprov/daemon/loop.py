"""`hwprov run`: coldplug, reconcile, then follow hotplug events and compose edits.

Everything that can wake the daemon (udev events, a compose file edit, SIGHUP, SIGTERM, an
engine retry timer, a container start) lands in one queue, and the loop blocks on it: idle
costs no CPU. A burst is taken whole: the first event is handled at once, with whatever queued
behind it. What to reconcile after each burst is decided by `Converge` (daemon/converge.py);
this module only wires the parts together and carries the decisions out.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from hwprov.compose.loader import load_project, project_name
from hwprov.compose.model import Project
from hwprov.containers.engine import Engine, HostPaths
from hwprov.containers.events import ContainerStarted, EngineWatch
from hwprov.containers.reconciler import Reconciler
from hwprov.daemon.converge import Converge, Pass
from hwprov.daemon.decisions import Decisions
from hwprov.daemon.filewatch import FileWatch
from hwprov.errors import EngineError, EngineNotFound, HwprovError
from hwprov.hardware.session import Session
from hwprov.hardware.udev import next_burst
from hwprov.planning.build import build_plan
from hwprov.records import UdevEvent, UnplugPolicy


class Wake(StrEnum):
    STOP = "stop"
    RELOAD = "reload"
    COMPOSE_CHANGED = "compose-changed"
    RETRY = "retry"


@dataclass
class Daemon:
    compose_file: Path
    project: str | None = None
    engine_url: str | None = None
    disabled: tuple[str, ...] = ()
    debounce_s: float = 0.0
    settle_s: float = 0.5
    on_unplug: UnplugPolicy = UnplugPolicy.RECREATE
    emit: Decisions = field(default_factory=Decisions)
    # Signal handlers and the watchers put wake-ups here; see `stop` and `reload`.
    wake: queue.Queue[object] = field(default_factory=queue.Queue, init=False)

    def stop(self) -> None:
        self.wake.put(Wake.STOP)

    def reload(self) -> None:
        self.wake.put(Wake.RELOAD)

    def run(self, ready: Callable[[], None] | None = None) -> int:
        session = Session.open(self.disabled)
        project = load_project(self.compose_file)  # a broken file at start is a clear error
        name = self.project or project_name(self.compose_file, project.name)
        monitor = session.monitor(events=self.wake)
        monitor.start()  # listen before enumerating, so nothing plugged in between is lost
        watch = FileWatch(self.compose_file, lambda: self.wake.put(Wake.COMPOSE_CHANGED))
        watch.start()
        engine = Engine(self.engine_url)
        reconciler = Reconciler(
            engine, name, HostPaths.from_environment(), self.settle_s, self.on_unplug
        )
        engine_watch = EngineWatch(
            engine.base_url, name, self.wake.put, lambda: self.wake.put(Wake.RETRY)
        )
        engine_watch.start()
        timers: list[threading.Timer] = []
        try:
            session.coldplug(monitor)
            self.emit("started", project=name, hardware=[h.id for h in session.hardware()])
            converge = Converge()
            if ready:
                ready()
            while True:
                if converge.due() == Pass.FULL:
                    self._pass(converge, Pass.FULL, session, project, reconciler, timers)
                items = next_burst(self.wake, self.debounce_s) or []
                if Wake.STOP in items:
                    self.emit("stopping")
                    return 0
                events = [i for i in items if isinstance(i, UdevEvent)]
                for change in session.inventory.apply(events):
                    hw = change.hardware
                    self.emit(str(change.action), hardware=hw.id, kind=hw.kind, node=hw.node)
                reloaded = False
                if Wake.RELOAD in items or Wake.COMPOSE_CHANGED in items:
                    try:
                        project = load_project(self.compose_file)
                        self.emit("compose-reloaded", source=str(self.compose_file))
                        reloaded = True
                    except HwprovError as err:
                        detail = "keeping the last good one"
                        self.emit("compose-broken", error=str(err), action=detail)
                others = []
                for started in (i for i in items if isinstance(i, ContainerStarted)):
                    if not reconciler.claims_start(started.container):
                        self.emit(
                            "container-started", service=started.service, id=started.container
                        )
                        others.append(started.service)
                converge.saw(
                    hardware=bool(events),
                    compose_reloaded=reloaded,
                    retry=Wake.RETRY in items,
                    started_by_others=others,
                )
                if converge.due() == Pass.CHANGED:
                    self._pass(converge, Pass.CHANGED, session, project, reconciler, timers)
        finally:
            for timer in timers:
                timer.cancel()
            engine_watch.stop()
            monitor.stop()
            watch.stop()
            engine.close()

    def _pass(
        self,
        converge: Converge,
        kind: Pass,
        session: Session,
        project: Project,
        reconciler: Reconciler,
        timers: list[threading.Timer],
    ) -> None:
        plan = build_plan(project, session.hardware(), session.host)
        selected = converge.select(plan, kind)
        began = time.monotonic()
        try:
            outcomes = (
                reconciler.reconcile(selected, project.start_order()) if selected.services else []
            )
        except EngineError as err:
            retry_in = converge.broke(kind, err)
            event = "container-vanished" if isinstance(err, EngineNotFound) else "engine-down"
            self.emit(event, error=str(err), retry_in_s=retry_in)
            if retry_in is not None:
                timer = threading.Timer(retry_in, lambda: self.wake.put(Wake.RETRY))
                timer.daemon = True
                timer.start()
                timers[:] = [t for t in timers if t.is_alive()] + [timer]
            return
        for outcome in outcomes:
            fields = outcome.to_json()
            del fields["action"]
            self.emit(str(outcome.action), **fields)
        converge.done(plan, selected, outcomes)
        if selected.services:
            # The end of a pass: what labs and benchmarks wait for before the next step.
            ms = round((time.monotonic() - began) * 1000, 1)
            self.emit("reconciled", services=len(selected.services), ms=ms)
