"""`hwprov sim`: run commands on simulated boards, and plug and unplug their devices."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys

from hwprov import threads
from hwprov.commands.options import Subparsers
from hwprov.errors import SimulatorError
from hwprov.schemas import Schema, versioned
from hwprov.sim.board import load_board
from hwprov.sim.control import control_path, request
from hwprov.sim.paths import fixtures_dir

DEFAULT_BOARD = "rpi4b"


def register(sub: Subparsers) -> None:
    sim = sub.add_parser(
        "sim",
        help="run a command on a simulated board (umockdev)",
        description="Simulated boards from hw-fixtures/: pyudev, sysfs, /dev "
        "and I2C in the command see the board.",
    )
    verbs = sim.add_subparsers(dest="verb", required=True, metavar="VERB")
    run = verbs.add_parser(
        "run",
        help="run CMD on a board",
        epilog="example: hwprov sim run --board rpi4b -- hwprov scan",
    )
    run.add_argument("--board", default=DEFAULT_BOARD, help="fixture name or board file")
    run.add_argument(
        "--kernel-only",
        action="store_true",
        help="no udev database: drop ID_* properties and symlinks, as in a container",
    )
    run.add_argument("--control", help="control socket path (default: in the sim's temp folder)")
    run.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    run.set_defaults(func=_run)
    for verb, text in (("plug", "plug a unit in"), ("unplug", "unplug a unit")):
        p = verbs.add_parser(verb, help=text, epilog=f"example: hwprov sim {verb} ftdi")
        p.add_argument("id", help="the unit's id in the board file")
        _control(p)
        p.set_defaults(func=lambda a, v=verb: _print(request(control_path(a.control), v, id=a.id)))
    status = verbs.add_parser(
        "status",
        help="units, I2C chips, nodes of a running sim",
        epilog="example: hwprov sim status",
    )
    _control(status)
    status.set_defaults(func=lambda a: _print(request(control_path(a.control), "status")))
    add = verbs.add_parser(
        "i2c-add",
        help="a sensor appears on a bus",
        epilog="example: hwprov sim i2c-add 1 0x77 bmp280",
    )
    add.add_argument("bus", type=int)
    add.add_argument("address")
    add.add_argument("model")
    _control(add)
    add.set_defaults(
        func=lambda a: _print(
            request(control_path(a.control), "i2c-add", bus=a.bus, address=a.address, model=a.model)
        )
    )
    rm = verbs.add_parser(
        "i2c-remove", help="a sensor leaves a bus", epilog="example: hwprov sim i2c-remove 1 0x77"
    )
    rm.add_argument("bus", type=int)
    rm.add_argument("address")
    _control(rm)
    rm.set_defaults(
        func=lambda a: _print(
            request(control_path(a.control), "i2c-remove", bus=a.bus, address=a.address)
        )
    )
    boards = verbs.add_parser(
        "boards", help="list the fixture boards", epilog="example: hwprov sim boards"
    )
    boards.set_defaults(func=_boards)
    check = verbs.add_parser(
        "check",
        help="validate a board file",
        epilog="example: hwprov sim check hw-fixtures/rpi4b.yaml",
    )
    check.add_argument("file")
    check.set_defaults(func=_check)


def _control(p: argparse.ArgumentParser) -> None:
    p.add_argument("--control", help="control socket (default: $HWPROV_SIM_CONTROL)")


def _print(reply: dict[str, object]) -> int:
    reply.pop("ok", None)
    reply.pop("env", None)
    body = json.loads(json.dumps(reply, sort_keys=True))  # sorted all the way down
    print(json.dumps(versioned(Schema.SIM, body), indent=1))
    return 0


def _run(args: argparse.Namespace) -> int:
    command = [c for c in args.command if c != "--"] if args.command[:1] == ["--"] else args.command
    if not command:
        raise SimulatorError("nothing to run: hwprov sim run [--board B] -- CMD ARGS...")
    board = load_board(args.board)  # a broken board fails here, before any re-exec
    if not args.inner:
        from hwprov.sim.runner import outer_command

        argv = [
            "--board",
            board.source,
            *(["--kernel-only"] if args.kernel_only else []),
            *(["--control", args.control] if args.control else []),
            "--",
            *command,
        ]
        # unshare and umockdev-wrapper exec, so this child is the inner sim: pass signals on,
        # or a terminated outer process would orphan the testbed.
        inner = subprocess.Popen(outer_command(argv))
        forward = lambda signum, _frame: inner.send_signal(signum)  # noqa: E731
        forwarded = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        old = {s: signal.signal(s, forward) for s in forwarded}
        try:
            return threads.wait_for(inner)
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
    from hwprov.sim.runner import run_inner

    return run_inner(board, command, args.control, args.kernel_only)


def _boards(args: argparse.Namespace) -> int:
    for path in sorted(fixtures_dir().glob("*.yaml")):
        board = load_board(str(path))
        print(f"{board.board:14} {board.name}  (units: {', '.join(board.units) or 'none'})")
    return 0


def _check(args: argparse.Namespace) -> int:
    board = load_board(args.file)
    for warning in board.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{args.file}: ok: {board.name}, {len(board.devices)} devices, units {list(board.units)}")
    return 0
