"""What the daemon reconciles next, decided from what it has seen. Pure: no threads, no queue,
no engine; the loop (daemon/loop.py) feeds it and carries out what it says.

A full pass (every service) is due at start, after a compose reload, after an engine retry and
after a pass the engine broke; otherwise a pass covers only the services whose plan changed
since the last one applied, those whose container someone else started (a restart loses what
was granted live; `docker compose up` may recreate a container without its devices), and those
whose retry is due.

A service that failed (rolled back: another tool removed its replacement mid-swap, or the
replacement did not stay up) is retried with back-off, MAX_ATTEMPTS times for one plan, then
given up until the next hardware or compose change. A restart of the very container a rollback
left (its restart policy) counts as an attempt, so a crash loop cannot drive a recreate loop; a
start of another container (`docker compose up --force-recreate`) is a new situation and starts
the count again.

A swap abandoned because its hardware went away again before it started is no failure: the
service keeps what it had, and is due in the next pass whatever its plan then says (the
hardware may be back by then, and the plan the same as the one this pass could not apply).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from hwprov.containers.engine import Backoff
from hwprov.containers.outcome import Outcome, OutcomeAction
from hwprov.errors import EngineError, EngineNotFound
from hwprov.planning.plan import Plan, ServicePlan
from hwprov.records import UdevEvent

MAX_ATTEMPTS = 3
FIRST_RETRY_S = 1.0
# A storm: hardware events were already waiting when a pass that touched containers ended.
# The loop then gathers until the events stop for STORM_QUIET_S (at most STORM_MOST_S, so an
# endless storm is still followed) and plans the burst once. A lone plug is handled at once.
STORM_QUIET_S, STORM_MOST_S = 0.25, 10.0
_BUSY_PASS_S = 0.05  # a pass this long swapped or granted something: events could pile up
_WAITING_S = 0.005  # the next burst came this fast: it was queued during the pass


class Pass(StrEnum):
    FULL = "full"
    CHANGED = "changed"


@dataclass
class Failure:
    plan: ServicePlan  # what the service was to be given
    attempts: int
    reason: str
    container_id: str | None  # the container the failure left in place

    @property
    def gave_up(self) -> bool:
        return self.attempts >= MAX_ATTEMPTS


@dataclass(frozen=True, slots=True)
class Retry:
    service: str
    in_s: float
    attempt: int  # the failed attempt this retry follows


@dataclass(frozen=True, slots=True)
class GaveUp:
    service: str
    attempts: int
    reason: str


def storming(burst: Sequence[object], waited_s: float, last_pass_s: float) -> bool:
    """Whether `burst`, taken `waited_s` after a pass that took `last_pass_s`, is a storm's
    middle: hardware kept changing while that pass swapped containers."""
    return (
        last_pass_s >= _BUSY_PASS_S
        and waited_s < _WAITING_S
        and any(isinstance(i, UdevEvent) for i in burst)
    )


@dataclass
class Converge:
    applied: Plan | None = None  # the last plan a pass carried out
    full_due: bool = True
    hardware_changed: bool = False
    due_services: set[str] = field(default_factory=set)  # in the next pass whatever their plan
    failed: dict[str, Failure] = field(default_factory=dict)
    backoff: Backoff = field(default_factory=Backoff)

    # -- what came in --------------------------------------------------------------------

    def saw(
        self,
        *,
        hardware: bool = False,
        compose_reloaded: bool = False,
        retry: bool = False,
        started_by_others: Iterable[tuple[str, str]] = (),
        retries_due: Iterable[str] = (),
    ) -> None:
        """`started_by_others` holds (service, container id); `retries_due`, services whose
        retry timer fired."""
        if hardware:
            self.hardware_changed = True
            for service, failure in self.failed.items():
                if failure.gave_up:  # a new situation: the count starts again
                    failure.attempts = 0
                    self.due_services.add(service)
        if compose_reloaded:
            self.failed.clear()
        self.full_due = self.full_due or compose_reloaded or retry
        for service, container in started_by_others:
            left = self.failed.get(service)
            if left is not None and container != left.container_id:
                left.attempts = 0  # not the one it left: someone recreated it
            if left is None or not left.gave_up:
                self.due_services.add(service)
        self.due_services.update(s for s in retries_due if s in self.failed)

    # -- what to do ------------------------------------------------------------------------

    def due(self) -> Pass | None:
        if self.full_due or self.applied is None:
            return Pass.FULL
        if self.hardware_changed or self.due_services:
            return Pass.CHANGED
        return None

    def select(self, plan: Plan, kind: Pass) -> Plan:
        """The part of `plan` this pass reconciles (possibly no service at all)."""
        before = {s.service: s for s in self.applied.services} if self.applied else {}
        changed = tuple(
            s
            for s in plan.services
            if kind == Pass.FULL or before.get(s.service) != s or s.service in self.due_services
        )
        return Plan(plan.source, changed, plan.warnings)

    # -- how it went -----------------------------------------------------------------------

    def done(self, plan: Plan, selected: Plan, outcomes: Sequence[Outcome]) -> list[Retry | GaveUp]:
        """A pass over `selected` (part of `plan`) came back with these outcomes: the retries
        to schedule and the services given up on."""
        by_name = {s.service: s for s in selected.services}
        follow: list[Retry | GaveUp] = []
        abandoned: set[str] = set()
        for outcome in outcomes:
            if outcome.service not in by_name:
                continue  # a recovery of a swap another pass left
            if outcome.action == OutcomeAction.ABANDONED:
                abandoned.add(outcome.service)
            if not outcome.action.failed:
                self.failed.pop(outcome.service, None)
                continue
            wanted = by_name[outcome.service]
            before = self.failed.get(outcome.service)
            attempts = before.attempts + 1 if before and before.plan == wanted else 1
            failure = Failure(wanted, attempts, outcome.detail, outcome.container_id)
            self.failed[outcome.service] = failure
            if failure.gave_up:
                follow.append(GaveUp(outcome.service, attempts, outcome.detail))
            else:
                delay = FIRST_RETRY_S * 2 ** (attempts - 1)
                follow.append(Retry(outcome.service, delay, attempts))
        self.applied = plan
        self.full_due = self.hardware_changed = False
        self.due_services = abandoned
        self.backoff.reset()
        return follow

    def broke(self, kind: Pass, err: EngineError) -> float | None:
        """The engine broke a pass: seconds until the retry the loop must schedule, or None
        when a full pass must follow at once (it was a partial one).

        A container someone removed between listing and inspecting is no outage: the next
        full pass sees the world without it, now, and the back-off does not grow.
        """
        self.full_due = True
        if kind == Pass.CHANGED:
            return None
        if isinstance(err, EngineNotFound):
            return 0.0
        return self.backoff.next()
