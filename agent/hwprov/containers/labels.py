"""Who owns a container, read from its labels: docker compose, or the balena supervisor.

The one place that knows both conventions, so finding a service's containers, following the
engine's start events and recovering a swap agree on which containers are the project's.
"""

from __future__ import annotations

from collections.abc import Mapping

COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
BALENA_SERVICE = "io.balena.service-name"
# Set on every container the supervisor creates: it reverts Devices/CapAdd changes to them.
BALENA_SUPERVISED = "io.balena.supervised"


def service_of(labels: Mapping[str, str] | None, project: str | None) -> str | None:
    """The compose service a container belongs to, if it is one of this project's."""
    labels = labels or {}
    if COMPOSE_SERVICE in labels:
        if project and labels.get(COMPOSE_PROJECT) != project:
            return None
        return labels[COMPOSE_SERVICE]
    return labels.get(BALENA_SERVICE)


def compose_owned(labels: Mapping[str, str] | None, project: str | None) -> bool:
    """Created by docker compose (for this project, when one is named): hwprov may swap it."""
    labels = labels or {}
    if project:
        return labels.get(COMPOSE_PROJECT) == project
    return COMPOSE_SERVICE in labels


def supervised(labels: Mapping[str, str] | None) -> bool:
    return BALENA_SUPERVISED in (labels or {})
