"""The agent's Prometheus metrics, in a registry of its own (not the library's global one: a
test, or two daemons in one process, each count their own).

Names and meanings are documented in docs/deploy.md (Metrics); the daemon calls these methods
where the things they count happen (daemon/report.py), and metricsserver.py serves them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector

from hwprov.containers.outcome import OutcomeAction
from hwprov.records import GrantMode

# A plug is ready after its pass: a recreate waits out the settle time (500 ms by default)
# and the engine's create and start; a live grant is a fork and two small writes.
PLUG_TO_READY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LIVE_GRANT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
ENGINE_ERRORS = ("engine-down", "container-vanished")  # the decision lines that say them
REVOKE_RESULTS = ("revoked", "failed")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._decisions = Counter(
            "hwprov_decisions",
            "What reconciling did to each container, by outcome (the apply actions).",
            ["outcome"],
            registry=r,
        )
        self._uevents = Counter(
            "hwprov_uevents_received",
            "Hardware uevents taken from the udev monitor (after the sender check).",
            registry=r,
        )
        self._refused = Counter(
            "hwprov_uevents_refused",
            "Uevents dropped unread: neither the kernel nor udevd sent them.",
            registry=r,
        )
        self._resyncs = Counter(
            "hwprov_resyncs",
            "Enumerations of the hardware diffed against the inventory (monitor lost, SIGHUP).",
            registry=r,
        )
        self._engine_errors = Counter(
            "hwprov_engine_errors",
            "Passes the engine broke, by the decision line that said so.",
            ["error"],
            registry=r,
        )
        self._plug_to_ready = Histogram(
            "hwprov_plug_to_ready_seconds",
            "From a hardware burst's first uevent off the socket to the end of the pass that "
            "gave a service its hardware, by how it was given.",
            ["grant"],
            buckets=PLUG_TO_READY_BUCKETS,
            registry=r,
        )
        self._live_grant = Histogram(
            "hwprov_live_grant_seconds",
            "How long one live grant into a running container took (cgroup and node).",
            buckets=LIVE_GRANT_BUCKETS,
            registry=r,
        )
        self._revokes = Counter(
            "hwprov_live_revokes",
            "Nodes taken out of live-granted containers as their device's remove was read "
            "(daemon/revoker.py), by result.",
            ["result"],
            registry=r,
        )
        self._uevent_to_revoke = Histogram(
            "hwprov_uevent_to_revoke_seconds",
            "From a remove uevent off the socket to its node revoked in a live-granted container.",
            buckets=LIVE_GRANT_BUCKETS,
            registry=r,
        )
        ProcessCollector(registry=r)  # process_*: CPU, memory, open files, start time
        # Every series there from the start, at zero: a rate() needs the point before the first.
        for action in OutcomeAction:
            self._decisions.labels(str(action))
        for error in ENGINE_ERRORS:
            self._engine_errors.labels(error)
        for mode in GrantMode:
            self._plug_to_ready.labels(str(mode))
        for result in REVOKE_RESULTS:
            self._revokes.labels(result)

    def decision(self, action: OutcomeAction) -> None:
        self._decisions.labels(str(action)).inc()

    def uevents(self, received: int, refused: int = 0) -> None:
        self._uevents.inc(received)
        self._refused.inc(refused)

    def resync(self) -> None:
        self._resyncs.inc()

    def engine_error(self, error: str) -> None:
        self._engine_errors.labels(error).inc()

    def plug_to_ready(self, mode: GrantMode, seconds: float) -> None:
        self._plug_to_ready.labels(str(mode)).observe(seconds)

    def live_grant(self, seconds: float) -> None:
        self._live_grant.observe(seconds)

    def revoke(self, failed: bool, seconds: float | None) -> None:
        self._revokes.labels("failed" if failed else "revoked").inc()
        if seconds is not None and not failed:
            self._uevent_to_revoke.observe(seconds)
