"""Signals reach the main thread promptly: hwprov's helper threads block them, and a signal that
lands on some other thread still wakes a main thread blocked on its queue."""

from __future__ import annotations

import queue
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hwprov import threads
from hwprov.daemon.filewatch import FileWatch
from hwprov.hardware.udev import UdevMonitor

MAIN_ONLY = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def blocked(thread: threading.Thread | None = None) -> set[int]:
    """The signals a thread blocks, from the kernel's view of it (/proc SigBlk)."""
    tid = (thread or threading.current_thread()).native_id
    for line in Path(f"/proc/self/task/{tid}/status").read_text().splitlines():
        if line.startswith("SigBlk:"):
            mask = int(line.split()[1], 16)
            return {n + 1 for n in range(64) if mask >> n & 1}
    raise AssertionError("no SigBlk")


class FakeNetlink:
    """A monitor socket that never has an event (a socketpair nobody writes to)."""

    def __init__(self) -> None:
        self.ours, self.theirs = socket.socketpair()

    def fileno(self) -> int:
        return self.ours.fileno()

    def start(self) -> None:
        pass

    def poll(self, timeout: float | None = None) -> None:
        return None

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()


@pytest.fixture
def netlink() -> Iterator[FakeNetlink]:
    fake = FakeNetlink()
    yield fake
    fake.close()


def test_a_thread_hwprov_starts_blocks_the_signals_and_the_starter_keeps_its_mask() -> None:
    before = blocked()
    seen: list[set[int]] = []
    thread = threading.Thread(target=lambda: seen.append(blocked()))
    threads.start(thread)
    thread.join()
    assert seen[0] >= MAIN_ONLY
    assert blocked() == before  # the main thread still takes them


def test_the_udev_monitor_and_the_file_watch_threads_block_the_signals(
    netlink: FakeNetlink, tmp_path: Path
) -> None:
    monitor = UdevMonitor(["tty"], [], source="udev", opener=lambda *_: netlink)
    watch = FileWatch(tmp_path / "docker-compose.yml", lambda: None)
    monitor.start()
    watch.start()
    try:
        for helper in (monitor._thread, watch._thread):
            assert blocked(helper) >= MAIN_ONLY, helper.name
    finally:
        monitor.stop()
        watch.stop()


def test_a_signal_on_a_thread_that_does_not_block_it_still_wakes_the_main_thread() -> None:
    # What a library's or a plugin's thread is: hwprov did not start it, so it takes signals.
    # The kernel may hand SIGHUP to it (pthread_kill does it on purpose); Python's handler
    # must still run at once in the main thread, blocked here on its queue.
    wake: queue.SimpleQueue[object] = queue.SimpleQueue()
    handled: list[float] = []

    def handler(signum: int, frame: object) -> None:
        handled.append(time.monotonic())
        wake.put("handled")

    done = threading.Event()
    bystander = threading.Thread(target=done.wait, name="bystander")
    bystander.start()
    sent: list[float] = []

    def send() -> None:
        time.sleep(0.2)  # the main thread is in wake.get by then
        sent.append(time.monotonic())
        signal.pthread_kill(bystander.ident or 0, signal.SIGHUP)

    old = signal.signal(signal.SIGHUP, handler)
    sender = threading.Thread(target=send, name="sender")
    try:
        with threads.SignalWake(lambda: wake.put("nudge")):
            threads.start(sender)
            items = []
            while "handled" not in items:
                items.append(wake.get(timeout=5))  # queue.Empty: the handler never ran
    finally:
        signal.signal(signal.SIGHUP, old)
        done.set()
        bystander.join()
        sender.join()
    assert handled[0] - sent[0] < 0.5


def test_signal_wake_gives_the_wakeup_fd_back() -> None:
    before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(before)
    with threads.SignalWake(lambda: None):
        pass
    assert signal.set_wakeup_fd(-1) == before
    signal.set_wakeup_fd(before)
