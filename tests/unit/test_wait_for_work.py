"""The main loop's wait: the heartbeat and the watchdog's feed run before each wait, and the
signals are taken after them, so a SIGTERM is never held behind a whole heartbeat interval.

Under the simulator, a file operation in the main thread while another thread reads /sys can
leave SIGTERM blocked there (umockdev before 0.18.4; threads.take_signals). The status file is
written at every turn: the fresh clone's CI run saw one stop take 10 s (the interval) when the
signals were taken before the write."""

from __future__ import annotations

import queue
import signal
import threading
from pathlib import Path

import pytest
from hwprov import threads
from hwprov.daemon import loop


def blocked_here() -> set[int]:
    tid = threading.get_native_id()
    for line in Path(f"/proc/self/task/{tid}/status").read_text().splitlines():
        if line.startswith("SigBlk:"):
            mask = int(line.split()[1], 16)
            return {n + 1 for n in range(64) if mask >> n & 1}
    raise AssertionError("no SigBlk")


def test_each_wait_starts_with_the_signals_taken_even_when_the_turn_blocked_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wake: queue.SimpleQueue[object] = queue.SimpleQueue()
    masks: list[set[int]] = []
    real_next_burst = loop.next_burst

    def watched(
        events: queue.SimpleQueue[object], window_s: float, timeout: float | None
    ) -> list[object] | None:
        masks.append(blocked_here())
        return real_next_burst(events, window_s, timeout)

    monkeypatch.setattr(loop, "next_burst", watched)
    turns = 0

    def turn() -> None:  # as umockdev can leave it: the main thread's signals blocked
        nonlocal turns
        turns += 1
        signal.pthread_sigmask(signal.SIG_BLOCK, threads.SIGNALS)
        if turns == 3:
            wake.put("work")

    try:
        assert loop.wait_for_work(wake, 0.0, 0.01, turn) == ["work"]
    finally:
        threads.take_signals()
    assert turns == 3 and len(masks) == 3  # two idle timeouts, then the work
    for mask in masks:
        assert not mask & set(threads.SIGNALS), mask
