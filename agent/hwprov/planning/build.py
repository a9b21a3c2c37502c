"""Compose project + attached hardware -> plan: the glue between the loader, the inventory
and the pure planner (the only I/O here is looking at the paths `devices:` names)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from hwprov.compose.model import Project
from hwprov.hardware.nodeview import inspect_paths
from hwprov.planning.plan import Plan
from hwprov.planning.planner import make_plan
from hwprov.planning.requirements import requirements_of
from hwprov.plugins.host import PluginHost
from hwprov.records import Hardware


def project_name(compose_file: Path, declared: str | None = None) -> str:
    """As docker compose names it: `name:`, else COMPOSE_PROJECT_NAME, else the folder name."""
    raw = declared or os.environ.get("COMPOSE_PROJECT_NAME") or compose_file.resolve().parent.name
    return re.sub(r"[^a-z0-9_-]", "", raw.lower())


def build_plan(project: Project, hardware: Sequence[Hardware], host: PluginHost) -> Plan:
    requirements = [requirements_of(s, project.source) for s in project.services]
    nodes = inspect_paths(n.host for r in requirements for n in r.nodes)
    return make_plan(project.source, requirements, hardware, host.grant, nodes, project.warnings)
