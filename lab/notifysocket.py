"""systemd's end of sd_notify, for a test: a datagram socket whose path goes in NOTIFY_SOCKET,
and the messages `hwprov run` sends to it, read as systemd reads them (one datagram, one
message of KEY=VALUE lines)."""

from __future__ import annotations

import socket
from pathlib import Path
from types import TracebackType


class NotifySocket:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))

    def env(self, watchdog_usec: int | None = None) -> dict[str, str]:
        """What systemd puts in a Type=notify service's environment (WATCHDOG_PID left out:
        hwprov runs below the simulator, so its pid is not known in advance)."""
        env = {"NOTIFY_SOCKET": str(self.path)}
        if watchdog_usec is not None:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        return env

    def next(self, timeout: float) -> list[str] | None:
        """The next message's lines; None when none came within `timeout` seconds."""
        self._sock.settimeout(timeout)
        try:
            data = self._sock.recv(4096)
        except TimeoutError:
            return None
        return data.decode().splitlines()

    def drain(self) -> list[list[str]]:
        """Every message already waiting, without waiting for more."""
        taken = []
        while (message := self.next(0.001)) is not None:
            taken.append(message)
        return taken

    def close(self) -> None:
        self._sock.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> NotifySocket:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
