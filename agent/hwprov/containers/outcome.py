"""What reconciling did to one container: the record, and the one list of what it can say."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class OutcomeAction(StrEnum):
    UNCHANGED = "unchanged"
    RECREATED = "recreated"
    WOULD_RECREATE = "would-recreate"  # --dry-run
    GRANTED = "granted"  # live, into a running container (the supervisor's, or grant: live)
    WOULD_GRANT = "would-grant"  # --dry-run
    HELD = "held"  # recreated stopped: required hardware is gone (unplug policy `stop`)
    RESTARTED = "restarted"  # an original a rollback left stopped runs again
    RECOVERED = "recovered"  # a swap a killed hwprov left half-done was finished or undone
    ROLLED_BACK = "rolled-back"
    # the hardware it was to get went away before the swap started: the original is as it was,
    # and the event that took the hardware brings the next pass (not a failure: no retry)
    ABANDONED = "abandoned"
    FAILED = "failed"
    DEFERRED = "deferred"  # stopped on its own: recreated when it starts, its exit kept
    MISSING = "missing"  # the service has no container
    SKIPPED = "skipped"  # io.hwprov.enable is false

    @property
    def failed(self) -> bool:
        """The container did not get its plan: the daemon retries it on the next change."""
        return self in (OutcomeAction.ROLLED_BACK, OutcomeAction.FAILED)


@dataclass(frozen=True, slots=True)
class Outcome:
    service: str
    container: str | None
    action: OutcomeAction
    detail: str = ""
    differences: tuple[str, ...] = ()
    # The container of the service after this outcome (after a rollback: the original).
    # Not in the JSON: the daemon uses it to tell a restart of that one from a new container.
    container_id: str | None = None
    # time.monotonic_ns() when the engine was first asked to make the change (the replacement's
    # create), for the daemon's measure of its own time; not in the JSON either
    engine_called_ns: int | None = None
    # how long a live grant's cgroup and node steps took, in ns (for the metrics); not in the
    # JSON either
    grant_ns: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "container": self.container,
            "action": str(self.action),
            "detail": self.detail,
            "differences": list(self.differences),
        }
