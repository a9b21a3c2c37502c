"""`hwprov plan` and `hwprov apply`: what each service needs, and making it so."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import TextIO

from hwprov.commands.inventory import scanned
from hwprov.commands.options import (
    Subparsers,
    compose_options,
    json_option,
    plugin_options,
    unplug_option,
)
from hwprov.commands.output import print_outcome
from hwprov.compose.loader import load_project, project_name
from hwprov.compose.model import Project
from hwprov.containers import cgroups
from hwprov.containers.engine import Engine, HostPaths
from hwprov.containers.reconciler import Reconciler
from hwprov.planning.build import build_plan
from hwprov.planning.plan import Plan, ServicePlan
from hwprov.records import GrantMode
from hwprov.schemas import Schema, versioned

# apply's exit codes: what happened, for scripts and labs
EXIT_OK = 0  # everything matches the plan (changed or not)
EXIT_UNMET = 3  # applied, but required hardware is absent
EXIT_FAILED = 4  # a recreate failed and was rolled back


def register(sub: Subparsers) -> None:
    plan = sub.add_parser(
        "plan",
        help="show what each compose service needs from the attached hardware",
        description="Read a compose file, scan the hardware, and print for every service the "
        "devices, capabilities, groups, mounts and network mode it needs, with a reason for "
        "each line, and what is unmet. Nothing is changed.",
        epilog="example: hwprov plan -f docker-compose.yml --json",
    )
    compose_options(plan)
    plugin_options(plan)
    json_option(plan)
    plan.set_defaults(func=run_plan)
    apply = sub.add_parser(
        "apply",
        help="make the containers match the plan (one pass)",
        description="Plan, then recreate each service container whose hardware settings differ, "
        "safely, never privileged. Exit code: 0 done, 3 required hardware unmet, "
        "4 a recreate failed and was rolled back, 2 error.",
        epilog="example: hwprov apply -f docker-compose.yml --dry-run",
    )
    compose_options(apply)
    plugin_options(apply)
    apply.add_argument(
        "--dry-run", action="store_true", help="say what would change, change nothing"
    )
    json_option(apply, "machine-readable outcomes")
    unplug_option(apply)
    apply.set_defaults(func=run_apply)


def planned(args: argparse.Namespace) -> tuple[Project, Plan]:
    project = load_project(args.file)
    session = scanned(args)
    plan = build_plan(project, session.hardware(), session.host, session.refused())
    return project, live_fallbacks(plan, cgroups.host())


def live_fallbacks(plan: Plan, host: cgroups.CgroupHost) -> Plan:
    """A note on each service that asks for live grants where this host can give none: it
    will be recreated instead (containers/reconciler.py does it, and says so again)."""
    if host.mechanism is not cgroups.Mechanism.NONE:
        return plan
    note = f"io.hwprov.grant is live, but {host.describe()}: it will be recreated instead"
    services = tuple(
        dataclasses.replace(s, notes=(*s.notes, note)) if s.grant == GrantMode.LIVE else s
        for s in plan.services
    )
    return dataclasses.replace(plan, services=services)


def print_plan(plan: Plan, out: TextIO) -> None:
    for warning in plan.warnings:
        out.write(f"warning: {warning}\n")
    for s in plan.services:
        _print_service(s, out)


def _print_service(s: ServicePlan, out: TextIO) -> None:
    head = f"service {s.service}"
    if s.was_privileged:
        head += "  (privileged: true -> not privileged)"
    if not s.managed:
        head += "  (not managed)"
    out.write(head + "\n")
    lines = [(f"+ device {d.host} -> {d.container} {d.permissions}", d.reason) for d in s.devices]
    lines += [(f"+ cap {c.value}", c.reason) for c in s.capabilities]
    lines += [(f"+ group {g.value}", g.reason) for g in s.group_add]
    if s.network_mode:
        lines.append((f"~ network_mode {s.network_mode.value}", s.network_mode.reason))
    ro = {True: ":ro", False: ""}
    lines += [(f"+ mount {m.source}:{m.target}{ro[m.read_only]}", m.reason) for m in s.mounts]
    lines += [(f"+ env {e.value}", e.reason) for e in s.env]
    lines += [(f"! unmet {u.what}{' (optional)' if u.optional else ''}", u.reason) for u in s.unmet]
    lines += [("? note", n) for n in s.notes]
    if not lines:
        lines.append(("  nothing", "no hardware asked for"))
    width = max(len(text) for text, _ in lines)
    for text, reason in lines:
        out.write(f"  {text.ljust(width)}  # {reason}\n")


def run_plan(args: argparse.Namespace) -> int:
    _, plan = planned(args)
    if args.json:
        json.dump(versioned(Schema.PLAN, plan.to_json()), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_plan(plan, sys.stdout)
    return 0


def run_apply(args: argparse.Namespace) -> int:
    project, plan = planned(args)
    engine = Engine()
    try:
        engine.ping()
        name = args.project_name or project_name(args.file, project.name)
        reconciler = Reconciler(
            engine,
            project=name,
            host_path=HostPaths.from_environment(),
            on_unplug=args.on_unplug,
        )
        outcomes = reconciler.reconcile(
            plan, project.start_order(), dry_run=args.dry_run, depends=project.dependencies()
        )
    finally:
        engine.close()
    for outcome in outcomes:
        print_outcome(outcome, args.json)
    if any(o.action.failed for o in outcomes):
        return EXIT_FAILED
    if any(u for s in plan.services for u in s.unmet if not u.optional):
        return EXIT_UNMET
    return EXIT_OK
