"""What a compose service asks of the hardware, read from the loaded compose model.

This is the only module of the planner side that knows the compose records; the planner
sees `Requirements`.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwprov.compose.model import Service
from hwprov.errors import ComposeError
from hwprov.planning.matchlabels import (
    GRANT_LABEL,
    ON_UNPLUG_LABEL,
    HardwareMatch,
    LabelSyntaxError,
    enabled,
    grant_mode,
    match_labels,
    misspelt_labels,
    on_unplug,
    parse_match,
    unknown_kind,
)
from hwprov.plugins.host import KnownKinds
from hwprov.records import GrantMode, UnplugPolicy


@dataclass(frozen=True, slots=True)
class DeclaredNode:
    host: str
    container: str
    permissions: str | None  # None when the entry gave none
    where: str


@dataclass(frozen=True, slots=True)
class Requirements:
    service: str
    where: str
    nodes: tuple[DeclaredNode, ...] = ()
    matches: tuple[HardwareMatch, ...] = ()
    capabilities: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    network_mode: str | None = None
    privileged: bool = False
    enabled: bool = True
    on_unplug: UnplugPolicy | None = None  # None: hwprov's default
    grant: GrantMode | None = None  # None: hwprov's default
    warnings: tuple[str, ...] = ()


def requirements_of(service: Service, source: str, kinds: KnownKinds | None = None) -> Requirements:
    """What `service` asks for. ComposeError for a label hwprov cannot read, and, when `kinds`
    is given, for a kind no loaded plugin produces (a warning while some plugin does not say
    which kinds it produces)."""
    name, line = service.name, service.line
    where = f"{source}:{line}" if line else source
    labels = dict(service.labels)
    if problems := misspelt_labels(labels):
        raise ComposeError(source, line, None, f"service '{name}': " + "; ".join(problems))
    nodes = tuple(
        DeclaredNode(
            host=d.host,
            container=d.container or d.host,
            permissions=d.permissions,
            where=f"{source}:{d.line}" if d.line else where,
        )
        for d in service.devices
    )
    matches = []
    for slot, value in sorted(match_labels(labels).items()):
        try:
            matches.append(parse_match(slot, value))
        except LabelSyntaxError as err:
            raise ComposeError(
                source, line, None, f"service '{name}': label io.hwprov.device.{slot}: {err}"
            ) from None
    try:
        policy = on_unplug(labels)
    except LabelSyntaxError as err:
        raise ComposeError(
            source, line, None, f"service '{name}': {ON_UNPLUG_LABEL}: {err}"
        ) from None
    try:
        mode = grant_mode(labels)
    except LabelSyntaxError as err:
        raise ComposeError(source, line, None, f"service '{name}': {GRANT_LABEL}: {err}") from None
    warnings = []
    for match in matches:
        problem = unknown_kind(match, kinds.names) if kinds is not None else None
        if kinds is None or problem is None:
            continue
        message = f"service '{name}': label io.hwprov.device.{match.slot}: {problem}"
        if not kinds.undeclared:
            raise ComposeError(source, line, None, message)
        others = ", ".join(kinds.undeclared)
        warnings.append(f"{where}: {message} (unless {others}, which does not say, makes it)")
    features = service.features  # the io.balena.features.* that the supervisor counts as on
    return Requirements(
        service=name,
        where=where,
        nodes=nodes,
        matches=tuple(matches),
        capabilities=service.cap_add,
        features=features,
        network_mode=service.network_mode,
        privileged=service.privileged,
        enabled=enabled(labels),
        on_unplug=policy,
        grant=mode,
        warnings=tuple(warnings),
    )
