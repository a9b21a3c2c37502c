"""`hwprov run`: coldplug, reconcile, then follow hotplug events and compose edits.

Everything that can wake the daemon (udev events, the udev monitor's loss, a compose file
edit, SIGHUP, SIGTERM, an engine retry timer, a container start) lands in one queue, and the
loop blocks on it: idle costs no CPU. A lost monitor or SIGHUP is a resync: a new monitor, a
fresh enumeration diffed against the inventory, then a full pass. A burst is taken whole: the
first event is handled at once, with whatever queued behind it; in a storm (events piling up
while a pass swapped containers) the rest is gathered until it goes quiet and planned once,
as it ended (converge.storming). What to reconcile after each
burst is decided by `Converge` (daemon/converge.py); this module only wires the parts
together and carries the decisions out. One thing does not wait for the loop: a removed node
leaves live-granted containers as its uevent is read (daemon/revoker.py).

Idle, the wait still ends every HEARTBEAT_S (10 s), to renew the heartbeat that `hwprov status`
judges the agent by (daemon/report.py keeps the status file and the metrics), and under
systemd's watchdog at least every half WatchdogSec, to feed it (daemon/notify.py).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from hwprov import threads
from hwprov.compose.loader import load_project, project_name
from hwprov.compose.model import Project
from hwprov.containers import cgroups
from hwprov.containers.engine import Engine, HostPaths
from hwprov.containers.events import ContainerStarted, EngineWatch
from hwprov.containers.reconciler import Reconciler
from hwprov.daemon.converge import (
    STORM_MOST_S,
    STORM_QUIET_S,
    Converge,
    GaveUp,
    Pass,
    storming,
)
from hwprov.daemon.decisions import Decisions
from hwprov.daemon.filewatch import FileWatch
from hwprov.daemon.notify import ServiceNotify
from hwprov.daemon.report import Report
from hwprov.daemon.revoker import Revoker
from hwprov.daemon.state import HEARTBEAT_S
from hwprov.errors import EngineError, EngineNotFound, HwprovError, UdevError
from hwprov.hardware.session import Session
from hwprov.hardware.udev import (
    RECEIVE_BUFFER,
    UdevMonitor,
    next_burst,
    quiet_tail,
    resync_reason,
)
from hwprov.planning.build import build_plan, requirements
from hwprov.records import (
    Action,
    GrantMode,
    MonitorLost,
    UdevEvent,
    UnplugPolicy,
    UntrustedUevent,
)


class Wake(StrEnum):
    STOP = "stop"
    RELOAD = "reload"
    COMPOSE_CHANGED = "compose-changed"
    RETRY = "retry"
    SIGNAL = "signal"  # wakes the main thread so a signal's handler runs: nothing of its own


URGENT = (Wake.STOP, Wake.RELOAD)


@dataclass(frozen=True, slots=True)
class RetryDue:
    """A failed service's retry timer fired."""

    service: str


