"""`hwprov run` on a simulated board against a stub engine (stubengine.py), with the udev monitor
failing on demand (faultyudev.py): lost udev events resync, signals act at once whatever the
threads do, and with JSON lines every line on stderr is JSON. No Docker engine is started."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hwprov.containers import cgroups
from hwprov.sandbox.demo import COMPOSE
from stubengine import StubEngine

from lab.simdaemon import ControlSession, SimDaemon

HERE = Path(__file__).parent
# What umockdev's preload itself prints on the stderr of the process it is loaded in (the
# simulator's, not hwprov's: a by-id link it could not recreate on a quick replug; an fd it
# could not map back to a path, seen once in a busy SIGHUP run, as hwprov's swap workers open
# and close engine sockets beside the main thread's sysfs reads: umockdev's own race).
UMOCKDEV_NOISE = re.compile(
    r"^$|^\*\* \(process:\d+\): WARNING \*\*: .*umockdev"
    r"|^umockdev: failed to map fd to a path: No such file or directory$"
)
MAIN_ONLY = {signal.SIGHUP, signal.SIGINT, signal.SIGTERM}
RESYNC_REASON = "the udev monitor stopped: [Errno 105] No buffer space available"


class Run:
    def __init__(self, daemon: SimDaemon, fault: Path, engine: StubEngine) -> None:
        self.daemon = daemon
        self.fault = fault
        self.engine = engine

    def not_json(self) -> list[str]:
        """Lines on hwprov's stderr that are not decision lines (umockdev's own aside)."""
        return [line for line in self.daemon.other if not UMOCKDEV_NOISE.match(line)]


@pytest.fixture
def hwprov_run(tmp_path: Path) -> Iterator[Callable[..., Run]]:
    runs: list[Run] = []
    engines: list[StubEngine] = []

    def start(board: str = "rpi4b", list_delay_s: float = 0.0) -> Run:
        engine = StubEngine(tmp_path / f"engine{len(engines)}.sock", list_delay_s).__enter__()
        engines.append(engine)
        compose = tmp_path / "docker-compose.yml"
        compose.write_text(COMPOSE)
        fault = tmp_path / f"fault{len(runs)}"
        launcher = (sys.executable, str(HERE / "faultyudev.py"), str(fault))
        daemon = SimDaemon(engine.url, tmp_path, compose, board, "-p", "demo", launcher=launcher)
        runs.append(Run(daemon, fault, engine))
        daemon.wait("reconciled")  # started, and the first pass done
        return runs[-1]

    yield start
    for run in runs:
        run.daemon.stop()
    for engine in engines:
        engine.__exit__(None, None, None)


def changes(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["event"], e["hardware"]) for e in events if e["event"] in ("add", "remove")]


def test_a_monitor_lost_to_an_overrun_is_reopened_and_the_unplug_it_missed_is_found(
    hwprov_run: Callable[..., Run],
) -> None:
    run = hwprov_run()
    d = run.daemon
    mark = d.mark()
    d.sim("plug", id="ftdi")
    ftdi = d.wait("add", after=mark)["hardware"]
    d.wait("reconciled", after=mark)
    run.fault.write_text("overrun")  # the unplug's first event fails the receive: all are lost
    mark = d.mark()
    d.sim("unplug", id="ftdi")
    resync = d.wait("resync", after=mark)
    assert resync["reason"] == RESYNC_REASON
    assert (resync["added"], resync["removed"], resync["changed"]) == (0, 1, 0)
    after = d.events(mark)
    assert changes(after[: after.index(resync)]) == [("remove", ftdi)]
    # A full pass follows: every service, not only those whose plan changed.
    assert d.wait("reconciled", after=d.events().index(resync))["services"] == 2
    mark = d.mark()
    d.sim("plug", id="ftdi")  # the new monitor hears it
    d.wait("add", after=mark, hardware=ftdi)
    assert d.stop() == 0
    assert run.not_json() == []


def test_an_adapter_that_takes_the_lost_ones_ttyusb0_is_not_taken_for_it(
    hwprov_run: Callable[..., Run],
) -> None:
    run = hwprov_run()
    d = run.daemon
    mark = d.mark()
    d.sim("plug", id="ftdi")
    ftdi = d.wait("add", after=mark)["hardware"]
    mark = d.mark()
    run.fault.write_text("drop")  # an overrun: these events never arrive
    d.sim("unplug", id="ftdi")
    d.sim("plug", id="cp2102")  # the lowest free number: /dev/ttyUSB0 again
    run.fault.write_text("overrun")
    d.sim("plug", id="bt-dongle")  # the receive that reports the overrun
    resync = d.wait("resync", after=mark)
    assert resync["reason"] == RESYNC_REASON and resync["removed"] == 1
    d.wait("reconciled", after=d.events().index(resync))
    seen = d.events(mark)
    cp2102 = next(e for e in seen if e["event"] == "add" and e["node"] == "/dev/ttyUSB0")
    assert cp2102["hardware"] != ftdi and cp2102["hardware"].startswith("serial:usb:10c4:ea60")
    assert ("remove", ftdi) in changes(seen)
    # What hwprov holds is what is plugged: a resync on demand finds nothing to change.
    mark = d.mark()
    os.kill(d.hwprov_pid(), signal.SIGHUP)
    again = d.wait("resync", after=mark)
    assert (again["reason"], again["added"], again["removed"], again["changed"]) == (
        "SIGHUP", 0, 0, 0,
    )  # fmt: skip
    assert d.stop() == 0
    assert run.not_json() == []


def test_uevents_from_an_untrusted_sender_are_dropped_and_said_once(
    hwprov_run: Callable[..., Run],
) -> None:
    run = hwprov_run()
    d = run.daemon
    run.fault.write_text("untrusted")
    mark = d.mark()
    d.sim("plug", id="ftdi")  # each of its uevents is refused: nothing is believed
    refused = d.wait("uevent-refused", after=mark)
    assert refused["reason"] == "a udev message from a process that does not run udevd"
    assert "uid 0" in refused["sender"]
    d.sim("plug", id="cp2102")  # the same sender: not said again
    # Still untrusted while sysfs is read, so a message not yet read when the fault is cleared
    # is an add of what the resync already holds: no change either way.
    os.kill(d.hwprov_pid(), signal.SIGHUP)
    resync = d.wait("resync", after=mark)
    run.fault.write_text("")
    assert resync["added"] == 2  # sysfs, not the refused messages, says what is there
    seen = d.events(mark)
    assert changes(seen[: seen.index(refused)]) == []
    # Every add there is came with the resync: none from a refused message.
    assert [e["event"] for e in seen[: seen.index(resync)]].count("add") == 2
    assert [e["event"] for e in seen].count("uevent-refused") == 1
    assert d.stop() == 0
    assert run.not_json() == []


def test_a_uevent_whose_sender_is_gone_is_neither_believed_nor_lost_a_resync_finds_it(
    hwprov_run: Callable[..., Run],
) -> None:
    run = hwprov_run()
    d = run.daemon
    run.fault.write_text("sender-gone")
    mark = d.mark()
    d.sim("plug", id="ftdi")
    refused = d.wait("uevent-refused", after=mark)
    resync = d.wait("resync", after=mark)
    gone = "a udev message from a process that is gone or cannot be looked at"
    assert resync["reason"] == refused["reason"] == gone
    run.fault.write_text("")
    # The resync (or one after it, for the plug's later uevents) finds the adapter.
    ftdi = d.wait("add", after=mark)
    assert ftdi["node"] == "/dev/ttyUSB0"
    d.wait("reconciled", after=d.events().index(ftdi))
    assert d.stop() == 0
    assert run.not_json() == []


def test_a_monitor_that_cannot_be_reopened_exits_non_zero_for_the_service_manager(
    hwprov_run: Callable[..., Run],
) -> None:
    run = hwprov_run()
    d = run.daemon
    run.fault.write_text("overrun-for-good")
    mark = d.mark()
    d.sim("plug", id="ftdi")
    lost = d.wait("udev-lost", after=mark)
    assert lost["error"] == (
        "cannot open the udev netlink socket (udev): [Errno 24] Too many open files"
    )
    assert d.proc.wait(timeout=30) == 1  # the simulator passes hwprov's exit code on
    assert d.events()[-1] == lost
    assert run.not_json() == []


def thread_masks(pid: int) -> dict[int, set[int]]:
    masks = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        [hex_mask] = re.findall(r"^SigBlk:\s*(\w+)", status, re.M)
        bits = int(hex_mask, 16)
        masks[int(tid)] = {n + 1 for n in range(64) if bits >> n & 1}
    return masks


def test_every_thread_of_hwprov_run_but_the_main_one_blocks_sigterm_and_sighup(
    hwprov_run: Callable[..., Run],
) -> None:
    run = hwprov_run()
    pid = run.daemon.hwprov_pid()
    masks = thread_masks(pid)
    # udev, the compose-file watch, the engine's events, the signal wake-up
    assert len(masks) >= 5, masks
    assert not masks.pop(pid) & MAIN_ONLY  # the main thread takes them
    assert all(mask >= MAIN_ONLY for mask in masks.values()), masks


def test_sighup_resyncs_promptly_every_time_idle_and_busy(
    hwprov_run: Callable[..., Run],
) -> None:
    run = hwprov_run(list_delay_s=0.05)  # a pass takes a while: the daemon is often inside one
    d = run.daemon
    pid = d.hwprov_pid()
    stop = threading.Event()

    def storm() -> None:
        with ControlSession(d.control) as sim:
            while not stop.is_set():
                sim("plug", id="ftdi")
                sim("unplug", id="ftdi")

    def hup(busy: bool) -> float:
        mark = d.mark()
        sent = time.monotonic()
        os.kill(pid, signal.SIGHUP)
        d.wait("resync", after=mark, reason="SIGHUP", timeout=10)
        return time.monotonic() - sent

    idle = [hup(False) for _ in range(20)]
    stormer = threading.Thread(target=storm, name="storm")
    stormer.start()
    try:
        busy = [hup(True) for _ in range(20)]
    finally:
        stop.set()
        stormer.join()
    assert max(idle) < 1.0, idle
    assert max(busy) < 2.0, busy
    assert d.stop() == 0
    assert run.not_json() == []


DRIVER = r"""
import json, os, select, signal, subprocess, sys, threading, time
from hwprov.sim.control import request

