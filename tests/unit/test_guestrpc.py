"""The kernel bench's runner protocol, served here on loopback as the guest serves it: commands,
file edits, a held file, and a spawned process whose stderr streams back and which a SIGTERM
to its host-side relay stops."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import guestrpc

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server() -> Iterator[guestrpc.Client]:
    srv = guestrpc._Server(0)
    port = srv.server_address[1]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield guestrpc.Client(port)
    srv.shutdown()
    srv.server_close()


def test_run_and_file_edits(server: guestrpc.Client, tmp_path: Path) -> None:
    done = server.call("run", argv=["sh", "-c", "echo out; echo err >&2; exit 3"], env={})
    assert (done["rc"], done["stdout"], done["stderr"]) == (3, "out\n", "err\n")
    target = tmp_path / "a"
    server.call("write", path=str(target), text="x")
    assert server.call("read", path=str(target))["text"] == "x"
    assert server.call("exists", path=str(tmp_path / "nope"))["exists"] is False
    with pytest.raises(guestrpc.GuestError, match="FileNotFoundError"):
        server.call("read", path=str(tmp_path / "nope"))


def test_a_held_file_stays_open_until_released(server: guestrpc.Client, tmp_path: Path) -> None:
    fifo = tmp_path / "held"
    fifo.write_bytes(b"")
    server.call("hold", path=str(fifo), hex="ff00")
    server.call("hold", path=str(fifo), hex="ff00")  # once only
    assert fifo.read_bytes() == b"\xff\x00"
    server.call("release", path=str(fifo))


def test_a_spawned_process_streams_its_stderr_and_stops_on_sigterm(
    server: guestrpc.Client, tmp_path: Path
) -> None:
    log = (tmp_path / "log").open("w")
    script = "import signal,sys,time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\n"
    script += "print('hello', file=sys.stderr, flush=True)\nwhile True: time.sleep(0.05)\n"
    relay = subprocess.Popen(
        [sys.executable, "-m", "lab.guestrpc", str(server.address[1]), "--",
         sys.executable, "-c", script],
        cwd=ROOT, stderr=log, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while "hello" not in (tmp_path / "log").read_text():
        assert time.monotonic() < deadline and relay.poll() is None
        time.sleep(0.05)
    relay.send_signal(signal.SIGTERM)
    assert relay.wait(timeout=20) == 7  # the process's own exit code, through the relay
    log.close()
