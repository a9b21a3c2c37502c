"""Helper threads that leave SIGTERM, SIGINT and SIGHUP to the main thread.

The kernel hands a process signal to any thread that does not block it; CPython runs the Python
handler only in the main thread, at its next bytecode. A main thread blocked in `queue.get` is
woken by a signal delivered to it (the wait returns EINTR and the handler runs), but not by one
delivered to a helper: SIGTERM once waited about 105 s on an idle `hwprov run` that way. So
every helper hwprov starts blocks these signals (`start`), and `SignalWake` catches the ones
that land on threads hwprov did not start (a library's, a plugin's).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})


@contextmanager
def signals_blocked() -> Iterator[None]:
    """SIGTERM, SIGINT and SIGHUP blocked in the calling thread until the block ends: a thread
    started inside inherits the mask, and keeps it."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def start(thread: threading.Thread) -> None:
    """Start `thread` with SIGTERM, SIGINT and SIGHUP blocked in it."""
    with signals_blocked():
        thread.start()


def take_signals() -> None:
    """In the main thread (elsewhere nothing), unblock SIGTERM, SIGINT and SIGHUP: call it
    before each wait. Something may have left them blocked here: under the simulator,
    umockdev before 0.18.4 can give a thread the signal mask of another that read /sys at the
    same moment (its commit 284dcf1), so the main thread comes back from a coldplug with a
    helper's mask. One that arrived meanwhile was held pending; it is handled now."""
    if threading.current_thread() is threading.main_thread():
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)


def wait_for(child: subprocess.Popen[bytes]) -> int:
    """Wait for `child` in the main thread and pass signals on meanwhile: its exit code.

    A plain `wait` blocks in waitpid, which only a signal delivered to this very thread
    interrupts; one the kernel handed to another thread (umockdev's, or any thread while this
    one blocks it) would run its handler only when the child exits, so a SIGTERM meant for the
    child never reaches it. Waiting in short steps runs the handler within one of them.
    """
    while True:
        take_signals()
        try:
            return child.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            continue


class SignalWake:
    """While entered, a signal with a Python handler calls `nudge` from a helper thread,
    whichever thread the kernel delivered it to; `nudge` puts something on the queue the main
    thread waits on, which wakes it to run the handler.

    CPython's C-level handler writes the signal number to the wakeup fd in whatever thread it
    runs; this reads it. Enter and leave it in the main thread (`signal.set_wakeup_fd`).
    """

    def __init__(self, nudge: Callable[[], None]) -> None:
        self.nudge = nudge
        self._stopping = threading.Event()
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)  # set_wakeup_fd requires it; the reader blocks
        self._old_fd = -1
        self._thread = threading.Thread(target=self._run, name="hwprov-signals", daemon=True)

    def __enter__(self) -> SignalWake:
        self._old_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        start(self._thread)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        signal.set_wakeup_fd(self._old_fd)
        self._stopping.set()
        os.write(self._write_fd, b"\0")  # no signal is numbered 0
        self._thread.join(timeout=5)
        os.close(self._read_fd)
        os.close(self._write_fd)

    def _run(self) -> None:
        while True:
            try:
                os.read(self._read_fd, 512)
            except OSError:
                return
            if self._stopping.is_set():
                return
            self.nudge()
