"""Timestamped lines ("<time_ns> <text>") read by a thread from a stream, waited on by a
benchmark: the prober inside a container and the uevent listener both write them."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from hwprov.errors import HwprovError


def lines_of(chunks: Iterable[bytes]) -> Iterator[str]:
    """Whole lines out of a byte stream that splits them anywhere (docker's log stream)."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.decode(errors="replace")


class Stamps:
    def __init__(self, lines: Iterable[str], name: str) -> None:
        self.seen: list[tuple[int, str]] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(lines,), name=name, daemon=True)
        self._thread.start()

    def _read(self, lines: Iterable[str]) -> None:
        with contextlib.suppress(Exception):  # the stream ends when it is closed under us
            for line in lines:
                stamp, _, text = line.strip().partition(" ")
                if not stamp.isdigit():
                    continue
                with self._cond:
                    self.seen.append((int(stamp), text))
                    self._cond.notify_all()

    def wait(self, match: Callable[[str], bool], after_ns: int, timeout: float = 30.0) -> int:
        """The time of the first line at or after `after_ns` that `match` accepts."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for stamp, text in self.seen:
                    if stamp >= after_ns and match(text):
                        return stamp
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HwprovError(
                        f"{self._thread.name}: nothing matching; last {self.seen[-4:]}"
                    )
                self._cond.wait(left)

    def join(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout)
