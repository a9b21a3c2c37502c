"""The agent's status: where each service stands and why, the record `hwprov run` publishes,
how a reader judges it, and `hwprov status` on it (no agent, no engine: the record is made
here, by the same code the daemon uses)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hwprov.commands.main import main
from hwprov.commands.status import as_text
from hwprov.containers.outcome import Outcome, OutcomeAction
from hwprov.daemon import statusfile
from hwprov.daemon.converge import MAX_ATTEMPTS, Failure
from hwprov.daemon.report import Report
from hwprov.daemon.state import (
    HEARTBEAT_S,
    STALE_AFTER_BEATS,
    AgentState,
    Health,
    ServiceStatus,
    Standing,
    StatusError,
    judge,
    service_status,
)
from hwprov.planning.plan import Plan, PlannedDevice, ServicePlan, Unmet
from hwprov.records import Hardware, UnplugPolicy

GPS = ServicePlan(
    "gps",
    devices=(PlannedDevice("/dev/ttyUSB0", "/dev/gps", "rw", 188, 0, "serial:x", "label"),),
    hardware=("serial:x",),
)
GONE = Unmet("kind=serial, vendor=0403", False, "io.hwprov.device.gps: nothing attached matches")
WAITING = replace(GPS, devices=(), hardware=(), unmet=(GONE,))


def outcome(action: OutcomeAction, detail: str = "", service: str = "gps") -> Outcome:
    return Outcome(service, f"p-{service}-1", action, detail)


def test_a_service_given_its_hardware_is_granted() -> None:
    s = service_status(GPS, [outcome(OutcomeAction.RECREATED)], None, UnplugPolicy.RECREATE)
    assert s == ServiceStatus(
        "gps", Standing.GRANTED, "", "recreated", ("p-gps-1",), ("serial:x",), (), 0, False
    )
    live = outcome(OutcomeAction.GRANTED, "live, no restart (cgroup v1 devices.allow)")
    assert service_status(GPS, [live], None, UnplugPolicy.RECREATE).reason == live.detail


def test_missing_required_hardware_is_waiting_or_held_by_the_unplug_policy() -> None:
    ran = [outcome(OutcomeAction.RECREATED)]
    waiting = service_status(WAITING, ran, None, UnplugPolicy.RECREATE)
    assert waiting.standing == Standing.WAITING and waiting.missing == (GONE.what,)
    assert waiting.reason == f"missing {GONE.what}: {GONE.reason}"
    held = service_status(WAITING, [outcome(OutcomeAction.HELD)], None, UnplugPolicy.STOP)
    assert held.standing == Standing.HELD and held.action == "held"
    # the service's own io.hwprov.on-unplug wins over the agent's default
    by_label = replace(WAITING, on_unplug=UnplugPolicy.STOP)
    assert service_status(by_label, ran, None, UnplugPolicy.RECREATE).standing == Standing.HELD
    optional = replace(WAITING, unmet=(replace(GONE, optional=True),))
    assert service_status(optional, ran, None, UnplugPolicy.STOP).standing == Standing.GRANTED


def test_a_failed_service_says_why_and_how_often() -> None:
    failure = Failure(GPS, MAX_ATTEMPTS, "replacement exited with exit code 3", "c1")
    rolled = [outcome(OutcomeAction.ROLLED_BACK, failure.reason)]
    s = service_status(GPS, rolled, failure, UnplugPolicy.RECREATE)
    assert (s.standing, s.reason, s.attempts, s.gave_up) == (
        Standing.FAILED, failure.reason, MAX_ATTEMPTS, True
    )  # fmt: skip
    text = as_text(judge(None, 0, None), _state([s]), 0.0)
    assert f"failed    gave up after {MAX_ATTEMPTS}: {failure.reason}" in text


@pytest.mark.parametrize(
    ("action", "standing"),
    [
        (OutcomeAction.DEFERRED, Standing.DEFERRED),
        (OutcomeAction.MISSING, Standing.MISSING),
        (OutcomeAction.SKIPPED, Standing.SKIPPED),
    ],
)
def test_no_container_to_give_it_to_is_said_as_such(
    action: OutcomeAction, standing: Standing
) -> None:
    s = service_status(GPS, [outcome(action, "why")], None, UnplugPolicy.RECREATE)
    assert (s.standing, s.reason) == (standing, "why")


def _state(services: list[ServiceStatus], heartbeat: float = 1000.0) -> AgentState:
    return AgentState(
        pid=os.getpid(),
        pid_namespace=statusfile.pid_namespace(),
        version="0.1.0",
        started=900.0,
        heartbeat=heartbeat,
        heartbeat_every_s=HEARTBEAT_S,
        project="p",
        compose_file="/etc/hwprov/docker-compose.yml",
        services=tuple(services),
    )


def test_the_record_reads_back_as_written_and_refuses_anything_else() -> None:
    s = service_status(WAITING, [outcome(OutcomeAction.HELD)], None, UnplugPolicy.STOP)
    state = _state([s])
    doc = json.loads(json.dumps(state.to_json()))
    assert doc["schema"] == "hwprov.status/v1" and doc["services"][0]["standing"] == "held"
    assert AgentState.from_json(doc, "f") == state
    with pytest.raises(StatusError, match=r"f: not a hwprov\.status/v1 document"):
        AgentState.from_json({**doc, "schema": "hwprov.status/v9"}, "f")
    with pytest.raises(StatusError, match=r"f: a broken hwprov\.status/v1 document"):
        AgentState.from_json({k: v for k, v in doc.items() if k != "pid"}, "f")


def test_up_stale_and_down() -> None:
    state = _state([], heartbeat=1000.0)
    limit = HEARTBEAT_S * STALE_AFTER_BEATS
    assert judge(state, 1000.0 + limit, True).health == Health.UP
    stale = judge(state, 1000.0 + limit + 1, True)
    assert stale.health == Health.STALE and "heartbeat is" in stale.reason
    # another pid namespace: the pid says nothing, the heartbeat still does
    assert judge(state, 1001.0, None).health == Health.UP
    down = judge(state, 1001.0, False)
    assert down.health == Health.DOWN and f"pid {state.pid}" in down.reason
    assert judge(None, 1.0, None, "no file").reason == "no file"


def test_the_file_is_replaced_whole_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "run" / "hwprov" / "status.json"
    assert statusfile.read(path) is None
    statusfile.publish(path, _state([]))
    statusfile.publish(path, _state([], heartbeat=2000.0))
    assert statusfile.read(path) == _state([], heartbeat=2000.0)
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]  # no temp file left
    path.write_text("{half")
    with pytest.raises(StatusError, match="not JSON"):
        statusfile.read(path)


def test_a_pid_is_alive_only_while_its_process_runs_and_only_where_it_can_be_seen() -> None:
    assert statusfile.alive(_state([])) is True
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: that pid is free (nothing here forks fast enough to take it)
    assert statusfile.alive(replace(_state([]), pid=child.pid)) is False
    assert statusfile.alive(replace(_state([]), pid_namespace=1)) is None


def _hardware() -> list[Hardware]:
    gps = Hardware("serial:x", "serial", "ttyUSB0", "usb", "/sys/devices/x/ttyUSB0", "/dev/gps")
    return [gps]


def test_the_report_keeps_each_service_between_passes_and_forgets_removed_ones(
    tmp_path: Path,
) -> None:
    path = tmp_path / "status.json"
    report = Report(path, default_unplug=UnplugPolicy.STOP)
    report.started("p", Path("compose.yml"))
    env = ServicePlan("env")
    both = Plan("compose.yml", (WAITING, env))
    held, unchanged = outcome(OutcomeAction.HELD), outcome(OutcomeAction.UNCHANGED, service="env")
    report.passed(both, both, [held, unchanged], {})
    report.passed(Plan("compose.yml", (GPS, env)), Plan("compose.yml", (GPS,)), [outcome(
        OutcomeAction.RECREATED)], {})  # fmt: skip
    report.beat(_hardware())
    state = statusfile.read(path)
    assert state is not None and state.pid == os.getpid() and state.last_pass is not None
    assert [(s.service, s.standing) for s in state.services] == [
        ("env", Standing.GRANTED),
        ("gps", Standing.GRANTED),
    ]
    assert [h.node for h in state.hardware] == ["/dev/gps"]
    report.passed(Plan("compose.yml", (env,)), Plan("compose.yml", ()), [], {})
    report.beat(_hardware())
    assert [s.service for s in statusfile.read(path).services] == ["env"]  # type: ignore[union-attr]
    report.stopped()
    assert not path.exists()


def test_a_status_file_that_cannot_be_written_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    report = Report(blocker / "status.json")
    report.started("p", Path("compose.yml"))
    with caplog.at_level(logging.WARNING, "hwprov.daemon.report"):
        report.beat([])
        report.beat([])
    [said] = [r.getMessage() for r in caplog.records]
    assert said.startswith("cannot write the status file") and str(blocker) in said


def test_status_exits_0_while_the_agent_beats_and_1_once_it_is_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "status.json"
    report = Report(path)
    report.started("p", Path("compose.yml"))
    report.passed(Plan("c", (WAITING,)), Plan("c", (WAITING,)), [outcome(OutcomeAction.HELD)], {})
    report.beat(_hardware())
    assert main(["status", "--status-file", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["schema"], doc["health"], doc["pid"]) == ("hwprov.status/v1", "up", os.getpid())
    assert doc["services"][0]["standing"] == "waiting"
    assert main(["status", "--status-file", str(path)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"hwprov: up (pid {os.getpid()}")
    assert f"  gps  waiting   missing {GONE.what}" in text
    old = statusfile.read(path)
    assert old is not None
    statusfile.publish(path, replace(old, heartbeat=old.heartbeat - 3600))
    assert main(["status", "--status-file", str(path), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["health"] == "stale"


def test_status_without_an_agent_is_down_and_says_where_it_looked(tmp_path: Path) -> None:
    # a real process, so --log-level reaches Python's last-resort handler (pytest has its own)
    done = subprocess.run(
        [sys.executable, "-m", "hwprov", "--log-level", "debug", "status", "--json"],
        env={**os.environ, "HWPROV_STATUS_FILE": str(tmp_path / "none.json")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc == {
        "schema": "hwprov.status/v1",
        "health": "down",
        "reason": f"no status file at {tmp_path / 'none.json'} (is hwprov run running?)",
        "heartbeat_age_s": None,
    }
    assert f"reading the status of hwprov run from {tmp_path / 'none.json'}" in done.stderr
