"""`hwprov engine`: a private Docker engine to try hwprov with, leaving the host's alone.

The same engine the tests and the demo use (hwprov/sandbox/dockerd.py): its own socket,
data-root and network namespace under one folder, stopped by its pid; the offline busybox image is
imported so a project can start with no registry.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hwprov.commands.options import Subparsers
from hwprov.sandbox.dockerd import PrivateEngine
from hwprov.sandbox.images import ensure_busybox


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "engine",
        help="start or stop a private Docker engine (for trying hwprov, tests, labs)",
        description="A dockerd with its own socket, data-root and network namespace under "
        "FOLDER, with the offline image hwprov/busybox:latest imported.",
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    start = verbs.add_parser(
        "start",
        help="start it and print the DOCKER_HOST line to use it",
        epilog="example: hwprov engine start /tmp/hwprov-engine",
    )
    start.add_argument("folder", type=Path, help="a short path: socket paths must fit 104 bytes")
    start.set_defaults(func=run_start)
    stop = verbs.add_parser(
        "stop",
        help="stop it (its containers are removed first)",
        description="Stop the engine under FOLDER. Every container on it is removed first: "
        "this engine is a sandbox, and without live-restore dockerd would stop them all anyway "
        "(a PID 1 that ignores SIGTERM holding the stop for 10 s each). Images and volumes "
        "stay in FOLDER/data for the next start.",
        epilog="example: hwprov engine stop /tmp/hwprov-engine",
    )
    stop.add_argument("folder", type=Path)
    stop.set_defaults(func=run_stop)


def run_start(args: argparse.Namespace) -> int:
    engine = PrivateEngine(args.folder)
    engine.start()
    client = engine.client()
    try:
        ensure_busybox(client)
    finally:
        client.close()
    print(f"export DOCKER_HOST={engine.base_url}")
    return 0


def run_stop(args: argparse.Namespace) -> int:
    PrivateEngine(args.folder).stop()
    return 0
