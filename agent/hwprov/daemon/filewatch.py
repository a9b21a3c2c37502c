"""Wake up when a file changes, without polling: inotify on its folder, through libc.

Editors replace a file by writing a new one and renaming it over the old, so the folder is
watched and events are filtered by name. A file reached through symlinks changes when any
link on the way is swapped: Kubernetes mounts a ConfigMap as `docker-compose.yml ->
..data/docker-compose.yml` with `..data -> ..2026_12_03_xx`, and updates it by renaming a new
`..data` link over the old one. So the folder of every link on the way is watched too, and the
chain is resolved again after each event.
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

from hwprov import threads

IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x2, 0x8, 0x80, 0x100, 0x200
IN_CLOEXEC, IN_NONBLOCK = 0o2000000, 0o4000
_MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len
MAX_LINKS = 40  # the kernel's own limit on symlinks followed in one lookup


def chain(path: Path) -> list[tuple[Path, str]]:
    """(folder, name) of each symlink met on the way to `path`'s file, then of the file itself:
    what a change of the file's content can come through."""
    found: list[tuple[Path, str]] = []
    current = Path("/")
    # Not normalised first: a ".." after a link is taken from where the link led, as the
    # kernel takes it.
    todo = list(reversed(path.absolute().parts[1:]))
    links = 0
    while todo:
        name = todo.pop()
        if name == "..":
            current = current.parent
            continue
        candidate = current / name
        if links < MAX_LINKS and candidate.is_symlink():
            links += 1
            found.append((current, name))
            target = Path(os.readlink(candidate))
            if target.is_absolute():
                current = Path("/")
            todo.extend(reversed(target.parts[1:] if target.is_absolute() else target.parts))
        else:
            current = candidate
    found.append((current.parent, current.name))
    return found


class FileWatch:
    def __init__(self, path: Path, on_change: Callable[[], None]) -> None:
        self.path = path.absolute()  # not resolved: the links on the way are watched too
        self.on_change = on_change
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._fd = self._libc.inotify_init1(IN_CLOEXEC | IN_NONBLOCK)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self._names: dict[int, set[str]] = {}  # watch descriptor -> names that matter in it
        try:
            self._watch_chain(initial=True)
        except OSError:
            os.close(self._fd)
            raise
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="hwprov-filewatch", daemon=True)

    def _watch_chain(self, initial: bool = False) -> None:
        """Watch the folders of the chain as it is now; stop watching those it left."""
        wanted: dict[Path, set[str]] = {}
        for folder, name in chain(self.path):
            wanted.setdefault(folder, set()).add(name)
        names: dict[int, set[str]] = {}
        for folder, wanted_names in wanted.items():
            wd = self._libc.inotify_add_watch(self._fd, str(folder).encode(), _MASK)
            if wd < 0:
                err = ctypes.get_errno()
                if initial:
                    raise OSError(err, f"cannot watch {folder}")
                continue  # a folder on the way went with the swap: the next event re-resolves
            names.setdefault(wd, set()).update(wanted_names)
        for wd in set(self._names) - set(names):
            self._libc.inotify_rm_watch(self._fd, wd)  # EINVAL once the folder is gone
        self._names = names

    def start(self) -> None:
        threads.start(self._thread)

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
            if any(name in self._names.get(wd, ()) for wd, name in _events(data)):
                # Watch the new chain before saying so: a change after this is seen again, one
                # before it is in what the reader loads.
                self._watch_chain()
                self.on_change()


def _events(data: bytes) -> set[tuple[int, str]]:
    found, offset = set(), 0
    while offset + _EVENT.size <= len(data):
        wd, _mask, _cookie, length = _EVENT.unpack_from(data, offset)
        raw = data[offset + _EVENT.size : offset + _EVENT.size + length]
        found.add((wd, raw.rstrip(b"\0").decode(errors="replace")))
        offset += _EVENT.size + length
    return found
