"""What systemd hears from `hwprov run` under `Type=notify` (deploy/hwprov.service).

READY=1 once coldplug and the first pass are done (the containers have what was attached at
boot), WATCHDOG=1 at every turn of the main loop, STOPPING=1 on the way out. Without
NOTIFY_SOCKET (not under systemd, in a container, in a shell) nothing is done at all.

The watchdog is fed by the loop's own turns, never by a timer thread: a thread would keep a
wedged loop (a pass stuck on an engine call, a deadlock) looking alive. So the loop must turn
at least every half `WatchdogSec` even when nothing happens: `wake_every_s` is its longest wait.

The protocol itself (one datagram per message on the socket systemd names) is sdnotify's:
pure Python, so the wheel and the image need no libsystemd or compiler (systemd-python does).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import sdnotify


@dataclass(frozen=True, slots=True)
class Watchdog:
    interval_s: float  # WatchdogSec: systemd restarts hwprov after this long without a feed

    @property
    def wake_every_s(self) -> float:
        # Half, as sd_watchdog_enabled(3) advises: a turn that itself takes a while still lands
        # inside the interval.
        return self.interval_s / 2


def watchdog(env: Mapping[str, str], pid: int) -> Watchdog | None:
    """The watchdog systemd asked of process `pid`, by sd_watchdog_enabled(3)'s rules: none
    without a positive WATCHDOG_USEC, nor when WATCHDOG_PID names another process (the
    variables were inherited from a parent that is the service's main process)."""
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    owner = env.get("WATCHDOG_PID")
    if usec <= 0 or (owner is not None and owner != str(pid)):
        return None
    return Watchdog(usec / 1e6)


class ServiceNotify:
    """The loop calls `turn` after each burst it handled (the first one after coldplug and the
    first pass) and `stopping` as it leaves."""

    def __init__(self) -> None:
        # sdnotify's notifier opens its socket at once (and quietly does nothing if it cannot):
        # none at all without NOTIFY_SOCKET, rather than a socket that goes nowhere.
        self._notifier = sdnotify.SystemdNotifier() if os.environ.get("NOTIFY_SOCKET") else None
        self.watchdog = watchdog(os.environ, os.getpid()) if self._notifier else None
        self._ready = False

    @property
    def wake_every_s(self) -> float | None:
        """The loop's longest wait for work (None: as long as it likes)."""
        return self.watchdog.wake_every_s if self.watchdog else None

    def turn(self) -> None:
        lines = [] if self._ready else ["READY=1"]
        if self.watchdog:
            lines.append("WATCHDOG=1")
        self._ready = True
        self._send(lines)

    def stopping(self) -> None:
        """STOPPING=1, then the socket is closed: nothing more is said."""
        self._send(["STOPPING=1"])
        if self._notifier is not None and self._notifier.socket is not None:
            self._notifier.socket.close()
        self._notifier = None

    def _send(self, lines: list[str]) -> None:
        if self._notifier is not None and lines:
            # One datagram: systemd reads READY and the first WATCHDOG together.
            self._notifier.notify("\n".join(lines))
