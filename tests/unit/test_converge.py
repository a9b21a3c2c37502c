"""The daemon's decision of what to reconcile next, without threads, queue or engine."""

from __future__ import annotations

from hwprov.containers.outcome import Outcome, OutcomeAction
from hwprov.daemon.converge import MAX_ATTEMPTS, Converge, GaveUp, Pass, Retry, storming
from hwprov.errors import EngineNotFound, EngineUnreachable
from hwprov.planning.plan import Plan, PlannedDevice, ServicePlan
from hwprov.records import Action, UdevDevice, UdevEvent


def service(name: str, *nodes: str) -> ServicePlan:
    devices = tuple(PlannedDevice(n, n, "rw", 188, 0, None, "test") for n in nodes)
    return ServicePlan(name, devices=devices)


def plan(*services: ServicePlan) -> Plan:
    return Plan("t.yml", services)


def names(p: Plan) -> list[str]:
    return [s.service for s in p.services]


def applied(c: Converge, p: Plan, *outcomes: Outcome) -> None:
    c.done(p, c.select(p, c.due() or Pass.FULL), outcomes)


def test_start_is_a_full_pass_then_nothing_is_due() -> None:
    c = Converge()
    p = plan(service("gps"), service("env"))
    assert c.due() == Pass.FULL
    assert names(c.select(p, Pass.FULL)) == ["gps", "env"]
    applied(c, p)
    assert c.due() is None


def test_a_hotplug_reconciles_only_the_services_whose_plan_changed() -> None:
    c = Converge()
    before = plan(service("gps"), service("env", "/dev/i2c-1"))
    applied(c, before)
    c.saw(hardware=True)
    assert c.due() == Pass.CHANGED
    after = plan(service("gps", "/dev/ttyUSB0"), service("env", "/dev/i2c-1"))
    assert names(c.select(after, Pass.CHANGED)) == ["gps"]


def test_a_compose_reload_or_an_engine_retry_is_a_full_pass() -> None:
    for seen in ({"compose_reloaded": True}, {"retry": True}):
        c = Converge()
        applied(c, plan(service("gps")))
        c.saw(**seen)
        assert c.due() == Pass.FULL


def test_a_container_someone_else_started_is_reconciled_again() -> None:
    c = Converge()
    p = plan(service("gps", "/dev/ttyUSB0"), service("env"))
    applied(c, p)
    c.saw(started_by_others=[("gps", "c1")])
    assert c.due() == Pass.CHANGED
    assert names(c.select(p, Pass.CHANGED)) == ["gps"]


def rolled_back(container: str = "orig") -> Outcome:
    return Outcome("gps", "p-gps-1", OutcomeAction.ROLLED_BACK, "removed mid-swap", (), container)


def test_a_rolled_back_service_is_retried_with_back_off_then_given_up() -> None:
    """Before: the failed plan was remembered and never retried, so an outside `docker rm -f`
    in the settle window left the service without its device for good."""
    c = Converge()
    p = plan(service("gps", "/dev/ttyUSB0"))
    follow = [c.done(p, c.select(p, Pass.FULL), [rolled_back()])]
    for _ in range(MAX_ATTEMPTS - 1):
        c.saw(retries_due=["gps"])
        assert c.due() == Pass.CHANGED and names(c.select(p, Pass.CHANGED)) == ["gps"]
        follow.append(c.done(p, c.select(p, Pass.CHANGED), [rolled_back()]))
    assert follow[:-1] == [[Retry("gps", 1.0, 1)], [Retry("gps", 2.0, 2)]]
    assert follow[-1] == [GaveUp("gps", MAX_ATTEMPTS, "removed mid-swap")]
    c.saw(started_by_others=[("gps", "orig")])  # its restart policy: no recreate loop
    assert c.due() is None
    c.saw(hardware=True)  # a new situation: tried again
    assert names(c.select(p, Pass.CHANGED)) == ["gps"]


def test_a_new_container_of_a_failed_service_starts_the_count_again() -> None:
    c = Converge()
    p = plan(service("gps", "/dev/ttyUSB0"))
    for _ in range(MAX_ATTEMPTS):
        c.done(p, c.select(p, Pass.FULL), [rolled_back()])
    assert c.failed["gps"].gave_up
    c.saw(started_by_others=[("gps", "made-by-compose")])  # compose up --force-recreate
    assert names(c.select(p, Pass.CHANGED)) == ["gps"] and c.failed["gps"].attempts == 0


def test_a_success_forgets_the_failure_and_a_compose_reload_forgets_all() -> None:
    c = Converge()
    p = plan(service("gps", "/dev/ttyUSB0"))
    c.done(p, c.select(p, Pass.FULL), [rolled_back()])
    ok = Outcome("gps", "p-gps-1", OutcomeAction.RECREATED, "", (), "new")
    c.saw(retries_due=["gps"])
    assert c.done(p, c.select(p, Pass.CHANGED), [ok]) == [] and c.failed == {}
    c.done(p, c.select(p, Pass.FULL), [rolled_back()])
    c.saw(compose_reloaded=True)
    assert c.failed == {} and c.due() == Pass.FULL


def test_an_unreachable_engine_backs_off_and_a_vanished_container_does_not() -> None:
    c = Converge()
    waits = [c.broke(Pass.FULL, EngineUnreachable("down")) for _ in range(8)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert c.due() == Pass.FULL
    applied(c, plan(service("gps")))
    # someone removed a container between the listing and the inspect: retry now, no back-off
    assert c.broke(Pass.FULL, EngineNotFound("inspect x: not found")) == 0.0
    assert c.broke(Pass.FULL, EngineUnreachable("down")) == 0.5  # the success reset it


def test_a_partial_pass_the_engine_broke_is_followed_by_a_full_one_at_once() -> None:
    c = Converge()
    applied(c, plan(service("gps")))
    c.saw(hardware=True)
    assert c.broke(Pass.CHANGED, EngineUnreachable("down")) is None
    assert c.due() == Pass.FULL


def test_an_abandoned_swap_is_due_again_even_when_its_plan_comes_back_the_same() -> None:
    # The adapter went during the swap (abandoned: the original kept, without it) and came back
    # before the next pass: the plan equals the one applied, and the service must still be done.
    c = Converge()
    p = plan(service("gps", "/dev/ttyUSB0"))
    applied(c, p, Outcome("gps", "p-gps-1", OutcomeAction.ABANDONED, "gone before the start"))
    assert not c.failed  # no failure: no retry, no back-off
    c.saw(hardware=True)
    assert c.due() == Pass.CHANGED and names(c.select(p, Pass.CHANGED)) == ["gps"]
    applied(c, p, Outcome("gps", "p-gps-1", OutcomeAction.RECREATED))
    assert c.due() is None


def test_events_waiting_after_a_pass_that_swapped_are_a_storm_and_a_lone_plug_is_not() -> None:
    event = UdevEvent(Action.ADD, UdevDevice(sys_path="/sys/x", subsystem="tty", sys_name="x"))
    assert storming([event], waited_s=0.0, last_pass_s=0.6)  # queued while it swapped
    assert not storming([event], waited_s=2.0, last_pass_s=0.6)  # came after a quiet spell
    assert not storming([event], waited_s=0.0, last_pass_s=0.0)  # the pass touched nothing
    assert not storming(["compose-changed"], waited_s=0.0, last_pass_s=0.6)  # no hardware
