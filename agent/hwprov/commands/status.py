"""`hwprov status`: is the agent up, what it sees, where each service stands and why.

It reads the file `hwprov run` keeps (daemon/statusfile.py) and asks nothing of the agent, so
it answers at once even when the agent is wedged: what a container HEALTHCHECK needs. Exit
code 0 when the agent is up, 1 when it is down or stale (Docker's "unhealthy"; its health
checks reserve 2, so a status file that cannot be read is "down" too, with the reason).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from hwprov.commands.options import Subparsers, json_option, status_file_option
from hwprov.daemon import statusfile
from hwprov.daemon.state import AgentState, Health, StatusError, Verdict, judge
from hwprov.schemas import Schema, versioned

log = logging.getLogger(__name__)

EXIT_UP, EXIT_DOWN = 0, 1


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "status",
        help="is the agent up; the hardware it sees; each service granted, held or failed, and why",
        description="Read the status file `hwprov run` renews at least every 10 s and say "
        "whether the agent is up (its process lives and its heartbeat is fresh), the hardware "
        "it sees and where each service stands. Exit code 0 up, 1 down or stale: a container "
        "HEALTHCHECK (deploy/Dockerfile).",
        epilog="example: hwprov status --json",
    )
    status_file_option(p)
    json_option(p, "the status as JSON (docs/json.md)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = args.status_file or Path(os.environ.get("HWPROV_STATUS_FILE") or statusfile.DEFAULT)
    log.debug("reading the status of hwprov run from %s", path)
    state: AgentState | None = None
    try:
        state = statusfile.read(path)
        why = "" if state else f"no status file at {path} (is hwprov run running?)"
    except StatusError as err:
        why = str(err)
    verdict = judge(state, time.time(), statusfile.alive(state) if state else None, why)
    if args.json:
        json.dump(as_json(verdict, state), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(as_text(verdict, state, time.time()))
    return EXIT_UP if verdict.health == Health.UP else EXIT_DOWN


def as_json(verdict: Verdict, state: AgentState | None) -> dict[str, Any]:
    """The agent's own record, with the reader's verdict in front."""
    doc = {
        "health": str(verdict.health),
        "reason": verdict.reason,
        "heartbeat_age_s": verdict.heartbeat_age_s,
    }
    return versioned(Schema.STATUS, {**doc, **(state.to_json() if state else {})})


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def as_text(verdict: Verdict, state: AgentState | None, now: float) -> str:
    if state is None:
        return f"hwprov: {verdict.health}: {verdict.reason}\n"
    head = f"hwprov: {verdict.health}"
    head += f" (pid {state.pid}, version {state.version}, up {_span(now - state.started)})"
    lines = [head]
    if verdict.reason:
        lines.append(f"  {verdict.reason}")
    beat = f"heartbeat {_span(now - state.heartbeat)} ago"
    passed = f"last pass {_span(now - state.last_pass)} ago" if state.last_pass else "no pass yet"
    lines.append(f"project {state.project} ({state.compose_file}); {beat}; {passed}")
    if state.engine_error:
        lines.append(f"engine: unreachable: {state.engine_error}")
    if state.metrics:
        lines.append(f"metrics: {state.metrics}")
    lines.append(f"hardware ({len(state.hardware)}):")
    lines += [f"  {h.kind:<9} {h.node or '-':<14} {h.id}" for h in state.hardware]
    lines.append(f"services ({len(state.services)}):")
    width = max((len(s.service) for s in state.services), default=0)
    for s in state.services:
        why = s.reason
        if s.attempts:
            why = f"{'gave up' if s.gave_up else 'retrying'} after {s.attempts}: {why}"
        lines.append(f"  {s.service:<{width}}  {s.standing:<8}  {why}".rstrip())
    return "\n".join(lines) + "\n"
