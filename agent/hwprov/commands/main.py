"""The `hwprov` command: one sub-command per module, each registering its own parser."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from hwprov import __version__
from hwprov.errors import HwprovError

# Each module exposes register(subparsers) and sets `func` on its parser.
# Imported lazily by name so that `hwprov scan` does not pay for the simulator's GObject import.
COMMAND_MODULES = tuple(
    f"hwprov.commands.{name}"
    for name in ("inventory", "plan", "migrate", "cdi", "engine", "run", "sim", "demo")
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hwprov",
        description="Give containers exactly the hardware they need, never privileged.",
    )
    parser.add_argument("--version", action="version", version=f"hwprov {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HwprovError as err:
        print(f"hwprov: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
