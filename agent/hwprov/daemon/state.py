"""What the running agent says about itself, and how a reader judges it. Pure: no files, no
clock, no processes; the daemon publishes the record (daemon/statusfile.py), `hwprov status`
reads and judges it (commands/status.py).

The record is what an operator asks first: is the agent up (its pid and a heartbeat the main
loop renews even when idle), what hardware it sees, and for each service whether it has its
hardware and, when not, why. A service's standing comes from the plan (what it needs, what is
missing), the outcomes of the last pass that touched it and the daemon's retry bookkeeping
(daemon/converge.py's `Failure`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from hwprov.containers.outcome import Outcome, OutcomeAction
from hwprov.daemon.converge import Failure
from hwprov.errors import HwprovError
from hwprov.planning.plan import ServicePlan
from hwprov.records import UnplugPolicy
from hwprov.schemas import Schema, versioned

# The main loop renews the heartbeat at least this often, idle or not; a reader calls the agent
# stale when it is STALE_AFTER_BEATS beats old (a long pass, a storm's wait, fits well inside).
HEARTBEAT_S = 10.0
STALE_AFTER_BEATS = 6


class StatusError(HwprovError):
    """The status file is not one `hwprov run` wrote (or not of a version this one reads)."""


class Standing(StrEnum):
    """Where a service stands; the one list `hwprov status` and the status file use."""

    GRANTED = "granted"  # its container has everything its plan asks for
    WAITING = "waiting"  # required hardware is missing: it runs without it (on-unplug recreate)
    HELD = "held"  # required hardware is missing: kept stopped until it is back (on-unplug stop)
    FAILED = "failed"  # its last attempt failed: retried with back-off, or given up
    DEFERRED = "deferred"  # stopped on its own: recreated with its hardware when it starts
    MISSING = "missing"  # the service has no container
    SKIPPED = "skipped"  # io.hwprov.enable is false


class Health(StrEnum):
    UP = "up"
    STALE = "stale"  # a process with its pid may be there, but the main loop stopped beating
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    service: str
    standing: Standing
    reason: str  # why it stands there; empty when granted with nothing to add
    action: str | None  # the last outcome a pass gave it (OutcomeAction), None before any
    containers: tuple[str, ...] = ()
    hardware: tuple[str, ...] = ()  # ids of the hardware its plan grants
    missing: tuple[str, ...] = ()  # required hardware not attached
    attempts: int = 0  # failed attempts at the current plan
    gave_up: bool = False  # until the next hardware or compose change

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "standing": str(self.standing),
            "reason": self.reason,
            "action": self.action,
            "containers": list(self.containers),
            "hardware": list(self.hardware),
            "missing": list(self.missing),
            "attempts": self.attempts,
            "gave_up": self.gave_up,
        }


@dataclass(frozen=True, slots=True)
class HardwareSeen:
    id: str
    kind: str
    node: str | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "node": self.node}


@dataclass(frozen=True, slots=True)
class AgentState:
    """The status file's content: what `hwprov run` says about itself at one heartbeat."""

    pid: int
    pid_namespace: int | None  # the inode of /proc/self/ns/pid: whether a reader can see `pid`
    version: str
    started: float  # Unix time
    heartbeat: float  # Unix time of the main loop's last beat
    heartbeat_every_s: float
    project: str
    compose_file: str
    last_pass: float | None = None  # Unix time a pass last ended
    engine_error: str | None = None  # why the last pass could not reach the engine, if it could not
    hardware: tuple[HardwareSeen, ...] = ()
    services: tuple[ServiceStatus, ...] = ()
    metrics: str | None = None  # where the Prometheus endpoint listens, if it does

    def to_json(self) -> dict[str, Any]:
        return versioned(
            Schema.STATUS,
            {
                "pid": self.pid,
                "pid_namespace": self.pid_namespace,
                "version": self.version,
                "started": self.started,
                "heartbeat": self.heartbeat,
                "heartbeat_every_s": self.heartbeat_every_s,
                "last_pass": self.last_pass,
                "project": self.project,
                "compose_file": self.compose_file,
                "engine_error": self.engine_error,
                "metrics": self.metrics,
                "hardware": [h.to_json() for h in self.hardware],
                "services": [s.to_json() for s in self.services],
            },
        )

    @classmethod
    def from_json(cls, doc: object, source: str) -> AgentState:
        if not isinstance(doc, dict) or doc.get("schema") != Schema.STATUS:
            found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
            raise StatusError(f"{source}: not a {Schema.STATUS} document (found {found!r})")
        try:
            return cls(
                pid=int(doc["pid"]),
                pid_namespace=doc["pid_namespace"],
                version=str(doc["version"]),
                started=float(doc["started"]),
                heartbeat=float(doc["heartbeat"]),
                heartbeat_every_s=float(doc["heartbeat_every_s"]),
                project=str(doc["project"]),
                compose_file=str(doc["compose_file"]),
                last_pass=doc["last_pass"],
                engine_error=doc["engine_error"],
                metrics=doc["metrics"],
                hardware=tuple(
                    HardwareSeen(h["id"], h["kind"], h["node"]) for h in doc["hardware"]
                ),
                services=tuple(_service(s) for s in doc["services"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise StatusError(f"{source}: a broken {Schema.STATUS} document ({err!r})") from None


def _service(doc: Mapping[str, Any]) -> ServiceStatus:
    return ServiceStatus(
        service=str(doc["service"]),
        standing=Standing(doc["standing"]),
        reason=str(doc["reason"]),
        action=doc["action"],
        containers=tuple(doc["containers"]),
        hardware=tuple(doc["hardware"]),
        missing=tuple(doc["missing"]),
        attempts=int(doc["attempts"]),
        gave_up=bool(doc["gave_up"]),
    )


def service_status(
    plan: ServicePlan,
    outcomes: Sequence[Outcome],
    failure: Failure | None,
    default_unplug: UnplugPolicy,
) -> ServiceStatus:
    """Where `plan`'s service stands after a pass gave it `outcomes` (one per container),
    with `failure` the daemon's record of its failed attempts, if any."""
    actions = [o.action for o in outcomes]
    missing = tuple(u.what for u in plan.unmet if not u.optional)
    base = ServiceStatus(
        plan.service,
        Standing.GRANTED,
        "",
        action=str(actions[-1]) if actions else None,
        containers=tuple(o.container for o in outcomes if o.container),
        hardware=plan.hardware,
        missing=missing,
    )
    if failure is not None:
        return replace(
            base,
            standing=Standing.FAILED,
            reason=failure.reason,
            attempts=failure.attempts,
            gave_up=failure.gave_up,
        )
    for action, standing in (
        (OutcomeAction.SKIPPED, Standing.SKIPPED),
        (OutcomeAction.MISSING, Standing.MISSING),
        (OutcomeAction.DEFERRED, Standing.DEFERRED),
    ):
        if action in actions or (action == OutcomeAction.SKIPPED and not plan.managed):
            detail = next((o.detail for o in outcomes if o.action == action), "")
            return replace(base, standing=standing, reason=detail)
    if missing:
        policy = plan.on_unplug or default_unplug
        standing = Standing.HELD if policy == UnplugPolicy.STOP else Standing.WAITING
        why = "; ".join(f"{u.what}: {u.reason}" for u in plan.unmet if not u.optional)
        return replace(base, standing=standing, reason=f"missing {why}")
    return replace(base, reason="; ".join(dict.fromkeys(o.detail for o in outcomes if o.detail)))


@dataclass(frozen=True, slots=True)
class Verdict:
    health: Health
    reason: str
    heartbeat_age_s: float | None = None


def judge(
    state: AgentState | None, now: float, alive: bool | None, missing_why: str = ""
) -> Verdict:
    """Whether the agent that wrote `state` is up at `now` (Unix time). `alive`: whether its
    pid is a live process, None when this reader cannot see it (another pid namespace);
    `missing_why`: why there is no state to judge."""
    if state is None:
        return Verdict(Health.DOWN, missing_why or "no status")
    age = round(now - state.heartbeat, 3)
    if alive is False:
        return Verdict(Health.DOWN, f"hwprov run (pid {state.pid}) is not running", age)
    limit = state.heartbeat_every_s * STALE_AFTER_BEATS
    if age > limit:
        why = f"the last heartbeat is {age:.0f} s old (more than {limit:.0f} s)"
        return Verdict(Health.STALE, why, age)
    return Verdict(Health.UP, "", age)
