"""The uevents a simulated board sends, each with the time it arrived, one line each:
"<time_ns> <action> <sys_path>". Started under the simulator's preload and UMOCKDEV_DIR, it
hears exactly what hwprov hears, so "from the uevent" means the uevent, not the request that
made the simulator build the device (which takes it tens of milliseconds for a USB adapter).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from bench.lab import REPO
from bench.stamps import Stamps

if TYPE_CHECKING:
    from lab.simdaemon import SimDaemon


class UeventLog:
    def __init__(self, sim_pid: int, umockdev_dir: str, *subsystems: str) -> None:
        env = {**os.environ, "UMOCKDEV_DIR": umockdev_dir}
        # In the simulator's network namespace, where the datagram queue is long: umockdev
        # aborts a sender that gets far ahead of any listener, this one included.
        self.proc = subprocess.Popen(
            ["nsenter", f"--net=/proc/{sim_pid}/ns/net", "--", "umockdev-wrapper",
             sys.executable, "-m", "bench.uevent_log", *subsystems],
            env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError("the uevent listener did not start")
        self.stamps = Stamps(self.proc.stdout, "bench-uevents")

    @classmethod
    def of(cls, daemon: SimDaemon, *subsystems: str) -> UeventLog:
        """A listener on the board of a running `hwprov sim run`, started now."""
        status = daemon.sim("status")
        return cls(int(status["pid"]), status["env"]["UMOCKDEV_DIR"], *subsystems)

    def wait(self, action: str, path_part: str, after_ns: int, timeout: float = 30.0) -> int:
        def match(text: str) -> bool:
            got, _, path = text.partition(" ")
            return got == action and path_part in path

        return self.stamps.wait(match, after_ns, timeout)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if hasattr(self, "stamps"):
            self.stamps.join()

    def __enter__(self) -> UeventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# umockdev names a listener's socket after its fd number ($UMOCKDEV_DIR/event<fd>), so two
# processes listening on the same fd number take each other's place; hwprov's is a low one.
FD_FLOOR = 200


def main() -> int:
    import pyudev

    # dup, not open: the preload tracks each /dev file it opens in a 50-slot table and
    # aborts the process when it is full.
    held = [os.open("/", os.O_RDONLY)]
    while held[-1] < FD_FLOOR:
        held.append(os.dup(held[0]))
    monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source="udev")
    for subsystem in sys.argv[1:]:
        monitor.filter_by(subsystem=subsystem)
    monitor.start()
    print("ready", flush=True)
    for device in iter(monitor.poll, None):
        print(time.time_ns(), device.action, device.sys_path, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
