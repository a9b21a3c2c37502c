"""A stand-in for the engine API on a unix socket: enough for `hwprov run` to start, follow the
event stream and pass over a project that has no containers (each service comes out
`missing`). The sim tier runs the real `hwprov run` against it, so what the daemon does with
signals, lost udev events and its log lines is tested on a simulated board without starting a
Docker engine (the engine tier owns that).
"""

from __future__ import annotations

import json
import os
import select
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Any

API = "1.45"


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    # Not daemon threads: server_close joins every handler, so none outlives a test.
    daemon_threads = False
    block_on_close = True
    stub: StubEngine


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a unix peer has no address to log, and the test reads hwprov's lines only

    def do_GET(self) -> None:
        stub = self.server.stub
        path = self.path.split("?")[0]
        with stub.lock:
            stub.calls.append(path)
        if path == "/version" or path.endswith("/version"):
            self._json({"ApiVersion": API, "MinAPIVersion": "1.24", "Version": "stub"})
        elif path.endswith("/_ping"):
            self._send(200, b"OK", "text/plain")
        elif path.endswith("/containers/json"):
            time.sleep(stub.list_delay_s)  # a slow engine keeps the daemon inside a pass
            if not stub.open.is_set():  # a stuck one keeps it there until the test opens it
                stub.stuck.set()
                stub.open.wait()
            self._json([])
        elif path.endswith("/events"):
            self._events()
        else:
            self._json({"message": f"stub engine: no {path}"}, 404)

    def _json(self, doc: object, status: int = 200) -> None:
        self._send(status, json.dumps(doc).encode(), "application/json")

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _events(self) -> None:
        # An idle stream: headers, then nothing until hwprov closes it or the stub stops.
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        select.select([self.connection, self.server.stub.stopping], [], [])
        self.close_connection = True


class StubEngine:
    def __init__(self, path: Path, list_delay_s: float = 0.0) -> None:
        self.path = path
        self.list_delay_s = list_delay_s
        self.calls: list[str] = []
        self.lock = threading.Lock()
        # Cleared: listings hang (`stuck` is set once one does) until it is set again.
        self.open = threading.Event()
        self.open.set()
        self.stuck = threading.Event()
        self.stopping, self._stop_w = os.pipe()
        self._server = _Server(str(path), _Handler)
        self._server.stub = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="stub-engine"
        )

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def __enter__(self) -> StubEngine:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        os.write(self._stop_w, b"x")  # ends the event streams still open
        self.open.set()
        self._server.shutdown()
        self._thread.join(timeout=5)
        self._server.server_close()
        for fd in (self.stopping, self._stop_w):
            os.close(fd)
        self.path.unlink(missing_ok=True)
