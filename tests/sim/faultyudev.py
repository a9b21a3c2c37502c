"""hwprov with a udev monitor that fails on demand: `python faultyudev.py FAULT hwprov-args...`.

The real `hwprov` command runs, with pyudev's netlink monitor wrapped. FAULT is a file the
test writes; the wrapper reads it each time a monitor receives an event:

- `drop`: the event is lost (as in an overrun), silently;
- `overrun`: the event is lost and the receive fails with ENOBUFS, as libudev's does after
  the kernel dropped events for a full socket buffer; the file is emptied, so the monitor
  hwprov opens next works;
- `overrun-for-good`: the same, and no netlink socket opens any more (EMFILE), so hwprov
  cannot listen again;
- `untrusted` / `sender-gone`: while the file says so, every message is taken as sent by a
  process that does not run udevd, or by one gone before it could be looked at. umockdev's
  sender is the simulator itself, so the real sender check is off in its testbed; here it is
  on, with only its verdict replaced: the peek, the drop and what the daemon does are real.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any

import pyudev
from hwprov.commands.main import main
from hwprov.hardware import senders, udev

VERDICTS = {
    "untrusted": "a udev message from a process that does not run udevd",
    "sender-gone": senders.SENDER_GONE,
}


class FaultyMonitor:
    opened = 0

    def __init__(self, real: pyudev.Monitor, fault: Path) -> None:
        self._real = real
        self._fault = fault

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def fileno(self) -> int:
        return int(self._real.fileno())

    def poll(self, timeout: float | None = None) -> pyudev.Device | None:
        while (device := self._real.poll(timeout)) is not None:
            fault = self._fault.read_text().strip() if self._fault.exists() else ""
            if fault.startswith("overrun"):
                if fault == "overrun":
                    self._fault.write_text("")
                raise OSError(errno.ENOBUFS, os.strerror(errno.ENOBUFS))
            if fault != "drop":
                return device
        return None


def install(fault: Path) -> None:
    from_netlink = pyudev.Monitor.from_netlink

    def faulty(context: pyudev.Context, source: str = "udev") -> FaultyMonitor:
        text = fault.read_text().strip() if fault.exists() else ""
        if text == "overrun-for-good" and FaultyMonitor.opened:
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
        FaultyMonitor.opened += 1
        return FaultyMonitor(from_netlink(context, source=source), fault)

    pyudev.Monitor.from_netlink = faulty

    def verdict(check: senders.SenderCheck, sender: senders.Sender) -> str | None:
        return VERDICTS.get(fault.read_text().strip() if fault.exists() else "")

    senders.SenderCheck.problem = verdict  # type: ignore[method-assign]
    init = udev.UdevMonitor.__init__

    def checked(self: udev.UdevMonitor, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **{**kwargs, "check_senders": True})

    udev.UdevMonitor.__init__ = checked  # type: ignore[method-assign]


if __name__ == "__main__":
    install(Path(sys.argv[1]))
    sys.exit(main(sys.argv[2:]))
