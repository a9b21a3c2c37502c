"""Make each service's containers match the plan: one pass, independent services side by side.

What a container gets depends on who owns it. A compose-created container is recreated with
the new hardware settings (containers/recreate.py: the safe order, balena's strategies,
rollback); a supervisor-created one keeps its config and gets its nodes live
(containers/livegrant.py), because the supervisor reverts Devices/CapAdd changes and breaks on
foreign names. Each pass starts by recovering any swap a killed hwprov left half-done
(containers/recovery.py).

Services are reconciled by a bounded pool of workers (WORKERS): a storm that touches ten
services costs about one settle wait, not ten. depends_on is kept: a service starts its swap
only when the services it depends on have finished theirs in this pass. Each swap is on its
own container and its own journal names, so swaps in flight side by side recover as one does.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

from hwprov import threads
from hwprov.containers import cgroups, journal
from hwprov.containers.engine import EngineAPI, HostPaths
from hwprov.containers.labels import service_of, supervised
from hwprov.containers.livegrant import LiveGrants
from hwprov.containers.outcome import Outcome, OutcomeAction
from hwprov.containers.recovery import recover
from hwprov.containers.recreate import Recreator
from hwprov.containers.spec import (
    differences,
    held_for,
    labels_of,
    name_of,
    stopped_on_its_own,
    wanted,
)
from hwprov.errors import EngineNotFound
from hwprov.hardware.nodeview import node_present
from hwprov.planning.plan import Plan, ServicePlan
from hwprov.records import GrantMode, UnplugPolicy

# Swaps in flight at once. Each spends most of its time waiting on the engine or in its settle
# sleep, so more workers than cores pay; the engine serialises what it must.
WORKERS = 4


@dataclass
class Reconciler:
    engine: EngineAPI
    project: str | None = None
    host_path: HostPaths = field(default_factory=HostPaths)
    settle_s: float = 0.5  # how long a replacement must stay up before the original goes
    on_unplug: UnplugPolicy = UnplugPolicy.RECREATE  # unless a service's label says otherwise
    grant: GrantMode = GrantMode.RECREATE  # unless a service's io.hwprov.grant says otherwise
    # What this host's cgroups allow for live grants (None: found at start; tests pass one).
    cgroup_host: cgroups.CgroupHost | None = None
    workers: int = WORKERS
    # whether a host node is there now (tests pass the fake engine's idea of it)
    present: Callable[[str], bool] = node_present
    # ids of containers hwprov started: their start events are its own doing
    _started: set[str] = field(default_factory=set)
    # names of containers that ran until a recreate stopped them and a rollback could not
    # start them again (their own device had gone too): they run again at the next pass
    interrupted: set[str] = field(default_factory=set)
    live: LiveGrants = field(init=False)
    _recreator: Recreator = field(init=False)

    def __post_init__(self) -> None:
        self.live = LiveGrants(self.host_path)
        if self.cgroup_host is None:
            self.cgroup_host = cgroups.host()
        self._recreator = Recreator(
            self.engine, self.settle_s, self._started, self.interrupted, self.present
        )

    def claims_start(self, container: str) -> bool:
        """Whether a start event of this container was hwprov's own doing (asked once)."""
        if container in self._started:
            self._started.discard(container)
            return True
        return False

    # -- finding containers -------------------------------------------------------------

    def containers_of(
        self, service: str, summaries: Sequence[Mapping[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """Inspected containers of one service: compose-created, or supervisor-created.

        `summaries` is one pass's listing of every container: the engine cannot OR label
        filters, and one unfiltered list costs what one filtered list does (~5 ms), so a pass
        lists once instead of twice per service and once more for recovery.
        """
        if summaries is None:
            summaries = self.engine.containers()
        ids = [
            str(c["Id"]) for c in summaries if service_of(c.get("Labels"), self.project) == service
        ]
        found = []
        for cid in ids:
            try:
                found.append(self.engine.inspect(cid))
            except EngineNotFound:
                continue  # removed by someone else since the listing: not ours to touch now
        # A swap in flight is recovered before anything else touches the service.
        return [a for a in found if not journal.in_flight(name_of(a))]

    # -- reconciling ----------------------------------------------------------------------

    def reconcile(
        self,
        plan: Plan,
        order: Sequence[str] | None = None,
        dry_run: bool = False,
        depends: Mapping[str, Collection[str]] | None = None,
    ) -> list[Outcome]:
        """One pass over the plan's services. Outcomes come in `order` (depends_on first) when
        given; `depends` (service -> the services it depends on) holds a service back until
        those are done, where the pool runs several at once."""
        by_name = {s.service: s for s in plan.services}
        names = [n for n in (order or ()) if n in by_name]
        names += sorted(set(by_name) - set(names))
        summaries = self.engine.containers()
        outcomes = [] if dry_run else recover(self.engine, self.project, summaries, self._started)
        if outcomes:  # recovery renamed, removed or started some: list what is there now
            summaries = self.engine.containers()

        def one(name: str) -> list[Outcome]:
            return self.reconcile_service(by_name[name], dry_run, summaries)

        if dry_run or self.workers <= 1 or len(names) <= 1:
            for name in names:
                outcomes.extend(one(name))
            return outcomes
        done = run_in_order(names, one, depends or {}, self.workers)
        for name in names:
            outcomes.extend(done[name])
        return outcomes

    def reconcile_service(
        self,
        plan: ServicePlan,
        dry_run: bool = False,
        summaries: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[Outcome]:
        if not plan.managed:
            return [Outcome(plan.service, None, OutcomeAction.SKIPPED, "io.hwprov.enable is false")]
        containers = self.containers_of(plan.service, summaries)
        if not containers:
            detail = "no container for this service"
            return [Outcome(plan.service, None, OutcomeAction.MISSING, detail)]
        spec = replace(wanted(plan, self.host_path), held=self._held(plan))
        outcomes = []
        live = (plan.grant or self.grant) == GrantMode.LIVE
        assert self.cgroup_host is not None  # set in __post_init__
        can_live = self.cgroup_host.mechanism is not cgroups.Mechanism.NONE
        for attrs in containers:
            name = name_of(attrs)
            # The supervisor reverts config changes: live is its containers' only way.
            if supervised(labels_of(attrs)) or (live and can_live):
                outcomes.append(self.live.sync(plan, attrs, dry_run))
                continue
            diff = tuple(differences(attrs, spec))
            deferred = held_for(attrs) is None and name not in self.interrupted
            if diff and deferred and stopped_on_its_own(attrs):
                # Its exit code and logs stay; the engine's start event brings it back here.
                detail = "stopped: recreated with its hardware when it starts"
                outcomes.append(Outcome(plan.service, name, OutcomeAction.DEFERRED, detail, diff))
            elif not diff and name in self.interrupted and not dry_run:
                outcomes.append(self._recreator.resume(plan.service, attrs, spec))
            elif not diff:
                outcomes.append(Outcome(plan.service, name, OutcomeAction.UNCHANGED))
            elif dry_run:
                outcomes.append(Outcome(plan.service, name, OutcomeAction.WOULD_RECREATE, "", diff))
            else:
                done = self._recreator.recreate(plan.service, attrs, spec, diff)
                if live:  # asked for live, given a recreate: say why
                    why = f"io.hwprov.grant is live, but {self.cgroup_host.describe()}: recreated"
                    done = replace(done, detail="; ".join(d for d in (why, done.detail) if d))
                outcomes.append(done)
        return outcomes

    def _held(self, plan: ServicePlan) -> str | None:
        """Why the service must be kept stopped under the `stop` unplug policy, if it must."""
        if (plan.on_unplug or self.on_unplug) != UnplugPolicy.STOP:
            return None
        missing = [u.what for u in plan.unmet if not u.optional]
        return "; ".join(missing)[:200] or None  # a label value, kept short


def run_in_order(
    names: Sequence[str],
    work: Callable[[str], list[Outcome]],
    depends: Mapping[str, Collection[str]],
    workers: int,
) -> dict[str, list[Outcome]]:
    """`work` for each name on a pool of `workers` threads, a name only once every name it
    depends on (among `names`) is done. `names` is in depends_on order, so the first name not
    yet started whose dependencies are done is always found; a cycle is broken in that order,
    as compose breaks it. An error in one (the engine gone) is raised once the others in
    flight are done: no swap is left running unwatched."""
    pending = list(names)
    results: dict[str, list[Outcome]] = {}
    running: dict[Future[list[Outcome]], str] = {}
    failure: BaseException | None = None

    def ready(name: str) -> bool:
        ahead = set(pending[: pending.index(name)]) | set(running.values())
        return not (set(depends.get(name, ())) & ahead)

    with ThreadPoolExecutor(workers, "hwprov-swap") as pool:
        while pending or running:
            while failure is None and len(running) < workers:
                name = next((n for n in pending if ready(n)), None)
                if name is None:
                    break
                pending.remove(name)
                with threads.signals_blocked():  # a worker it starts keeps the main's signals
                    running[pool.submit(work, name)] = name
            if not running:
                break  # nothing more may start (after a failure)
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                try:
                    results[name] = future.result()
                except BaseException as err:  # raised below, once the others are done
                    failure = failure or err
    if failure is not None:
        raise failure
    return results