url, compose, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
control = os.environ["HWPROV_SIM_CONTROL"]
COMMANDS = {
    "run": ["hwprov", "run", "-f", compose, "--engine", url, "-p", "demo"],
    "watch": ["hwprov", "watch"],
}
READY = {"run": '"reconciled"', "watch": "# watching"}


def storm(stop):
    while not stop.is_set():
        request(control, "plug", id="ftdi")
        request(control, "unplug", id="ftdi")


for command in ("run", "watch"):
    for busy in (False, True):
        for _ in range(rounds):
            proc = subprocess.Popen(
                COMMANDS[command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            lines = []
            while READY[command] not in (line := proc.stderr.readline()):
                if not line:
                    sys.exit(f"{command} ended before it was ready: {lines[-5:]}")
                lines.append(line)
            # Read on while it runs: a storm's warnings fill a pipe nobody drains, and a
            # process blocked writing its stderr never exits.
            reader = threading.Thread(target=lambda: lines.extend(proc.stderr))
            reader.start()
            stop = threading.Event()
            stormer = threading.Thread(target=storm, args=(stop,))
            if busy:
                stormer.start()
                time.sleep(0.3)
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                reader.join()
                sys.exit(f"{command} (busy={busy}) still ran 30 s after SIGTERM: {lines[-20:]}")
            took = time.monotonic() - sent
            stop.set()
            if busy:
                stormer.join()
            reader.join()
            print(json.dumps({"command": command, "busy": busy, "code": code, "s": took,
                              "lines": lines}), flush=True)
print("done", flush=True)
"""


@pytest.mark.timeout(300)
def test_sigterm_stops_run_and_watch_promptly_every_time_idle_and_busy(
    running_sim: Any, tmp_path: Path
) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    with StubEngine(tmp_path / "engine.sock", list_delay_s=0.05) as engine:
        script = f"import sys; sys.argv[1:] = {[engine.url, str(compose), '6']!r}\n" + DRIVER
        s = running_sim(script)
        # The simulator's own warnings go there: a full pipe would stop it.
        stderr: list[str] = []
        drain = threading.Thread(target=lambda: stderr.extend(s.proc.stderr), name="drain")
        drain.start()
        rounds = []
        while (line := s.line()) != "done":
            if not line:
                s.proc.wait(timeout=30)
                drain.join()
                pytest.fail("".join(line for line in stderr if not UMOCKDEV_NOISE.match(line)))
            rounds.append(json.loads(line))
        assert s.proc.wait(timeout=30) == 0
        drain.join()
    assert len(rounds) == 24
    for r in rounds:
        where = f"{r['command']} {'busy' if r['busy'] else 'idle'}"
        assert r["code"] == 0, (where, r["lines"][-5:])
        assert r["s"] < (2.0 if r["busy"] else 1.0), (where, r["s"])
        if r["command"] == "run":
            decisions = [
                json.loads(line) for line in r["lines"] if not UMOCKDEV_NOISE.match(line.strip())
            ]  # each line is JSON
            assert decisions[-1]["event"] == "stopping", where


def test_watch_too_reopens_a_lost_monitor_and_prints_what_it_missed(
    running_sim: Any, tmp_path: Path
) -> None:
    fault = tmp_path / "fault"
    s = running_sim(
        "import os, sys\n"
        f"os.execv(sys.executable, [sys.executable, {str(HERE / 'faultyudev.py')!r}, "
        f"{str(fault)!r}, 'watch'])"
    )
    assert s.proc.stderr is not None

    stderr = s.proc.stderr

    def said() -> str:
        while UMOCKDEV_NOISE.match(line := stderr.readline().strip()):
            pass
        return line

    assert said() == "# watching"
    fault.write_text("overrun")
    assert s.ctl("plug", "ftdi").returncode == 0  # its events are lost with the monitor
    assert said() == f"# resync: {RESYNC_REASON}"
    assert s.line().startswith("+ serial ttyUSB0 /dev/ttyUSB0")
    assert s.ctl("unplug", "ftdi").returncode == 0  # heard by the new monitor
    assert s.line().startswith("- serial ttyUSB0 /dev/ttyUSB0")
    s.proc.send_signal(signal.SIGHUP)  # the simulator passes it on
    assert said() == "# resync: SIGHUP"
    assert s.close() == 0


def test_a_compose_edit_with_a_label_typo_is_refused_and_the_last_good_one_kept(
    hwprov_run: Callable[..., Run], tmp_path: Path
) -> None:
    run = hwprov_run()
    d = run.daemon
    compose = tmp_path / "docker-compose.yml"
    for typo, says in [
        ("kind=serail", "kind 'serail' is not one the loaded plugins know"),
        ("io.hwprov.devices.gps", "did you mean 'io.hwprov.device.gps'?"),
    ]:
        mark = d.mark()
        wrong = "kind=serial" if typo.startswith("kind") else "io.hwprov.device.gps"
        assert wrong in COMPOSE
        edited = tmp_path / "edited.yml"  # replaced whole, so no read sees half a file
        edited.write_text(COMPOSE.replace(wrong, typo))
        edited.replace(compose)
        broken = d.wait("compose-broken", after=mark)
        assert says in broken["error"] and broken["action"] == "keeping the last good one"
    mark = d.mark()
    d.sim("plug", id="ftdi")  # still running, and planning from the last good file
    d.wait("add", after=mark)
    d.wait("reconciled", after=mark)
    (tmp_path / "edited.yml").write_text(COMPOSE)
    (tmp_path / "edited.yml").replace(compose)
    d.wait("compose-reloaded", after=mark)
    assert d.stop() == 0
    assert run.not_json() == []


def test_run_says_each_node_it_refuses_once_as_a_decision_line(
    hwprov_run: Callable[..., Run],
) -> None:
    run = hwprov_run(board=str(HERE / "boards" / "hostile.yaml"))
    d = run.daemon
    refused = [e for e in d.events() if e["event"] == "node-refused"]
    assert sorted(e["node"] for e in refused) == [
        "/dev/../../tmp/x/zero", "/dev/serial1", "/dev/ttyS1", "/tmp/x/zero",
    ]  # fmt: skip
    forged = next(e for e in refused if e["hardware"].endswith("ttyS13"))
    assert forged["reason"] == "udev said 1:1 but /dev/ttyS1 is 4:65"
    started = next(e for e in d.events() if e["event"] == "started")
    assert started["hardware"] == ["serial:/devices/platform/serial8250/tty/ttyS1"]
    # The first line also says how services get their devices, and how live grants would go.
    assert started["grant"] == "recreate"
    assert started["live_grants"] == cgroups.host().how
    assert started["live_grants"].startswith(("cgroup v1", "cgroup v2", "none: "))
    os.kill(d.hwprov_pid(), signal.SIGHUP)  # a resync finds the same lies: said once only
    d.wait("resync")
    assert d.stop() == 0
    assert len([e for e in d.events() if e["event"] == "node-refused"]) == 4
    assert run.not_json() == []
