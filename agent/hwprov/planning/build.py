"""Compose project + attached hardware -> plan: the glue between the loader, the inventory
and the pure planner (the only I/O here is looking at the paths `devices:` names)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hwprov.compose.model import Project
from hwprov.hardware.nodeview import inspect_paths
from hwprov.planning.plan import Plan
from hwprov.planning.planner import make_plan
from hwprov.planning.requirements import Requirements, requirements_of
from hwprov.plugins.host import PluginHost
from hwprov.records import Hardware, Refused


def refusal_note(refused: Refused) -> str:
    hw = refused.hardware
    return f"{hw.kind} {hw.name} ({hw.id}) is never mapped: {refused.reason}"


def requirements(project: Project, host: PluginHost) -> list[Requirements]:
    """What each service asks for; ComposeError for labels the plugins cannot honour, so a
    daemon checks a reloaded file with this before it lets go of the last good one."""
    kinds = host.kinds()
    return [requirements_of(s, project.source, kinds) for s in project.services]


def build_plan(
    project: Project,
    hardware: Sequence[Hardware],
    host: PluginHost,
    refused: Iterable[Refused] = (),
) -> Plan:
    """The plan; `refused` (hardware kept out of the inventory for its node) is said in it."""
    reqs = requirements(project, host)
    nodes = inspect_paths(n.host for r in reqs for n in r.nodes)
    warnings = [*project.warnings, *(w for r in reqs for w in r.warnings)]
    warnings += [refusal_note(r) for r in refused]
    return make_plan(project.source, reqs, hardware, host.grant, nodes, warnings)
