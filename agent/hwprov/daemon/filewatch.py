"""Wake up when a file changes, without polling: inotify on its folder, through libc.

Editors replace a file by writing a new one and renaming it over the old, so the folder is
watched and events are filtered by name.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import struct
import threading
from collections.abc import Callable
from pathlib import Path

IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x2, 0x8, 0x80, 0x100, 0x200
IN_CLOEXEC, IN_NONBLOCK = 0o2000000, 0o4000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len


class FileWatch:
    def __init__(self, path: Path, on_change: Callable[[], None]) -> None:
        self.path = path.resolve()
        self.on_change = on_change
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._fd = libc.inotify_init1(IN_CLOEXEC | IN_NONBLOCK)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        mask = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE
        if libc.inotify_add_watch(self._fd, str(self.path.parent).encode(), mask) < 0:
            err = ctypes.get_errno()
            os.close(self._fd)
            raise OSError(err, f"cannot watch {self.path.parent}")
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="filewatch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=5)
        for fd in (self._fd, self._stop_r, self._stop_w):
            os.close(fd)

    def _run(self) -> None:
        while True:
            ready, _, _ = select.select([self._fd, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                continue
            if self.path.name in _names(data):
                self.on_change()


def _names(data: bytes) -> set[str]:
    names, offset = set(), 0
    while offset + _EVENT.size <= len(data):
        _wd, _mask, _cookie, length = _EVENT.unpack_from(data, offset)
        raw = data[offset + _EVENT.size : offset + _EVENT.size + length]
        names.add(raw.rstrip(b"\0").decode(errors="replace"))
        offset += _EVENT.size + length
    return names
