"""`hwprov demo`: the whole flow on the embedded default board (hwprov/sandbox/demo.py)."""

from __future__ import annotations

import argparse

from hwprov.commands.options import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "demo",
        help="the demo: a simulated Raspberry Pi 4, a private engine, a sensor plugged in",
        description="Start a private Docker engine and a simulated Raspberry Pi 4, create a "
        "small compose project, and show hwprov giving each service its hardware.",
        epilog="example: hwprov demo",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from hwprov.sandbox.demo import run  # the engine and docker imports only when asked

    return run()
