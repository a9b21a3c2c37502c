"""The reconciler's state machine against an in-memory engine: recreate, rollback, hand-over,
crash recovery, and containers that vanish under it. tests/engine/test_reconciler.py runs the
same paths against a real dockerd."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest
from fakeengine import FakeEngine
from hwprov.containers import journal
from hwprov.containers.cgroups import CgroupHost, CgroupVersion, Mechanism
from hwprov.containers.outcome import OutcomeAction
from hwprov.containers.reconciler import Reconciler
from hwprov.containers.recovery import recover
from hwprov.errors import EngineError
from hwprov.planning.plan import Plan, PlannedDevice, ServicePlan
from hwprov.records import GrantMode

GPS = "/dev/ttyUSB0"


class Killed(BaseException):
    """Not an EngineError: nothing in hwprov catches it, as nothing survives a SIGKILL."""


def plan(*devices: str, service: str = "gps") -> Plan:
    planned = tuple(PlannedDevice(d, d, "rw", 188, 0, "serial:x", "test") for d in devices)
    return Plan("t.yml", (ServicePlan(service, devices=planned),))


def reconciler(engine: FakeEngine) -> Reconciler:
    return Reconciler(engine, project="p", settle_s=0, present=engine.present)


def devices(engine: FakeEngine, name: str) -> list[str]:
    c = engine.named(name)
    assert c is not None, engine.names()
    return [d["PathOnHost"] for d in c.host.get("Devices") or ()]


def test_a_recreate_swaps_in_the_new_config_and_claims_its_own_start() -> None:
    engine = FakeEngine()
    old = engine.add("p-gps-1", "gps")
    r = reconciler(engine)
    [outcome] = r.reconcile(plan(GPS))
    assert outcome.action == OutcomeAction.RECREATED
    assert engine.names() == ["p-gps-1"] and devices(engine, "p-gps-1") == [GPS]
    new = engine.named("p-gps-1")
    assert new is not None and new.id != old and new.running
    assert r.claims_start(new.id)  # hwprov's own start: the daemon does not react to it
    assert not r.claims_start(new.id)  # asked once
    assert r.reconcile(plan(GPS))[0].action == OutcomeAction.UNCHANGED


def test_a_replacement_the_engine_refuses_to_start_is_rolled_back_to_the_original() -> None:
    engine = FakeEngine(fail={("start", 1)})
    old = engine.add("p-gps-1", "gps")
    [outcome] = reconciler(engine).reconcile(plan(GPS))
    assert outcome.action == OutcomeAction.ROLLED_BACK and outcome.action.failed
    assert "injected" in outcome.detail
    c = engine.named("p-gps-1")
    # the original, under its own name, running again, without the device it never had
    assert c is not None and c.id == old and c.running and devices(engine, "p-gps-1") == []
    assert engine.names() == ["p-gps-1"]


def test_an_original_whose_device_went_too_runs_again_when_it_can() -> None:
    engine = FakeEngine(fail={("start", 1)})
    engine.add("p-gps-1", "gps", devices=("/dev/ttyACM0",))
    engine.gone = {"/dev/ttyACM0"}  # a storm: the original cannot start again either
    r = reconciler(engine)
    [outcome] = r.reconcile(plan(GPS))  # its adapter re-enumerated under another name
    assert outcome.action == OutcomeAction.ROLLED_BACK
    original = engine.named("p-gps-1")
    assert original is not None and not original.running and "p-gps-1" in r.interrupted
    engine.gone = set()  # the adapter is back where it was
    [outcome] = r.reconcile(plan("/dev/ttyACM0"))
    assert outcome.action == OutcomeAction.RESTARTED and original.running
    assert r.interrupted == set()


def test_kill_then_download_stops_the_original_before_creating() -> None:
    engine = FakeEngine()
    old = engine.add("p-gps-1", "gps", labels={"io.balena.update.strategy": "kill-then-download"})
    reconciler(engine).reconcile(plan(GPS))
    calls = [(what, target) for what, target in engine.calls if what in ("stop", "create")]
    assert calls == [("stop", old), ("create", "p-gps-1")]


def test_hand_over_kills_the_original_once_the_replacement_signals(tmp_path: Path) -> None:
    engine = FakeEngine()
    labels = {"io.balena.update.strategy": "hand-over"}
    engine.add("p-gps-1", "gps", labels=labels)

    def mounted(attrs: dict) -> dict:
        attrs["Mounts"] = [{"Destination": "/tmp/balena", "Source": str(tmp_path)}]
        return attrs

    real_inspect = engine.inspect
    engine.inspect = lambda c: mounted(real_inspect(c))  # type: ignore[method-assign]
    # the replacement takes over as soon as it runs
    engine.on["start"] = lambda e, c: (tmp_path / "handover-complete").write_text("")
    [outcome] = reconciler(engine).reconcile(plan(GPS))
    assert outcome.action == OutcomeAction.RECREATED
    assert "handover-complete" in outcome.detail
    assert engine.names() == ["p-gps-1"] and devices(engine, "p-gps-1") == [GPS]
    assert not (tmp_path / "handover-complete").exists()  # consumed, ready for the next one


def test_a_container_removed_between_list_and_inspect_is_no_engine_outage() -> None:
    """Before the typed errors, the inspect's not-found escaped the pass and the daemon backed
    off as if the engine were down."""
    engine = FakeEngine()
    cid = engine.add("p-gps-1", "gps")
    engine.on["inspect"] = lambda e, c: e.by_id.pop(cid)  # `docker rm -f` from another tool
    [outcome] = reconciler(engine).reconcile(plan(GPS))
    assert outcome.action == OutcomeAction.MISSING


@pytest.mark.parametrize("crash_after", ["rename", "create", "stop", "start"])
def test_a_swap_killed_at_any_step_is_recovered(crash_after: str) -> None:
    engine = FakeEngine()
    old = engine.add("p-gps-1", "gps")
    real = getattr(engine, crash_after)

    def step_then_die(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)  # the step goes through, then hwprov dies, as on SIGKILL
        raise Killed(crash_after)

    setattr(engine, crash_after, step_then_die)
    with pytest.raises(Killed):
        reconciler(engine).reconcile(plan(GPS))
    setattr(engine, crash_after, real)
    started: set[str] = set()
    outcomes = recover(engine, "p", engine.containers(), started)
    assert [o.action for o in outcomes] == [OutcomeAction.RECOVERED]
    # exactly one container, under its own name, running: never two copies, nothing lost
    assert engine.names() == ["p-gps-1"]
    c = engine.named("p-gps-1")
    assert c is not None and c.running
    if crash_after == "start":  # the replacement ran: the swap is finished, not undone
        assert c.id != old and devices(engine, "p-gps-1") == [GPS]
    else:
        assert c.id == old
    assert recover(engine, "p", engine.containers(), started) == []


def test_recovery_leaves_other_projects_alone() -> None:
    engine = FakeEngine()
    engine.add(journal.old_name("q-gps-1", was_running=True), "gps", project="q")
    assert recover(engine, "p", engine.containers(), set()) == []
    assert engine.names() == ["q-gps-1.hwprov-old-running"]


def test_supervised_containers_get_live_grants_not_recreates() -> None:
    engine = FakeEngine()
    engine.add("gps_1_1", "gps", labels={"io.balena.supervised": "true"}, running=False)
    [outcome] = reconciler(engine).reconcile(plan(GPS))
    # stopped: nothing to grant into yet, and its config is never touched
    assert outcome.action == OutcomeAction.UNCHANGED and "granted when it starts" in outcome.detail
    assert [w for w, _ in engine.calls if w in ("create", "rename", "remove")] == []


def test_a_container_the_engine_could_not_start_for_want_of_its_device_runs_once_mapped() -> None:
    """`docker compose up` before the adapter was plugged: created, never started. Before the
    fix hwprov recreated it with the node and left it `Created` for good."""
    engine = FakeEngine()
    cid = engine.add("p-gps-1", "gps", running=False, devices=("/dev/ttyUSB9",))
    engine.gone = {"/dev/ttyUSB9"}
    with pytest.raises(EngineError, match="error gathering device information"):
        engine.start(cid)  # what compose up got
    [outcome] = reconciler(engine).reconcile(plan(GPS))
    assert outcome.action == OutcomeAction.RECREATED
    c = engine.named("p-gps-1")
    assert c is not None and c.running and devices(engine, "p-gps-1") == [GPS]


def test_a_container_that_exited_on_its_own_keeps_its_exit_code_until_it_starts() -> None:
    """restart: "no" and it exited: a recreate would replace its exit code and logs with a
    fresh container that never ran (what hwprov did before)."""
    engine = FakeEngine()
    cid = engine.add("p-gps-1", "gps")
    engine.stop(cid)
    engine.by_id[cid].exit_code = 3
    r = reconciler(engine)
    [outcome] = r.reconcile(plan(GPS))
    assert outcome.action == OutcomeAction.DEFERRED and not outcome.action.failed
    assert [c.id for c in engine.by_id.values()] == [cid] and engine.by_id[cid].exit_code == 3
    engine.start(cid)  # someone starts it: the next pass gives it its hardware
    assert r.reconcile(plan(GPS))[0].action == OutcomeAction.RECREATED
    assert devices(engine, "p-gps-1") == [GPS]


def test_a_container_never_started_stays_stopped_when_recreated() -> None:
    engine = FakeEngine()
    engine.add("p-gps-1", "gps", running=False)  # `docker compose create`
    [outcome] = reconciler(engine).reconcile(plan(GPS))
    assert outcome.action == OutcomeAction.RECREATED
    c = engine.named("p-gps-1")
    assert c is not None and not c.running and devices(engine, "p-gps-1") == [GPS]


def test_docker_rm_f_of_the_replacement_in_its_settle_window_is_rolled_back_cleanly() -> None:
    """Another tool removes the replacement while hwprov waits for it to stay up: the original
    comes back, and the outcome names it, so the daemon can tell its restarts from a new
    container and retry (tests/unit/test_converge.py has the retry)."""
    engine = FakeEngine()
    old = engine.add("p-gps-1", "gps")
    real_start = engine.start

    def start_then_removed(container: str) -> None:
        real_start(container)
        if container != old:
            engine.remove(container, force=True)  # `docker rm -f p-gps-1` from a terminal

    engine.start = start_then_removed  # type: ignore[method-assign]
    [outcome] = reconciler(engine).reconcile(plan(GPS))
    assert outcome.action == OutcomeAction.ROLLED_BACK and "not found" in outcome.detail
    assert outcome.container_id == old
    c = engine.named("p-gps-1")
    assert engine.names() == ["p-gps-1"] and c is not None and c.id == old and c.running
    engine.start = real_start  # type: ignore[method-assign]
    assert reconciler(engine).reconcile(plan(GPS))[0].action == OutcomeAction.RECREATED


class LiveRecorder:
    """Stands in for LiveGrants: records which containers were given their nodes live."""

    def __init__(self) -> None:
        self.synced: list[str] = []

    def sync(self, plan: ServicePlan, attrs: dict, dry_run: bool):  # type: ignore[no-untyped-def]
        from hwprov.containers.outcome import Outcome

        self.synced.append(attrs["Name"].lstrip("/"))
        return Outcome(plan.service, attrs["Name"].lstrip("/"), OutcomeAction.GRANTED, "live")


def live_plan(grant: GrantMode | None) -> Plan:
    planned = (PlannedDevice(GPS, GPS, "rw", 188, 0, "serial:x", "test"),)
    return Plan("t.yml", (ServicePlan("gps", devices=planned, grant=grant),))


@pytest.mark.parametrize(
    ("label", "default", "live"),
    [
        (GrantMode.LIVE, GrantMode.RECREATE, True),  # the label asks
        (None, GrantMode.LIVE, True),  # hwprov run --grant live
        (GrantMode.RECREATE, GrantMode.LIVE, False),  # the label wins over the default
        (None, GrantMode.RECREATE, False),
    ],
)
def test_a_service_that_asks_for_live_grants_keeps_running_and_gets_its_nodes_live(
    label: GrantMode | None, default: GrantMode, live: bool
) -> None:
    engine = FakeEngine()
    old = engine.add("p-gps-1", "gps")
    v1 = CgroupHost(CgroupVersion.V1, Mechanism.DEVICES_FILES, "devices controller")
    r = Reconciler(
        engine, project="p", settle_s=0, grant=default, cgroup_host=v1, present=engine.present
    )
    r.live = LiveRecorder()  # type: ignore[assignment]
    [outcome] = r.reconcile(live_plan(label))
    if live:
        assert outcome.action == OutcomeAction.GRANTED and r.live.synced == ["p-gps-1"]  # type: ignore[attr-defined]
        assert engine.named("p-gps-1").id == old  # type: ignore[union-attr]  # not recreated
    else:
        assert outcome.action == OutcomeAction.RECREATED and devices(engine, "p-gps-1") == [GPS]


def test_live_asked_where_the_host_cannot_falls_back_to_a_recreate_and_says_why() -> None:
    engine = FakeEngine()
    engine.add("p-gps-1", "gps")
    why = "live grants: none: no devices controller and no cgroup2"
    none = CgroupHost(CgroupVersion.NONE, Mechanism.NONE, "no devices controller and no cgroup2")
    r = Reconciler(engine, project="p", settle_s=0, cgroup_host=none, present=engine.present)
    r.live = LiveRecorder()  # type: ignore[assignment]
    [outcome] = r.reconcile(live_plan(GrantMode.LIVE))
    assert outcome.action == OutcomeAction.RECREATED and devices(engine, "p-gps-1") == [GPS]
    assert outcome.detail.startswith(f"io.hwprov.grant is live, but {why}: recreated")
    assert r.live.synced == []  # type: ignore[attr-defined]


def test_the_plan_says_a_live_service_will_be_recreated_where_the_host_cannot_grant_live() -> None:
    from hwprov.commands.plan import live_fallbacks
    from hwprov.containers.cgroups import CgroupHost, CgroupVersion, Mechanism

    asked = live_plan(GrantMode.LIVE)
    none = CgroupHost(CgroupVersion.NONE, Mechanism.NONE, "no cgroup mounts")
    [service] = live_fallbacks(asked, none).services
    assert service.notes == (
        "io.hwprov.grant is live, but live grants: none: no cgroup mounts: it will be recreated "
        "instead",
    )
    v2 = CgroupHost(CgroupVersion.V2, Mechanism.BPF_REPLACE, "cgroup2")
    assert live_fallbacks(asked, v2) == asked  # it can: nothing to say
    assert live_fallbacks(live_plan(None), none) == live_plan(None)  # did not ask


def services_plan(*names: str) -> Plan:
    def one(name: str, minor: int) -> ServicePlan:
        node = f"/dev/ttyUSB{minor}"
        return ServicePlan(name, devices=(PlannedDevice(node, node, "rw", 188, minor, "x", "t"),))

    return Plan("t.yml", tuple(one(n, i) for i, n in enumerate(names)))


class MeetingEngine(FakeEngine):
    """Each start waits until `parties` starts are under way at once: a pass that swapped one
    service after another would never get there (the barrier breaks, the start is refused)."""

    def __init__(self, parties: int) -> None:
        super().__init__()
        self.barrier = threading.Barrier(parties, timeout=10)

    def start(self, container: str) -> None:
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            why = "alone: the swaps did not run side by side"
            raise EngineError(f"start {container}: {why}") from None
        super().start(container)


def test_independent_services_are_swapped_side_by_side() -> None:
    names = ("a", "b", "c", "d")
    engine = MeetingEngine(parties=len(names))
    for n in names:
        engine.add(f"p-{n}-1", n)
    r = Reconciler(engine, project="p", settle_s=0, workers=4, present=engine.present)
    outcomes = r.reconcile(services_plan(*names), order=names)
    assert [(o.service, o.action) for o in outcomes] == [
        (n, OutcomeAction.RECREATED) for n in names
    ]
    assert engine.names() == [f"p-{n}-1" for n in names]


def test_a_service_waits_for_the_swaps_of_those_it_depends_on() -> None:
    engine = FakeEngine()
    db = engine.add("p-db-1", "db")
    engine.add("p-app-1", "app")
    engine.add("p-log-1", "log")
    r = Reconciler(engine, project="p", settle_s=0.05, workers=4, present=engine.present)
    plan = services_plan("db", "app", "log")
    r.reconcile(plan, order=["db", "app", "log"], depends={"app": ("db",)})
    # app's swap begins only once db's has ended (its original removed)
    app_begins = next(i for i, c in enumerate(engine.calls) if c == ("create", "p-app-1"))
    db_ends = engine.calls.index(("remove", db))
    assert db_ends < app_begins


def test_a_swap_whose_device_went_before_the_original_stopped_is_abandoned_untouched() -> None:
    engine = FakeEngine()
    old = engine.add("p-gps-1", "gps")
    engine.on["create"] = lambda e, _: e.gone.add(GPS)  # unplugged again meanwhile
    [outcome] = reconciler(engine).reconcile(plan(GPS))
    assert outcome.action == OutcomeAction.ABANDONED and not outcome.action.failed
    assert GPS in outcome.detail
    c = engine.named("p-gps-1")
    assert c is not None and c.id == old and c.running
    assert ("stop", old) not in engine.calls  # never disturbed
    assert not any(call == "start" for call, _ in engine.calls)


def test_a_swap_whose_device_went_while_the_original_stopped_is_abandoned_not_rolled_back() -> None:
    engine = FakeEngine()
    old = engine.add("p-gps-1", "gps")
    engine.on["stop"] = lambda e, _: e.gone.add(GPS)
    [outcome] = reconciler(engine).reconcile(plan(GPS))
    assert outcome.action == OutcomeAction.ABANDONED
    c = engine.named("p-gps-1")
    assert c is not None and c.id == old and c.running  # the original runs again
    assert engine.names() == ["p-gps-1"]
    # the only start was the original's: the replacement was never tried against the engine
    assert [t for call, t in engine.calls if call == "start"] == [old]


class DiesAfter(FakeEngine):
    """hwprov killed (SIGKILL) after its n-th engine call, whichever worker made it: no call
    after that one reaches the engine."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.left = calls

    def _call(self, what: str, target: str) -> None:
        if self.left <= 0:
            raise Killed(what)
        self.left -= 1
        super()._call(what, target)


