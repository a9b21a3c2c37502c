"""The watchdog under `Type=notify`: the real `hwprov run` on a simulated board feeds it from
its main loop, so a loop stuck in a pass (here: an engine that stops answering) stops feeding
it, and systemd would restart the agent. The stub engine plays the stuck engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from hwprov.sandbox.demo import COMPOSE
from stubengine import StubEngine

from lab.notifysocket import NotifySocket
from lab.simdaemon import SimDaemon

WATCHDOG_USEC = 200_000  # the loop then turns at least every 0.1 s when idle
# Quiet this long while stuck: ten times the longest wait of a loop that still turns.
STUCK_QUIET_S = 1.0


@pytest.mark.timeout(120)
def test_a_stuck_loop_stops_feeding_the_watchdog_and_feeds_it_again_once_unstuck(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    with (
        NotifySocket(tmp_path / "notify.sock") as notify,
        StubEngine(tmp_path / "engine.sock") as engine,
    ):
        for key, value in notify.env(WATCHDOG_USEC).items():
            monkeypatch.setenv(key, value)
        with SimDaemon(engine.url, tmp_path, compose, "rpi4b", "-p", "demo") as daemon:
            assert notify.next(60) == ["READY=1", "WATCHDOG=1"], daemon.tail()
            # Idle, it keeps turning: nothing happens on the board or the engine.
            for _ in range(3):
                assert notify.next(30) == ["WATCHDOG=1"]
            mark = daemon.mark()
            engine.open.clear()
            daemon.sim("plug", id="ftdi")  # a pass for the GPS service, which lists containers
            assert engine.stuck.wait(30)
            notify.drain()  # sent before the loop got stuck
            assert notify.next(STUCK_QUIET_S) is None
            assert all(e["event"] != "reconciled" for e in daemon.events(mark))  # still in it
            engine.open.set()
            daemon.wait("reconciled", after=mark)
            assert notify.next(30) == ["WATCHDOG=1"]
            assert daemon.stop() == 0
        said = notify.drain()
        assert said and said[-1] == ["STOPPING=1"], said
        assert all(m == ["WATCHDOG=1"] for m in said[:-1]), said
