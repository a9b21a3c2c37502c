"""Reading compose files: the Compose v2.1 subset the balena supervisor implements, as real
files use it, into frozen records with the line each came from (see docs/compose.md)."""

from hwprov.compose.loader import load_project, load_project_text
from hwprov.compose.model import DeviceMapping, FrozenMap, Project, Service

__all__ = ["DeviceMapping", "FrozenMap", "Project", "Service", "load_project", "load_project_text"]
