"""A process on the device that stops when asked, for `Bench.spawn` over SSH.

Without a terminal, killing the local `ssh` leaves the remote process running: sshd only
closes its pipes. So the remote side runs it under a shell that also waits on the session's
stdin and sends it SIGTERM when that closes, and this relay (`python -m lab.sshspawn SSH...`),
the local stand-in for the remote process, closes that stdin on SIGTERM or SIGINT and exits
with the remote exit code, after the process has really stopped.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
from collections.abc import Sequence


def remote_script(command: str) -> str:
    """`command` (a shell command line) under a watcher of the session's stdin."""
    # fd 3: an asynchronous list's stdin is /dev/null unless redirected explicitly (POSIX).
    return (
        f"exec 3<&0; {command} </dev/null & p=$!; "
        "(read _ <&3; kill -TERM $p 2>/dev/null) >/dev/null 2>&1 & w=$!; "
        "wait $p; rc=$?; kill $w 2>/dev/null; exit $rc"
    )


def remote_argv(command: str) -> str:
    return f"sh -c {shlex.quote(remote_script(command))}"


def relay(ssh_argv: Sequence[str]) -> int:
    proc = subprocess.Popen(list(ssh_argv), stdin=subprocess.PIPE)

    def stop(_signum: int, _frame: object) -> None:
        if proc.stdin is not None and not proc.stdin.closed:
            proc.stdin.close()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return proc.wait()


if __name__ == "__main__":
    sys.exit(relay(sys.argv[1:]))
