"""`hwprov run`: coldplug, reconcile, then follow hotplug events and compose edits.

Everything that can wake the daemon (udev events, a compose file edit, SIGHUP, SIGTERM, an
engine retry timer) lands in one queue, and the loop blocks on it: idle costs no CPU. A
burst is taken whole: the first event is handled at once, with whatever queued behind it.
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from hwprov.compose.loader import load_project
from hwprov.compose.model import Project
from hwprov.containers.engine import Engine, HostPaths
from hwprov.containers.events import ContainerStarted, EngineWatch
from hwprov.containers.reconciler import Reconciler, start_order
from hwprov.daemon.config import DEFAULT_FILE, LOG_FORMATS, resolve
from hwprov.daemon.filewatch import FileWatch
from hwprov.errors import EngineError, HwprovError
from hwprov.hardware.inventory import Inventory
from hwprov.hardware.smbus_io import SMBusProbeIO
from hwprov.hardware.udev import UdevEvent, UdevMonitor, coldplug
from hwprov.planning.build import build_plan, project_name
from hwprov.planning.plan import Plan, ServicePlan
from hwprov.plugins.host import PluginHost

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 30.0


class Wake(StrEnum):
    STOP = "stop"
    RELOAD = "reload"
    COMPOSE_CHANGED = "compose-changed"
    RETRY = "retry"


LOG_FORMAT = "json"


def emit(event: str, **fields: Any) -> None:
    """One structured line per decision, on stderr: JSON, or `event key=value ...` text."""
    if LOG_FORMAT == "text":
        parts = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in fields.items()]
        line = " ".join([time.strftime("%H:%M:%S"), event, *parts])
    else:
        line = json.dumps({"ts": round(time.time(), 3), "event": event, **fields})
    print(line, file=sys.stderr, flush=True)


@dataclass
class Daemon:
    compose_file: Path
    project: str | None = None
    engine_url: str | None = None
    disabled: tuple[str, ...] = ()
    debounce_s: float = 0.0
    settle_s: float = 0.5
    on_unplug: str = "recreate"
    wake: queue.Queue[object] = field(default_factory=queue.Queue)
    failed: dict[str, ServicePlan] = field(default_factory=dict)

    def run(self, ready: Callable[[], None] | None = None) -> int:
        host = PluginHost(disabled=self.disabled).load()
        chips = tuple(host.i2c_chips())
        inventory = Inventory(host, lambda: SMBusProbeIO(chips))
        project = load_project(self.compose_file)  # a broken file at start is a clear error
        name = self.project or project_name(self.compose_file, project.name)
        monitor = UdevMonitor(host.subsystems(), host.sysfs_attributes(), events=self.wake)
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
        retry: threading.Timer | None = None
        backoff = 0.5
        try:
            for change in inventory.load(coldplug(host.subsystems(), host.sysfs_attributes())):
                monitor.remember_path(change.hardware.sys_path, change.hardware.node)
            emit("started", project=name, hardware=[h.id for h in inventory.hardware()])
            applied: Plan | None = None
            pending_all = True
            restarted: set[str] = set()  # services with a container started by someone else
            # What a rolled-back service was given last: a start of its container (the
            # restart policy bringing it back) does not retry the same plan, a new plan does.
            self.failed.clear()
            if ready:
                ready()
            while True:
                if pending_all or applied is None:
                    plan = build_plan(project, inventory.hardware(), host)
                    try:
                        self._reconcile(reconciler, project, plan, applied, everything=True)
                        applied, pending_all, backoff = plan, False, 0.5
                        restarted.clear()
                    except EngineError as err:
                        emit("engine-down", error=str(err), retry_in_s=backoff)
                        retry = threading.Timer(backoff, lambda: self.wake.put(Wake.RETRY))
                        retry.daemon = True
                        retry.start()
                        backoff = min(backoff * 2, MAX_BACKOFF_S)
                items = self._next_batch()
                if Wake.STOP in items:
                    emit("stopping")
                    return 0
                events = [i for i in items if isinstance(i, UdevEvent)]
                for change in inventory.apply(events):
                    hw = change.hardware
                    emit(str(change.action), hardware=hw.id, kind=hw.kind, node=hw.node)
                if Wake.RELOAD in items or Wake.COMPOSE_CHANGED in items:
                    try:
                        project = load_project(self.compose_file)
                        emit("compose-reloaded", source=str(self.compose_file))
                        pending_all = True
                    except HwprovError as err:
                        emit("compose-broken", error=str(err), action="keeping the last good one")
                if Wake.RETRY in items:
                    pending_all = True
                for started in (i for i in items if isinstance(i, ContainerStarted)):
                    if started.container in reconciler.started:
                        reconciler.started.discard(started.container)  # hwprov's own doing
                    else:
                        emit("container-started", service=started.service, id=started.container)
                        restarted.add(started.service)
                if not pending_all and applied is not None and (events or restarted):
                    plan = build_plan(project, inventory.hardware(), host)
                    try:
                        self._reconcile(
                            reconciler, project, plan, applied, everything=False, also=restarted
                        )
                        applied = plan
                        restarted.clear()
                    except EngineError as err:
                        emit("engine-down", error=str(err), retry_in_s=backoff)
                        pending_all = True
        finally:
            if retry is not None:
                retry.cancel()
            engine_watch.stop()
            monitor.stop()
            watch.stop()
            engine.close()

    def _next_batch(self) -> list[object]:
        items = [self.wake.get()]
        deadline = time.monotonic() + self.debounce_s
        while True:
            timeout = deadline - time.monotonic()
            try:
                items.append(
                    self.wake.get(timeout=timeout) if timeout > 0 else self.wake.get_nowait()
                )
            except queue.Empty:
                return items

    def _reconcile(
        self,
        reconciler: Reconciler,
        project: Project,
        plan: Plan,
        applied: Plan | None,
        everything: bool,
        also: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        before = {s.service: s for s in applied.services} if applied else {}
        changed = [
            s
            for s in plan.services
            if everything
            or before.get(s.service) != s
            or (s.service in also and self.failed.get(s.service) != s)
        ]
        if not changed:
            return
        services = {s.name: s.depends_on for s in project.services}
        subset = Plan(plan.source, tuple(changed), plan.warnings)
        by_name = {s.service: s for s in changed}
        began = time.monotonic()
        for outcome in reconciler.reconcile(subset, start_order(services)):
            if outcome.action in ("rolled-back", "failed"):
                self.failed[outcome.service] = by_name[outcome.service]
            elif outcome.service in by_name:
                self.failed.pop(outcome.service, None)
            emit(
                outcome.action,
                service=outcome.service,
                container=outcome.container,
                detail=outcome.detail,
                differences=list(outcome.differences),
            )
        # The end of a pass: what labs and benchmarks wait for before the next step.
        emit("reconciled", services=len(changed), ms=round((time.monotonic() - began) * 1000, 1))


def add_unplug_option(parser: argparse.ArgumentParser, default: str | None = "recreate") -> None:
    parser.add_argument(
        "--on-unplug",
        choices=("recreate", "stop"),
        default=default,
        help="when a service's required hardware goes: recreate it without the device "
        "(default), or keep it stopped until the hardware is back; the label "
        "io.hwprov.on-unplug overrides this per service",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="the agent: follow hardware and compose changes, keep containers matching",
        description="Coldplug scan, reconcile, then handle hotplug events (re-plan, recreate "
        "only the affected services), compose file edits and container starts. SIGHUP reloads "
        "the compose file, SIGTERM stops. One line per decision on stderr. Settings come from "
        "the defaults, then the config file, then HWPROV_* variables, then these options "
        "(docs/config.md).",
        epilog="example: hwprov run -f /data/docker-compose.yml --debounce-ms 0",
    )
    p.add_argument("--config", type=Path, help=f"settings file (default: {DEFAULT_FILE} if any)")
    p.add_argument("-f", "--file", type=Path, help="the compose file (default docker-compose.yml)")
    p.add_argument("-p", "--project-name")
    p.add_argument("--engine", help="engine socket URL (default: $DOCKER_HOST or the local socket)")
    p.add_argument("--disable", action="append", metavar="PLUGIN", help="a plugin not to load")
    p.add_argument(
        "--debounce-ms",
        type=float,
        help="extra wait to gather a burst after its first event (default 0)",
    )
    add_unplug_option(p, default=None)
    p.add_argument(
        "--settle-ms",
        type=float,
        help="how long a replacement must stay up before the original is removed (default 500)",
    )
    p.add_argument("--log-format", choices=LOG_FORMATS, help="json (default) or text lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = resolve(
        args.config,
        {
            "compose_file": args.file,
            "project": args.project_name,
            "engine": args.engine,
            "disable": tuple(args.disable or ()),
            "debounce_ms": args.debounce_ms,
            "settle_ms": args.settle_ms,
            "on_unplug": args.on_unplug,
            "log_format": args.log_format,
        },
    )
    global LOG_FORMAT
    LOG_FORMAT = config.log_format
    daemon = Daemon(
        compose_file=config.compose_file,
        project=config.project,
        engine_url=config.engine,
        disabled=config.disable,
        debounce_s=config.debounce_ms / 1000,
        settle_s=config.settle_ms / 1000,
        on_unplug=config.on_unplug,
    )
    signal.signal(signal.SIGTERM, lambda *_: daemon.wake.put(Wake.STOP))
    signal.signal(signal.SIGINT, lambda *_: daemon.wake.put(Wake.STOP))
    signal.signal(signal.SIGHUP, lambda *_: daemon.wake.put(Wake.RELOAD))
    return daemon.run()