@pytest.mark.parametrize("calls", range(4, 30, 2))
def test_swaps_in_flight_side_by_side_are_recovered_wherever_hwprov_died(calls: int) -> None:
    names = ("a", "b", "c")
    engine = DiesAfter(calls)
    old = {n: engine.add(f"p-{n}-1", n) for n in names}
    r = Reconciler(engine, project="p", settle_s=0, workers=3, present=engine.present)
    with contextlib.suppress(Killed):  # from 22 calls on, the pass ends before hwprov dies
        r.reconcile(services_plan(*names), order=names)
    engine.left = 10**6  # the next hwprov
    outcomes = recover(engine, "p", engine.containers(), set())
    assert {o.action for o in outcomes} <= {OutcomeAction.RECOVERED}
    # every service: exactly one container, under its own name, running
    assert engine.names() == [f"p-{n}-1" for n in names]
    for n in names:
        c = engine.named(f"p-{n}-1")
        assert c is not None and c.running, (n, engine.calls)
    final = Reconciler(engine, project="p", settle_s=0, workers=3, present=engine.present)
    again = final.reconcile(services_plan(*names), order=names)
    assert {o.action for o in again} <= {OutcomeAction.RECREATED, OutcomeAction.UNCHANGED}
    settled = final.reconcile(services_plan(*names), order=names)
    assert [o.action for o in settled] == [OutcomeAction.UNCHANGED] * len(names)
    for n in names:  # each service's data is its original's or its replacement's, never lost
        c = engine.named(f"p-{n}-1")
        assert c is not None and devices(engine, f"p-{n}-1") == [f"/dev/ttyUSB{names.index(n)}"]
    assert len(old) == len(names)
