"""What the daemon reconciles next, decided from what it has seen. Pure: no threads, no queue,
no engine; the loop (daemon/loop.py) feeds it and carries out what it says.

A full pass (every service) is due at start, after a compose reload, after an engine retry and
after a pass the engine broke; otherwise a pass covers only the services whose plan changed
since the last one applied, plus those whose container someone else started (a restart loses
what was granted live; `docker compose up` may recreate a container without its devices).
A service whose plan failed (rolled back) is not retried on its own restart with the same plan:
the restart policy bringing it back must not loop it through the same failing recreate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from hwprov.containers.engine import Backoff
from hwprov.containers.outcome import Outcome
from hwprov.errors import EngineError, EngineNotFound
from hwprov.planning.plan import Plan, ServicePlan


class Pass(StrEnum):
    FULL = "full"
    CHANGED = "changed"


@dataclass
class Converge:
    applied: Plan | None = None  # the last plan a pass carried out
    full_due: bool = True
    hardware_changed: bool = False
    restarted: set[str] = field(default_factory=set)  # services started by someone else
    # what a rolled-back service was given last, so only a new plan retries it
    failed: dict[str, ServicePlan] = field(default_factory=dict)
    backoff: Backoff = field(default_factory=Backoff)

    # -- what came in --------------------------------------------------------------------

    def saw(
        self,
        *,
        hardware: bool = False,
        compose_reloaded: bool = False,
        retry: bool = False,
        started_by_others: Iterable[str] = (),
    ) -> None:
        self.hardware_changed = self.hardware_changed or hardware
        self.full_due = self.full_due or compose_reloaded or retry
        self.restarted.update(started_by_others)

    # -- what to do ------------------------------------------------------------------------

    def due(self) -> Pass | None:
        if self.full_due or self.applied is None:
            return Pass.FULL
        if self.hardware_changed or self.restarted:
            return Pass.CHANGED
        return None

    def select(self, plan: Plan, kind: Pass) -> Plan:
        """The part of `plan` this pass reconciles (possibly no service at all)."""
        before = {s.service: s for s in self.applied.services} if self.applied else {}
        changed = tuple(
            s
            for s in plan.services
            if kind == Pass.FULL
            or before.get(s.service) != s
            or (s.service in self.restarted and self.failed.get(s.service) != s)
        )
        return Plan(plan.source, changed, plan.warnings)

    # -- how it went -----------------------------------------------------------------------

    def done(self, plan: Plan, selected: Plan, outcomes: Iterable[Outcome]) -> None:
        """A pass over `selected` (part of `plan`) came back with these outcomes."""
        by_name = {s.service: s for s in selected.services}
        for outcome in outcomes:
            if outcome.action.failed:
                self.failed[outcome.service] = by_name[outcome.service]
            elif outcome.service in by_name:
                self.failed.pop(outcome.service, None)
        self.applied = plan
        self.full_due = self.hardware_changed = False
        self.restarted.clear()
        self.backoff.reset()

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
