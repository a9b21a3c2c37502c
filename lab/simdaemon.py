"""`hwprov run` on a simulated board against a lab's engine, as a user would run it: what the
engine tests and the benchmarks drive.

Its JSON decision lines (stderr) are read by a thread as they come, so a caller waits on the
exact decision instead of polling a log file.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hwprov.containers.outcome import OutcomeAction
from hwprov.daemon.revoker import REVOKE_FAILED
from hwprov.errors import HwprovError
from hwprov.sim.control import request

FAILURES = {str(a) for a in OutcomeAction if a.failed} | {REVOKE_FAILED}


class SimDaemon:
    def __init__(
        self,
        url: str,
        folder: Path,
        compose: Path,
        board: str,
        *args: str,
        profile: Path | None = None,
        launcher: Sequence[str] = (),
    ) -> None:
        self.control = folder / "control.sock"
        env = {**os.environ, "DOCKER_HOST": url}
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        self.decisions: list[dict[str, Any]] = []
        self.other: list[str] = []  # anything else on stderr, for error messages
        self._cond = threading.Condition()
        # cProfile writes its stats when hwprov returns from SIGTERM, as it does when stopped.
        # A `launcher` runs hwprov's main itself (the sim tier's faulty udev, for one).
        hwprov = (
            [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "hwprov"]
            if profile
            else list(launcher) or ["hwprov"]
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hwprov", "sim", "run", "--board", board,
             "--control", str(self.control), "--", *hwprov, "run", "-f", str(compose), *args],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        self._thread = threading.Thread(target=self._read, name="bench-decisions", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                if line.startswith("{"):
                    try:
                        self.decisions.append(json.loads(line))
                    except ValueError:
                        self.other.append(line.rstrip())
                else:
                    self.other.append(line.rstrip())
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def mark(self) -> int:
        """A position in the decision list: `wait` looks only at what comes after it."""
        with self._cond:
            return len(self.decisions)

    def wait(
        self, event: str | tuple[str, ...], after: int = 0, timeout: float = 60.0, **match: str
    ) -> dict[str, Any]:
        """The first decision `event` (or one of them, with these fields) after `after`; a
        rollback or a failure of the same service, or the daemon exiting, is an error."""
        wanted = (event,) if isinstance(event, str) else event
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for d in self.decisions[after:]:
                    if all(d.get(k) == v for k, v in match.items()):
                        if d["event"] in wanted:
                            return d
                        if d["event"] in FAILURES:
                            raise HwprovError(f"hwprov: {d}")
                left = deadline - time.monotonic()
                if self.proc.poll() is not None or left <= 0:
                    tail = "\n".join(self._said(15))
                    raise HwprovError(f"no '{event}' {match} from hwprov run:\n{tail}")
                self._cond.wait(min(left, 0.5))

    def events(self, after: int = 0) -> list[dict[str, Any]]:
        with self._cond:
            return list(self.decisions[after:])

    def sim(self, op: str, **args: Any) -> dict[str, Any]:
        return request(self.control, op, **args)

    def host_dev(self, node: str) -> str:
        """major:minor of the real stand-in the engine maps for a simulated /dev node."""
        folder = Path(self.sim("status")["nodes"])
        return str(json.loads((folder / "nodes.json").read_text())[node]["host_dev"])

    def tail(self, lines: int = 15) -> str:
        """The last lines hwprov (or the simulator) printed that were not decisions, and its
        log and error lines (decision lines too, since one stream has one format)."""
        with self._cond:
            return "\n".join(self._said(lines))

    def _said(self, lines: int) -> list[str]:
        said = [
            f"{d['event']}: {d.get('message') or d.get('error')}"
            for d in self.decisions
            if d["event"] in ("log", "error", "udev-lost")
        ]
        return self.other[-lines:] + said[-lines:]

    @contextmanager
    def session(self) -> Iterator[ControlSession]:
        with ControlSession(self.control) as s:
            yield s

    def hwprov_pid(self) -> int:
        """The `hwprov run` process itself: the child of the simulator's inner process."""
        inner = int(self.sim("status")["pid"])
        children = Path(f"/proc/{inner}/task/{inner}/children").read_text().split()
        if len(children) != 1:
            raise HwprovError(f"expected one child of the simulator, found {children}")
        return int(children[0])

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()  # the simulator forwards it to hwprov, then cleans up
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=10)
        # The simulator's inner process and hwprov hold the stderr pipe: if the outer one died
        # without passing the signal on, they are still running in its session.
        for sig, grace in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 5.0)):
            self._thread.join(timeout=grace if self._session_alive(sig) else 5.0)
            if not self._thread.is_alive():
                break
        if self.proc.stderr is not None and not self._thread.is_alive():
            self.proc.stderr.close()  # closing it under a blocked reader would hang
        return code

    def _session_alive(self, sig: signal.Signals) -> bool:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def __enter__(self) -> SimDaemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ControlSession:
    """One open control connection for many requests: a storm cannot afford a connect each."""

    def __init__(self, path: Path) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(30)
        self._sock.connect(str(path))
        self._stream = self._sock.makefile("rw")

    def __call__(self, op: str, **args: Any) -> dict[str, Any]:
        self._stream.write(json.dumps({"op": op, **args}) + "\n")
        self._stream.flush()
        reply = json.loads(self._stream.readline() or "{}")
        if not reply.get("ok"):
            raise HwprovError(f"simulator: {op} {args}: {reply.get('error', 'no answer')}")
        return reply

    def __enter__(self) -> ControlSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.close()
        self._sock.close()
