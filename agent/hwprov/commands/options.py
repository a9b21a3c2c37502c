"""The options several commands share, defined once so they read and behave the same."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TypeAlias

from hwprov.records import GrantMode, UnplugPolicy

# What each command module's register(sub) receives (a string: not subscriptable at run time).
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def plugin_options(parser: argparse.ArgumentParser, probe: bool = True) -> None:
    """--disable (repeatable; None when not given, so settings files can fill it) and,
    unless `probe` is false, --no-probe."""
    parser.add_argument("--disable", action="append", metavar="PLUGIN", help="skip a plugin")
    if probe:
        parser.add_argument("--no-probe", action="store_true", help="do not probe I2C buses")


def compose_options(
    parser: argparse.ArgumentParser, default: Path | None = Path("docker-compose.yml")
) -> None:
    """-f and -p; `default=None` leaves the file to the daemon's settings (same default)."""
    help_file = "the compose file (default docker-compose.yml)"
    parser.add_argument("-f", "--file", type=Path, default=default, help=help_file)
    parser.add_argument("-p", "--project-name", help="compose project (default: the folder name)")


def json_option(parser: argparse.ArgumentParser, what: str = "machine-readable output") -> None:
    parser.add_argument("--json", action="store_true", help=what)


def grant_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--grant",
        type=GrantMode,
        choices=list(GrantMode),
        default=None,
        help="how services get their devices: recreate the container with them (default: "
        "kept by a plain docker start), or live into the running container (no restart; "
        "granted again on every start); the label io.hwprov.grant overrides this per service",
    )


def unplug_option(
    parser: argparse.ArgumentParser, default: UnplugPolicy | None = UnplugPolicy.RECREATE
) -> None:
    parser.add_argument(
        "--on-unplug",
        type=UnplugPolicy,
        choices=list(UnplugPolicy),
        default=default,
        help="when a service's required hardware goes: recreate it without the device "
        "(default), or keep it stopped until the hardware is back; the label "
        "io.hwprov.on-unplug overrides this per service",
    )


def status_file_option(parser: argparse.ArgumentParser) -> None:
    """--status-file; None when not given, so `run`'s settings (and `status`'s
    $HWPROV_STATUS_FILE) can fill it."""
    parser.add_argument(
        "--status-file",
        type=Path,
        metavar="PATH",
        help="where hwprov run keeps its status (default: $HWPROV_STATUS_FILE, else "
        "/run/hwprov/status.json)",
    )
