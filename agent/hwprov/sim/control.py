"""The simulator's control socket: newline-delimited JSON over a unix stream socket."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hwprov.errors import HwprovError, SimulatorError

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class ControlServer:
    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.sock.settimeout(0.2)  # so stop() is noticed without a wake-up connection
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="sim-control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
        self.path.unlink(missing_ok=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn, conn.makefile("rw") as stream:
                for line in stream:
                    stream.write(json.dumps(self._answer(line)) + "\n")
                    stream.flush()

    def _answer(self, line: str) -> dict[str, Any]:
        try:
            request = json.loads(line)
            if not isinstance(request, dict) or "op" not in request:
                raise SimulatorError("a request is a JSON object with an 'op'")
            return {"ok": True, **self.handler(request)}
        except (HwprovError, ValueError, KeyError, TypeError) as err:
            return {"ok": False, "error": str(err)}


def control_path(explicit: str | None) -> Path:
    found = explicit or os.environ.get("HWPROV_SIM_CONTROL")
    if not found:
        raise SimulatorError(
            "no simulator to talk to: give --control or run inside `hwprov sim run`"
        )
    return Path(found)


def request(path: Path, op: str, **args: Any) -> dict[str, Any]:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(str(path))
            with sock.makefile("rw") as stream:
                stream.write(json.dumps({"op": op, **args}) + "\n")
                stream.flush()
                reply = json.loads(stream.readline() or "{}")
    except OSError as err:
        raise SimulatorError(
            f"cannot reach the simulator at {path}: {err.strerror or err}"
        ) from err
    if not reply.get("ok"):
        raise SimulatorError(reply.get("error", "no answer"))
    return reply
