"""daemon/notify.py against a real datagram socket, as systemd listens: what is said when, and
nothing at all outside systemd."""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

import pytest
from hwprov.daemon.notify import ServiceNotify, Watchdog, watchdog

from lab.notifysocket import NotifySocket


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, Watchdog(30.0)),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, Watchdog(30.0)),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # meant for another pid
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_the_watchdog_follows_sd_watchdog_enabled(
    env: dict[str, str], expected: Watchdog | None
) -> None:
    assert watchdog(env, pid=4242) == expected


def test_the_loop_waits_at_most_half_the_interval() -> None:
    assert Watchdog(30.0).wake_every_s == 15.0


def test_ready_comes_once_with_the_first_feed_then_feeds_then_stopping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with NotifySocket(tmp_path / "notify.sock") as manager:
        for key, value in manager.env(watchdog_usec=2_000_000).items():
            monkeypatch.setenv(key, value)
        notify = ServiceNotify()
        assert notify.wake_every_s == 1.0
        notify.turn()
        notify.turn()
        notify.stopping()
        notify.turn()  # after STOPPING=1 nothing more
        assert manager.drain() == [["READY=1", "WATCHDOG=1"], ["WATCHDOG=1"], ["STOPPING=1"]]


def test_without_a_watchdog_only_ready_and_stopping_are_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with NotifySocket(tmp_path / "notify.sock") as manager:
        monkeypatch.setenv("NOTIFY_SOCKET", str(manager.path))
        monkeypatch.setenv("WATCHDOG_USEC", "2000000")
        monkeypatch.setenv("WATCHDOG_PID", "1")  # inherited from the service's main process
        notify = ServiceNotify()
        assert notify.wake_every_s is None
        notify.turn()
        notify.turn()
        notify.stopping()
        assert manager.drain() == [["READY=1"], ["STOPPING=1"]]


def test_an_abstract_socket_is_reached_too(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"hwprov-test-{secrets.token_hex(4)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(f"\0{name}")
        manager.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", f"@{name}")
        monkeypatch.delenv("WATCHDOG_USEC", raising=False)
        notify = ServiceNotify()
        notify.turn()
        notify.stopping()
        assert manager.recv(4096) == b"READY=1"


def test_without_notify_socket_no_socket_is_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")  # a stray variable changes nothing
    before = set(os.listdir("/proc/self/fd"))
    notify = ServiceNotify()
    notify.turn()
    assert set(os.listdir("/proc/self/fd")) == before
    assert notify.wake_every_s is None  # and the loop waits as long as it likes
    notify.stopping()
