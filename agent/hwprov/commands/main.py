"""The `hwprov` command: one sub-command per module, each registering its own parser."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from hwprov import __version__
from hwprov.errors import HwprovError

# Each module exposes register(subparsers) and sets `func` on its parser.
# Imported lazily by name so that `hwprov scan` does not pay for the simulator's GObject import.
COMMAND_MODULES = tuple(
    f"hwprov.commands.{name}"
    for name in ("inventory", "plan", "migrate", "cdi", "engine", "run", "status", "sim", "demo")
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hwprov",
        description="Give containers exactly the hardware they need, never privileged.",
    )
    parser.add_argument("--version", action="version", version=f"hwprov {__version__}")
    parser.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        default=os.environ.get("HWPROV_LOG_LEVEL", "warning").lower(),
        help="the least severe log records shown (default warning, or $HWPROV_LOG_LEVEL); "
        "`hwprov run` prints them as `log` decision lines",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def set_log_level(name: str) -> None:
    """Records from `name` up reach the handlers: `hwprov run`'s decision lines, or, for the
    other commands (which install no handler), Python's last-resort stderr handler, whose own
    WARNING threshold would otherwise hide info and debug whatever the root allows."""
    level = logging.getLevelNamesMapping()[name.upper()]
    logging.getLogger().setLevel(level)
    if logging.lastResort is not None:
        logging.lastResort.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.log_level not in LOG_LEVELS:  # from $HWPROV_LOG_LEVEL: choices check only the CLI
        parser.error(f"HWPROV_LOG_LEVEL: expected one of {', '.join(LOG_LEVELS)}")
    set_log_level(args.log_level)
    try:
        return int(args.func(args) or 0)
    except HwprovError as err:
        print(f"hwprov: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
