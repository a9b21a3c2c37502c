"""A removed device is taken out of every container granted it live as its uevent is read, not
after the pass in flight (LiveGrants.revoke_gone, daemon/revoker.py).

The cgroup and mount-namespace halves (`grant`, `revoke`) are recorded here; they run for real
in tests/engine (test_livegrant.py, test_supervised.py) and on the kernel bench."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest
from hwprov.containers import livegrant
from hwprov.containers.livegrant import LiveGrantError, LiveGrants
from hwprov.containers.outcome import OutcomeAction
from hwprov.daemon.decisions import Decisions
from hwprov.daemon.metrics import Metrics
from hwprov.daemon.report import Report
from hwprov.daemon.revoker import Revoker
from hwprov.planning.plan import PlannedDevice, ServicePlan
from hwprov.records import Action, UdevDevice, UdevEvent

GPS = (188, 0)  # as udev numbers the devices, and their remove events say
I2C = (89, 1)
# The host nodes the engine maps have numbers of their own, as the simulator's stand-ins do
# (on a device they are the same): grants and revokes use these, removes are matched on udev's.
HOST = {GPS: (511, 0), I2C: (510, 1)}


class Calls:
    """What grant and revoke were asked to do, and a revoke that can be made to fail."""

    def __init__(self) -> None:
        self.done: list[tuple[str, int, str, int, int]] = []
        self.fail: str | None = None

    def grant(self, pid: int, path: str, major: int, minor: int, perms: str = "rw") -> None:
        self.done.append(("grant", pid, path, major, minor))

    def revoke(self, pid: int, path: str, major: int, minor: int) -> None:
        if self.fail is not None:
            raise LiveGrantError(self.fail)
        self.done.append(("revoke", pid, path, major, minor))


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    made = Calls()
    monkeypatch.setattr(livegrant, "grant", made.grant)
    monkeypatch.setattr(livegrant, "revoke", made.revoke)
    return made


@pytest.fixture
def nodes(tmp_path: Path) -> dict[tuple[int, int], str]:
    """Real char host nodes: `sync` reads their numbers off the host path."""
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    made = {}
    for numbers, (major, minor) in HOST.items():
        path = tmp_path / f"dev-{major}-{minor}"
        os.mknod(path, 0o20660, os.makedev(major, minor))
        made[numbers] = str(path)
    return made


def attrs(name: str, pid: int) -> dict[str, object]:
    return {"Id": f"id-{name}", "Name": f"/{name}", "State": {"Running": True, "Pid": pid}}


def plan(service: str, *devices: tuple[str, str]) -> ServicePlan:
    """`devices`: (host node, container path); udev's numbers are the HOST entry's key."""
    udev = {path: numbers for numbers, (ma, mi) in HOST.items() for path in [f"dev-{ma}-{mi}"]}
    planned = tuple(PlannedDevice(h, c, "rw", *udev[Path(h).name], None, "t") for h, c in devices)
    return ServicePlan(service, devices=planned)


def removed(numbers: tuple[int, int], received_ns: int = 0) -> UdevEvent:
    device = UdevDevice("/sys/x", "tty", "ttyUSB0", node="/dev/ttyUSB0", major=numbers[0],
                        minor=numbers[1])  # fmt: skip
    return UdevEvent(Action.REMOVE, device, received_ns)


def test_a_removed_device_leaves_every_container_it_was_granted_to_and_nothing_else(
    calls: Calls, nodes: dict[tuple[int, int], str]
) -> None:
    live = LiveGrants()
    gps, i2c = nodes[GPS], nodes[I2C]
    assert live.sync(plan("logger", (gps, "/dev/gps"), (i2c, "/dev/i2c-1")), attrs("a", 10), False)
    assert live.sync(plan("tracker", (gps, "/dev/ttyUSB0")), attrs("b", 20), False)
    calls.done.clear()
    assert live.revoke_gone(*HOST[GPS]) == []  # the host node's numbers name nothing udev sent

    gone = live.revoke_gone(*GPS)

    assert sorted((r.service, r.container, r.path, r.error) for r in gone) == [
        ("logger", "a", "/dev/gps", None),
        ("tracker", "b", "/dev/ttyUSB0", None),
    ]
    assert sorted(calls.done) == [
        ("revoke", 10, "/dev/gps", *HOST[GPS]),
        ("revoke", 20, "/dev/ttyUSB0", *HOST[GPS]),
    ]
    assert {(r.major, r.minor) for r in gone} == {GPS}
    assert live.revoke_gone(*GPS) == []  # taken once: a second remove finds nothing
    # The pass the same remove brings later has nothing left to take from either
    calls.done.clear()
    after = live.sync(plan("logger", (i2c, "/dev/i2c-1")), attrs("a", 10), False)
    assert after.action == OutcomeAction.UNCHANGED, after
    assert live.sync(plan("tracker"), attrs("b", 20), False).action == OutcomeAction.UNCHANGED
    assert calls.done == []


def test_a_revoke_that_fails_stays_recorded_so_the_next_pass_takes_it_and_says_why(
    calls: Calls, nodes: dict[tuple[int, int], str]
) -> None:
    live = LiveGrants()
    live.sync(plan("logger", (nodes[GPS], "/dev/gps")), attrs("a", 10), False)
    calls.fail = "cannot write 'c 188:0 rwm' to devices.deny: Permission denied"

    [failed] = live.revoke_gone(*GPS)
    assert failed.error == calls.fail

    outcome = live.sync(plan("logger"), attrs("a", 10), False)
    assert outcome.action == OutcomeAction.FAILED and calls.fail in outcome.detail
    assert outcome.differences == ("- /dev/gps",)
    calls.fail = None
    assert live.sync(plan("logger"), attrs("a", 10), False).action == OutcomeAction.GRANTED
    assert calls.done[-1] == ("revoke", 10, "/dev/gps", *HOST[GPS])


def test_a_restarted_container_is_not_revoked_for_its_old_process(
    calls: Calls, nodes: dict[tuple[int, int], str]
) -> None:
    """Its new process is granted afresh by the pass for its start; the old pid's grants are
    forgotten then, so a later remove revokes from the new process only."""
    live = LiveGrants()
    live.sync(plan("logger", (nodes[GPS], "/dev/gps")), attrs("a", 10), False)
    live.sync(plan("logger", (nodes[GPS], "/dev/gps")), attrs("a", 11), False)
    calls.done.clear()
    assert [r.path for r in live.revoke_gone(*GPS)] == ["/dev/gps"]
    assert calls.done == [("revoke", 11, "/dev/gps", *HOST[GPS])]


def test_the_revoker_says_what_it_took_and_how_long_after_the_uevent(
    calls: Calls, nodes: dict[tuple[int, int], str]
) -> None:
    live = LiveGrants()
    live.sync(plan("logger", (nodes[GPS], "/dev/gps")), attrs("a", 10), False)
    out = io.StringIO()
    metrics = Metrics()
    revoker = Revoker(live, Decisions(stream=out), Report(metrics=metrics))
    revoker.start()
    try:
        added = UdevEvent(Action.ADD, removed(GPS).device, 1)
        revoker.put(added)  # only removes are taken
        revoker.put(removed(GPS, received_ns=time.monotonic_ns()))
    finally:
        revoker.stop()  # after the removes queued before it
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    [line] = [x for x in lines if x["event"] == "revoked"]
    assert (line["service"], line["container"], line["node"], line["device"]) == (
        "logger", "a", "/dev/gps", "188:0",
    )  # fmt: skip
    assert line["uevent_to_revoke_ms"] >= 0
    assert [c[0] for c in calls.done] == ["grant", "revoke"]
    sample = metrics.registry.get_sample_value
    assert sample("hwprov_live_revokes_total", {"result": "revoked"}) == 1
    assert sample("hwprov_live_revokes_total", {"result": "failed"}) == 0
    assert sample("hwprov_uevent_to_revoke_seconds_count") == 1
