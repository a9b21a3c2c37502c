"""`hwprov sim run`: a command inside a simulated board, with a control socket beside it.

Outer process: re-executes itself in a private network namespace (where it may raise
net.unix.max_dgram_qlen, since umockdev 0.17.16 aborts a uevent sender that gets ~10 events
ahead of a slow monitor) and under the umockdev preload. Inner process: builds the testbed,
serves the control socket, runs the command, cleans everything up.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from hwprov import threads
from hwprov.errors import MissingDependency, SimulatorError
from hwprov.sim.board import Board
from hwprov.sim.realnodes import RealNodes, host_char_majors, remap_majors

QLEN = "/proc/sys/net/unix/max_dgram_qlen"
PACE_S = 0.002


def under_preload() -> bool:
    return "libumockdev-preload" in os.environ.get("LD_PRELOAD", "")


def require_simulator() -> None:
    """Say in one line what to install, before any re-exec or engine start, where the
    simulator cannot run: its GObject bindings first, since that message names everything."""
    from hwprov.sim import umockdev  # raises MissingDependency without the bindings

    if shutil.which("umockdev-wrapper") is None:
        raise MissingDependency(
            f"the simulator needs umockdev-wrapper: apt-get install {umockdev.UMOCKDEV_DEBS}"
        )


def outer_command(argv: list[str]) -> list[str]:
    """The command line that puts this run in its own netns and under the preload."""
    require_simulator()
    inner = ["umockdev-wrapper", sys.executable, "-m", "hwprov", "sim", "run", "--inner", *argv]
    if os.geteuid() == 0 and shutil.which("unshare"):
        return ["unshare", "--net", "--", *inner]
    return inner


def raise_qlen() -> bool:
    try:
        Path(QLEN).write_text("100000")
        return True
    except OSError:
        return False  # not in a namespace of our own: pace instead


def run_inner(board: Board, command: list[str], control: str | None, kernel_only: bool) -> int:
    from hwprov.sim.control import ControlServer
    from hwprov.sim.testbed import SimTestbed

    paced = not (os.geteuid() == 0 and raise_qlen())
    workdir = Path(tempfile.mkdtemp(prefix="hwprov-sim."))
    remap = remap_majors(
        (d.major for d in board.devices if d.major is not None),
        host_char_majors(Path("/proc/devices").read_text()),
    )
    nodes = RealNodes(workdir / "nodes", remap)
    bed = SimTestbed(board, nodes, kernel_only=kernel_only, pace_s=PACE_S if paced else 0.0)
    control_path = Path(control) if control else workdir / "control.sock"
    child: subprocess.Popen[bytes] | None = None

    def handle(req: dict[str, Any]) -> dict[str, Any]:
        op = req["op"]
        if op == "plug":
            return {"nodes": bed.plug(str(req["id"]))}
        if op == "unplug":
            return {"nodes": bed.unplug(str(req["id"]))}
        if op == "status":
            return {**bed.status(), "env": env, "pid": os.getpid()}
        if op == "i2c-add":
            bed.i2c_add(int(req["bus"]), int(str(req["address"]), 0), str(req["model"]))
            return {}
        if op == "i2c-remove":
            bed.i2c_remove(int(req["bus"]), int(str(req["address"]), 0))
            return {}
        raise SimulatorError(f"unknown op '{op}'")

    env = {
        **os.environ,
        "UMOCKDEV_DIR": bed.root,  # not in os.environ: umockdev sets it in C only
        "HWPROV_SIM_CONTROL": str(control_path),
        "HWPROV_SIM_NODES": str(nodes.folder),
        "HWPROV_SIM_BOARD": board.board,
    }
    server = ControlServer(control_path, handle)
    server.start()

    def forward(signum: int, _frame: object) -> None:
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    forwarded = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)  # SIGHUP: `hwprov run` reloads
    old = {s: signal.signal(s, forward) for s in forwarded}
    try:
        child = subprocess.Popen(command, env=env)
        code = threads.wait_for(child)
        return 128 - code if code < 0 else code  # killed by signal N: 128+N, as a shell says
    except FileNotFoundError as err:
        raise SimulatorError(f"cannot run {command[0]}: {err.strerror}") from err
    finally:
        # Signals stay forwarded (to a child that is gone) until the cleanup is done: a late
        # SIGTERM must not kill this process halfway and leave the testbed behind.
        server.stop()
        bed.close()
        shutil.rmtree(workdir, ignore_errors=True)
        for s, handler in old.items():
            signal.signal(s, handler)
