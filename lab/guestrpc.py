"""A bench runner's actions over TCP, for a machine the tests do not run on (the kernel bench's
QEMU guest): one JSON request per connection, one JSON answer, or for `spawn` a stream.

The guest side (`serve`) is started inside the guest by lab/kernelguest.py and reached through
QEMU's user-mode network (a host port forwarded to it, bound to 127.0.0.1). It runs as root in
a throwaway VM, so it trusts what it is sent; nothing outside this machine can reach it.

- `run`: argv (with env, timeout) -> rc, stdout, stderr;
- `write` / `mkdir` / `rmdir` / `symlink` / `unlink` / `read` / `exists`: sysfs and
  configfs;
- `nodes_under`: the /dev nodes below a sysfs path, waited for (lab.realbench.nodes_under);
- `rdev`: MAJOR:MINOR of a node;
- `hold` / `release`: keep a file open (/dev/vhci: a Bluetooth controller lives as long as the
  fd does), writing some bytes first;
- `spawn`: start a process; its stderr lines come back as they are written, then its exit
  code; the client sends a signal number to stop it, and closing the connection kills it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import socketserver
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from hwprov.errors import HwprovError


class GuestError(HwprovError):
    """The guest could not do what it was asked."""


def _send(sock: socket.socket, message: Mapping[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


class Client:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.address = (host, port)

    def call(self, op: str, timeout: float = 180.0, **args: Any) -> dict[str, Any]:
        with socket.create_connection(self.address, timeout=timeout) as sock:
            _send(sock, {"op": op, **args})
            line = sock.makefile("rb").readline()
        if not line:
            raise GuestError(f"guest: {op}: no answer (the guest agent is gone?)")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise GuestError(f"guest: {op}: {answer['error']}")
        return answer

    def ping(self) -> bool:
        try:
            self.call("ping", timeout=2)
        except (OSError, GuestError, ValueError):
            return False
        return True


def relay(port: int, argv: Sequence[str], env: Mapping[str, str]) -> int:
    """The host side of `spawn`, run as its own process (`python -m lab.guestrpc PORT -- argv`):
    the guest process's stderr on this one's, its exit code as this one's, and SIGTERM passed
    on, so a `subprocess.Popen` of this stands for the process in the guest."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.settimeout(None)
    _send(sock, {"op": "spawn", "argv": list(argv), "env": dict(env)})

    def forward(signum: int, _frame: object) -> None:
        _send(sock, {"signal": signum})

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for raw in sock.makefile("rb"):
        message = json.loads(raw)
        if "stderr" in message:
            os.write(2, message["stderr"].encode())
        elif "rc" in message:
            return int(message["rc"])
        elif "error" in message:
            os.write(2, f"guest: spawn: {message['error']}\n".encode())
            return 127
    return 255  # the guest went away


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        line = self.rfile.readline()
        if not line:
            return
        request = json.loads(line)
        op = request.pop("op")
        if op == "spawn":
            self._spawn(request)
            return
        try:
            answer = self.server.do(op, request)
        except Exception as err:  # every failure goes back to the caller
            answer = {"error": f"{type(err).__name__}: {err}"}
        self.wfile.write(json.dumps(answer).encode() + b"\n")

    def _spawn(self, request: dict[str, Any]) -> None:
        env = {**os.environ, **request.get("env", {})}
        try:
            proc = subprocess.Popen(
                request["argv"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, start_new_session=True,
            )  # fmt: skip
        except OSError as err:
            self.wfile.write(json.dumps({"error": str(err)}).encode() + b"\n")
            return
        lock = threading.Lock()

        def out(message: Mapping[str, Any]) -> None:
            with lock:
                try:
                    self.wfile.write(json.dumps(message).encode() + b"\n")
                    self.wfile.flush()
                except OSError:
                    pass  # the host side went away; the reader below kills the process

        def signals() -> None:
            for raw in self.rfile:
                with_signal = json.loads(raw)
                if "signal" in with_signal and proc.poll() is None:
                    proc.send_signal(int(with_signal["signal"]))
            if proc.poll() is None:  # connection closed: nobody is listening any more
                proc.kill()

        threading.Thread(target=signals, daemon=True).start()
        assert proc.stderr is not None
        with proc.stderr:
            for raw in proc.stderr:
                out({"stderr": raw.decode(errors="replace")})
        out({"rc": proc.wait()})


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("0.0.0.0", port), _Handler)
        self.held: dict[str, BinaryIO] = {}
        self.stopping = threading.Event()

    def do(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        if op == "ping":
            return {}
        if op == "run":
            env = {**os.environ, **args.get("env", {})}
            done = subprocess.run(
                args["argv"], env=env, capture_output=True, text=True,
                timeout=args.get("timeout", 120), check=False,
            )  # fmt: skip
            return {"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
        path = Path(args.get("path", "/nonexistent"))
        if op == "write":
            path.write_text(args["text"])
        elif op == "mkdir":
            path.mkdir(exist_ok=True)
        elif op == "rmdir":
            path.rmdir()
        elif op == "symlink":
            if not path.is_symlink():
                path.symlink_to(args["target"])
        elif op == "unlink":
            path.unlink(missing_ok=True)
        elif op == "read":
            return {"text": path.read_text()}
        elif op == "exists":
            return {"exists": path.exists()}
        elif op == "nodes_under":
            from lab.realbench import nodes_under

            return {"nodes": nodes_under(path, tuple(args["subsystems"]), args["wait_s"])}
        elif op == "rdev":
            rdev = os.stat(path).st_rdev
            return {"rdev": f"{os.major(rdev)}:{os.minor(rdev)}"}
        elif op == "hold":
            if str(path) not in self.held:
                handle = path.open("r+b", buffering=0)
                handle.write(bytes.fromhex(args.get("hex", "")))
                self.held[str(path)] = handle
        elif op == "release":
            held = self.held.pop(str(path), None)
            if held is not None:
                held.close()
        elif op == "stop":
            self.stopping.set()
        else:
            raise GuestError(f"unknown op {op}")
        return {}


def serve(port: int) -> None:
    """Answer until a `stop` request (the guest then powers off)."""
    with _Server(port) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        server.stopping.wait()
        server.shutdown()


if __name__ == "__main__":
    import sys

    port, _, *command = sys.argv[1:]
    sys.exit(relay(int(port), command, json.loads(os.environ.get("HWPROV_GUEST_ENV", "{}"))))