@dataclass
class Daemon:
    compose_file: Path
    project: str | None = None
    engine_url: str | None = None
    disabled: tuple[str, ...] = ()
    debounce_s: float = 0.0
    settle_s: float = 0.5
    on_unplug: UnplugPolicy = UnplugPolicy.RECREATE
    grant: GrantMode = GrantMode.RECREATE
    udev_buffer: int = RECEIVE_BUFFER  # bytes
    emit: Decisions = field(default_factory=Decisions)
    report: Report = field(default_factory=Report)  # the status file and metrics (none here)
    # Signal handlers and the watchers put wake-ups here; see `stop` and `reload`.
    wake: queue.SimpleQueue[object] = field(default_factory=queue.SimpleQueue, init=False)
    _last_pass_s: float = field(default=0.0, init=False)  # how long the last pass took

    def stop(self) -> None:
        self.wake.put(Wake.STOP)

    def reload(self) -> None:
        self.wake.put(Wake.RELOAD)

    def nudge(self) -> None:
        self.wake.put(Wake.SIGNAL)

    def run(self, ready: Callable[[], None] | None = None) -> int:
        session = Session.open(self.disabled)
        project = self._load(session)  # a broken file at start is a clear error
        name = self.project or project_name(self.compose_file, project.name)
        engine = Engine(self.engine_url)
        reconciler = Reconciler(
            engine, name, HostPaths.from_environment(), self.settle_s, self.on_unplug, self.grant
        )
        revoker = Revoker(reconciler.live, self.emit, self.report)
        revoker.start()
        monitor = session.monitor(events=self.wake, buffer=self.udev_buffer, on_remove=revoker.put)
        monitor.start()  # listen before enumerating, so nothing plugged in between is lost
        watch = FileWatch(self.compose_file, lambda: self.wake.put(Wake.COMPOSE_CHANGED))
        watch.start()
        engine_watch = EngineWatch(
            engine.base_url, name, self.wake.put, lambda: self.wake.put(Wake.RETRY)
        )
        engine_watch.start()
        timers: list[threading.Timer] = []
        notify = ServiceNotify()
        try:
            session.coldplug(monitor)
            self.emit(
                "started",
                project=name,
                hardware=[h.id for h in session.hardware()],
                grant=str(self.grant),
                live_grants=cgroups.host().how,
            )
            self._say_refused(session, set())
            self.report.started(name, self.compose_file)
            converge = Converge()
            if ready:
                ready()
            wake_every = min(HEARTBEAT_S, notify.wake_every_s or HEARTBEAT_S)

            def idle() -> None:
                notify.turn()  # the first: READY=1; then the watchdog's feed
                # the heartbeat: renewed at every wake, and at least every HEARTBEAT_S idle
                self.report.beat(session.hardware())

            while True:
                if converge.due() == Pass.FULL:
                    self._pass(converge, Pass.FULL, session, project, reconciler, timers)
                asked = time.monotonic()
                items = wait_for_work(self.wake, self.debounce_s, wake_every, idle)
                self.report.received(items)
                waited = time.monotonic() - asked
                storm = storming(items, waited, self._last_pass_s)
                if storm and not any(i in URGENT for i in items):
                    # SIGTERM and SIGHUP are not kept waiting for a storm to end
                    items += quiet_tail(
                        self.wake, STORM_QUIET_S, STORM_MOST_S, lambda i: i in URGENT
                    )
                if Wake.STOP in items:
                    self.emit("stopping")
                    self.report.stopped()
                    return 0
                lost = next((i for i in items if isinstance(i, MonitorLost)), None)
                for u in (i for i in items if isinstance(i, UntrustedUevent)):
                    self.emit("uevent-refused", sender=u.sender, reason=u.reason)
                why = resync_reason(items, Wake.RELOAD in items)
                if why is not None:
                    try:
                        monitor = self._resync(session, monitor, lost, converge, why)
                    except UdevError as err:
                        action = "exiting for the service manager to restart hwprov"
                        self.emit("udev-lost", error=str(err), action=action)
                        return 1
                    # The enumeration is newer than every udev event in this burst.
                    items = [i for i in items if not isinstance(i, UdevEvent)]
                events = [i for i in items if isinstance(i, UdevEvent)]
                refused = set(session.inventory.refused)
                for change in session.inventory.apply(events):
                    hw = change.hardware
                    self.emit(str(change.action), hardware=hw.id, kind=hw.kind, node=hw.node)
                self._say_refused(session, refused)
                reloaded = False
                if Wake.RELOAD in items or Wake.COMPOSE_CHANGED in items:
                    try:
                        project = self._load(session)
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
                        others.append((started.service, started.container))
                converge.saw(
                    hardware=bool(events),
                    compose_reloaded=reloaded,
                    retry=Wake.RETRY in items,
                    started_by_others=others,
                    retries_due=[i.service for i in items if isinstance(i, RetryDue)],
                )
                if converge.due() == Pass.CHANGED:
                    # hwprov's own time counts from the burst's first uevent off the socket
                    # (not in a storm, where it waits for the quiet on purpose)
                    received = [e.received_ns for e in events if e.received_ns]
                    since = min(received) if received and not storm and why is None else None
                    self._pass(converge, Pass.CHANGED, session, project, reconciler, timers, since)
        finally:
            notify.stopping()
            for timer in timers:
                timer.cancel()
            engine_watch.stop()
            monitor.stop()
            revoker.stop()
            watch.stop()
            engine.close()

    def _say_refused(self, session: Session, known: set[str]) -> None:
        """A decision line for each newly refused node (`known`: the sys paths said before)."""
        for r in session.refused():
            if r.hardware.sys_path not in known:
                hw = r.hardware
                self.emit("node-refused", hardware=hw.id, node=hw.node, reason=r.reason)

    def _load(self, session: Session) -> Project:
        """The compose file, with its labels checked against the plugins: a label the planner
        would refuse is refused here, while the last good file can still be kept."""
        project = load_project(self.compose_file)
        requirements(project, session.host)
        return project

    def _resync(
        self,
        session: Session,
        monitor: UdevMonitor,
        lost: MonitorLost | None,
        converge: Converge,
        why: str,
    ) -> UdevMonitor:
        """Enumerate again and diff against the inventory: the monitor was lost (with the
        events it dropped: an adapter gone, another on its ttyUSB0), SIGHUP asked, or a uevent
        whose sender was gone could not be believed (`why` says which). A new
        monitor listens first; UdevError when none opens or it keeps being lost."""
        if lost is not None:
            monitor = monitor.reopen(lost.reason)
        refused = set(session.inventory.refused)
        changes = session.resync(monitor)
        self._say_refused(session, refused)
        for change in changes:
            hw = change.hardware
            self.emit(str(change.action), hardware=hw.id, kind=hw.kind, node=hw.node)
        count = Counter(change.action for change in changes)
        self.report.resynced()
        self.emit(
            "resync",
            reason=why,
            added=count[Action.ADD],
            removed=count[Action.REMOVE],
            changed=count[Action.CHANGE],
        )
        # A full pass whatever changed: grants given on the strength of lost events are
        # checked against the containers again.
        converge.saw(hardware=bool(changes), retry=True)
        return monitor

    def _pass(
        self,
        converge: Converge,
        kind: Pass,
        session: Session,
        project: Project,
        reconciler: Reconciler,
        timers: list[threading.Timer],
        since_ns: int | None = None,
    ) -> None:
        """One pass. `since_ns`: when the uevent that brought it came off the socket; the pass
        then says how long hwprov's own work took from there (snapshot, classify, plan) to its
        first engine call (`uevent_to_pass_ms`), and each recreate how long until the engine
        was asked to create the replacement (`uevent_to_create_ms`: the listing, inspect and
        rename on the way are engine calls)."""
        plan = build_plan(project, session.hardware(), session.host, session.refused())
        selected = converge.select(plan, kind)
        began_ns = time.monotonic_ns()
        self._last_pass_s = 0.0
        try:
            order, depends = project.start_order(), project.dependencies()
            outcomes = (
                reconciler.reconcile(selected, order, depends=depends) if selected.services else []
            )
        except EngineError as err:
            retry_in = converge.broke(kind, err)
            event = "container-vanished" if isinstance(err, EngineNotFound) else "engine-down"
            self.report.engine_broke(event, err)
            self.emit(event, error=str(err), retry_in_s=retry_in)
            if retry_in is not None:
                self._later(retry_in, Wake.RETRY, timers)
            return
        for outcome in outcomes:
            fields = outcome.to_json()
            del fields["action"]
            if since_ns is not None and outcome.engine_called_ns is not None:
                fields["uevent_to_create_ms"] = _ms(outcome.engine_called_ns - since_ns)
            self.emit(str(outcome.action), **fields)
        follows = converge.done(plan, selected, outcomes)
        self.report.passed(plan, selected, outcomes, converge.failed, since_ns, time.monotonic_ns())
        for follow in follows:
            if isinstance(follow, GaveUp):
                # Until the next hardware or compose change, or a new container of the service.
                self.emit(
                    "gave-up",
                    service=follow.service,
                    attempts=follow.attempts,
                    reason=follow.reason,
                )
            else:
                self.emit(
                    "retry-scheduled",
                    service=follow.service,
                    in_s=follow.in_s,
                    attempt=follow.attempt,
                )
                self._later(follow.in_s, RetryDue(follow.service), timers)
        if selected.services:
            # The end of a pass: what labs and benchmarks wait for before the next step.
            self._last_pass_s = (time.monotonic_ns() - began_ns) / 1e9
            ms = round(self._last_pass_s * 1000, 1)
            timing = {} if since_ns is None else {"uevent_to_pass_ms": _ms(began_ns - since_ns)}
            self.emit("reconciled", services=len(selected.services), ms=ms, **timing)

    def _later(self, delay_s: float, item: object, timers: list[threading.Timer]) -> None:
        """Put `item` on the wake queue after `delay_s`."""
        timer = threading.Timer(delay_s, self.wake.put, args=(item,))
        timer.daemon = True
        threads.start(timer)
        timers[:] = [t for t in timers if t.is_alive()] + [timer]


def wait_for_work(
    wake: queue.SimpleQueue[object], debounce_s: float, every_s: float, turn: Callable[[], None]
) -> list[object]:
    """The next burst off the wake queue, calling `turn` first and again every `every_s`
    while nothing comes (the heartbeat and the watchdog's feed).

    Signals are taken right before each wait, after `turn`: under the simulator a file
    operation in this thread while another reads /sys can leave SIGTERM blocked here
    (threads.take_signals), and `turn` writes the status file. Taken before it, a SIGTERM
    could wait out a whole `every_s` (seen: 10 s, in 1 of 24 stops).
    """
    while True:
        turn()
        threads.take_signals()
        if (items := next_burst(wake, debounce_s, every_s)) is not None:
            return items


def _ms(ns: int) -> float:
    return round(ns / 1e6, 2)
