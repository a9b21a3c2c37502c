"""Compose project + attached hardware -> plan: the glue between the loader, the inventory
and the pure planner (the only I/O here is looking at the paths `devices:` names)."""

from __future__ import annotations

from collections.abc import Sequence

from hwprov.compose.model import Project
from hwprov.hardware.nodeview import inspect_paths
from hwprov.planning.plan import Plan
from hwprov.planning.planner import make_plan
from hwprov.planning.requirements import requirements_of
from hwprov.plugins.host import PluginHost
from hwprov.records import Hardware


def build_plan(project: Project, hardware: Sequence[Hardware], host: PluginHost) -> Plan:
    requirements = [requirements_of(s, project.source) for s in project.services]
    nodes = inspect_paths(n.host for r in requirements for n in r.nodes)
    return make_plan(project.source, requirements, hardware, host.grant, nodes, project.warnings)
