"""`hwprov scan` and `hwprov watch`: the inventory, once or as it changes."""

from __future__ import annotations

import argparse
import json
import queue
import signal
import sys
import time
from collections.abc import Iterable
from typing import TextIO

from hwprov import threads
from hwprov.commands.options import Subparsers, json_option, plugin_options
from hwprov.commands.output import print_problems
from hwprov.hardware.session import Session
from hwprov.hardware.udev import next_burst, resync_reason
from hwprov.planning.build import refusal_note
from hwprov.records import Hardware, HardwareEvent, MonitorLost, UdevEvent, UntrustedUevent
from hwprov.schemas import Schema, versioned


def register(sub: Subparsers) -> None:
    scan = sub.add_parser(
        "scan",
        help="list attached hardware as the plugins classify it",
        description="Enumerate udev (coldplug), classify every device through the plugins, "
        "probe I2C buses for sensors, and print the inventory.",
        epilog="example: hwprov scan --json | jq '.hardware[] | select(.kind==\"i2c\")'",
    )
    _common(scan)
    scan.set_defaults(func=run_scan)
    watch = sub.add_parser(
        "watch",
        help="stream hardware being added and removed",
        description="Print one line per hardware change (+ added, - removed, ~ changed) "
        "as udev reports it, until interrupted. SIGHUP, or the udev monitor failing, "
        "enumerates again and prints what differs.",
        epilog="example: hwprov watch --json --initial",
    )
    _common(watch)
    watch.add_argument(
        "--initial", action="store_true", help="first print what is already attached"
    )
    watch.add_argument("--source", choices=("udev", "kernel"), help="udev netlink source")
    watch.set_defaults(func=run_watch)


def _common(parser: argparse.ArgumentParser) -> None:
    json_option(parser)
    plugin_options(parser)


def open_session(args: argparse.Namespace) -> Session:
    """The session the plugin options ask for (--disable, --no-probe)."""
    return Session.open(args.disable or (), probe=not args.no_probe)


def scanned(args: argparse.Namespace) -> Session:
    """A session with what is attached now already loaded."""
    session = open_session(args)
    session.coldplug()
    return session


def _summary(hw: Hardware) -> str:
    parts = [f"{k}={v}" for k, v in hw.details.items() if k not in ("by_path",)]
    parts += [f"{p.address}:{p.model or p.state}" for p in hw.probed]
    if hw.explicit_only:
        parts.append("explicit-only")
    if hw.owner:
        parts.append(f"owner='{hw.owner}'")
    return " ".join(parts)


def print_table(hardware: Iterable[Hardware], out: TextIO) -> None:
    rows = [("KIND", "NAME", "NODE", "DETAILS")]
    rows += [(h.kind, h.name, h.node or "-", _summary(h)) for h in hardware]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)))
        out.write(f"  {row[3]}\n")


def run_scan(args: argparse.Namespace) -> int:
    session = scanned(args)
    if args.json:
        doc = versioned(
            Schema.SCAN,
            {
                "hardware": [h.to_json() for h in session.hardware()],
                "problems": [
                    {"plugin": p.plugin, "where": p.where, "error": p.error}
                    for p in session.problems
                ],
                "refused": [
                    {"hardware": r.hardware.to_json(), "reason": r.reason}
                    for r in session.refused()
                ],
            },
        )
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_table(session.hardware(), sys.stdout)
        print_problems(session.problems)
        for note in map(refusal_note, session.refused()):
            print(f"warning: {note}", file=sys.stderr)
    return 0


def _emit(change: HardwareEvent, as_json: bool) -> None:
    hw = change.hardware
    if as_json:
        doc = {"time": time.time(), "action": str(change.action), "hardware": hw.to_json()}
        line = json.dumps(versioned(Schema.WATCH, doc))
    else:
        mark = {"add": "+", "remove": "-", "change": "~"}.get(change.action, "?")
        line = f"{mark} {hw.kind} {hw.name} {hw.node or '-'} {_summary(hw)}".rstrip()
    print(line, flush=True)


def run_watch(args: argparse.Namespace) -> int:
    session = open_session(args)
    wake: queue.SimpleQueue[object] = queue.SimpleQueue()
    monitor = session.monitor(events=wake, source=args.source)
    # The main thread blocks on the queue (idle costs nothing): the handlers put on it.
    signal.signal(signal.SIGTERM, lambda *_: wake.put(_STOP))
    signal.signal(signal.SIGINT, lambda *_: wake.put(_STOP))
    signal.signal(signal.SIGHUP, lambda *_: wake.put(_RESYNC))
    # Listen before enumerating, so nothing plugged in between is missed.
    monitor.start()
    try:
        with threads.SignalWake(lambda: wake.put(_NUDGE)):
            initial = session.coldplug(monitor)
            print_problems(session.problems)
            if args.initial:
                for change in initial:
                    _emit(change, args.json)
            print("# watching", file=sys.stderr, flush=True)
            while True:
                threads.take_signals()  # whatever left them blocked, the wait takes them
                burst = next_burst(wake) or []
                if _STOP in burst:
                    return 0
                lost = next((i for i in burst if isinstance(i, MonitorLost)), None)
                for u in (i for i in burst if isinstance(i, UntrustedUevent)):
                    print(f"# uevent refused: {u.reason} ({u.sender})", file=sys.stderr)
                reason = resync_reason(burst, _RESYNC in burst)
                if reason is not None:
                    # UdevError when no monitor opens again: exit 2, for whoever runs this.
                    if lost is not None:
                        monitor = monitor.reopen(lost.reason)
                    changes = session.resync(monitor)
                    print(f"# resync: {reason}", file=sys.stderr, flush=True)
                else:
                    changes = session.inventory.apply(e for e in burst if isinstance(e, UdevEvent))
                for change in changes:
                    _emit(change, args.json)
    finally:
        monitor.stop()


_STOP, _RESYNC, _NUDGE = "stop", "resync", "signal"
