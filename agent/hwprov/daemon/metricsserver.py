"""Serve a metrics registry over HTTP, on a TCP port or a unix socket (opt-in: `hwprov run
--metrics-listen`).

The exposition (text format, OpenMetrics when asked, gzip) is prometheus_client's WSGI app; the
HTTP server is the standard library's wsgiref, as prometheus_client's own start_http_server
uses, here also on a unix socket (which it does not offer) and on a named thread that keeps
SIGTERM for the main one (threads.py).
"""

from __future__ import annotations

import socket
import stat
import threading
from pathlib import Path
from socketserver import TCPServer, ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from hwprov import threads
from hwprov.daemon.listen import Listen
from hwprov.errors import HwprovError


class MetricsError(HwprovError):
    """The metrics endpoint cannot listen where it was asked to."""


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not decisions: nothing on stderr."""


class _TCP(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in flight does not keep hwprov from stopping


class _TCP6(_TCP):
    address_family = socket.AF_INET6


class _Unix(_TCP):
    address_family = socket.AF_UNIX

    def server_bind(self) -> None:
        # HTTPServer's bind reads a host and a port out of the address: a path has neither.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = "localhost", 0
        self.setup_environ()

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, _ = self.socket.accept()
        return conn, ("unix", 0)  # the handler reads a client host from the address


class MetricsServer:
    """The endpoint, serving on its own thread from construction until `close`."""

    def __init__(self, listen: Listen, registry: CollectorRegistry) -> None:
        app = make_wsgi_app(registry)
        try:
            if listen.path is not None:
                _clear_stale_socket(listen.path)
                # typeshed types a TCP server's address: a unix one's is its path
                self._server: WSGIServer = _Unix(str(listen.path), _Quiet)  # type: ignore[arg-type]
                self._server.set_app(app)
            else:
                found = socket.getaddrinfo(listen.host, listen.port, type=socket.SOCK_STREAM)
                server = _TCP6 if found[0][0] == socket.AF_INET6 else _TCP
                self._server = make_server(listen.host, listen.port, app, server, _Quiet)
        except OSError as err:  # socket.gaierror too: a host that does not resolve
            why = err.strerror or str(err)
            raise MetricsError(f"metrics: cannot listen on {listen}: {why}") from None
        port = 0 if listen.path is not None else self._server.server_address[1]
        self.listen = Listen(listen.host, int(port), listen.path)  # the port the kernel chose
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="hwprov-metrics", daemon=True
        )
        threads.start(self._thread)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        if self.listen.path is not None:
            self.listen.path.unlink(missing_ok=True)


def _clear_stale_socket(path: Path) -> None:
    """A socket a killed hwprov left is removed; anything else there is an error to report."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    if not stat.S_ISSOCK(mode):
        raise MetricsError(f"metrics: {path} exists and is not a socket")
    path.unlink()
