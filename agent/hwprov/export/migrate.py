"""`hwprov migrate`: the compose edit that takes a service off `privileged: true`.

On a supervisor-owned service this is the only durable fix: the supervisor recreates whatever
its release says, so the release itself must ask for the least-privilege settings. The edit
replaces `privileged: true` with what the plan gave instead: `io.hwprov.device.*` labels that
match the attached hardware by identity (so it follows replug and re-enumeration), the
capabilities and network mode its grants need, and the balena feature labels they rely on.

Pure: works on the file's text, its loaded model and the plan. The text is edited line by line,
so comments and formatting survive; where a key is written in a form this cannot extend
(inline `{}`, an anchor), the edit is left to the user and said in a note.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hwprov.compose.model import Project, Service
from hwprov.planning.matchlabels import PREFIX, parse_match
from hwprov.planning.plan import Plan, ServicePlan
from hwprov.records import GrantFn, Hardware

_KEY = re.compile(r"^(\s*)([A-Za-z0-9_.-]+):(.*)$")
_TRUE = re.compile(r"^\s*privileged:\s*(true|True|TRUE|yes|'true'|\"true\")\s*(#.*)?$")


@dataclass(frozen=True, slots=True)
class Migration:
    """What one service needs instead of privileged: true."""

    service: str
    labels: tuple[tuple[str, str], ...]
    cap_add: tuple[str, ...]
    network_mode: str | None


@dataclass(frozen=True, slots=True)
class Result:
    text: str
    migrations: tuple[Migration, ...]
    notes: tuple[str, ...]


def match_filter(hw: Hardware, hardware: Sequence[Hardware]) -> str:
    """A match label value that selects `hw` by identity, and nothing else attached."""
    d = hw.details
    if d.get("vendor_id") and d.get("model_id"):
        parts = [f"kind={hw.kind}", f"vendor={d['vendor_id']}", f"model={d['model_id']}"]
        if d.get("serial"):
            parts.append(f"serial={d['serial']}")
    elif hw.kind == "i2c" and d.get("bus"):
        parts = ["kind=i2c", f"bus={d['bus']}"]
    else:
        parts = [f"kind={hw.kind}", f"name={hw.name}"]
    value = ", ".join(parts)
    match = parse_match("x", value)
    if not match.matches(hw) or any(match.matches(o) for o in hardware if o.id != hw.id):
        value = f"kind={hw.kind}, node={hw.node}" if hw.node else f"kind={hw.kind}, name={hw.name}"
    return value


def _slot(hw: Hardware) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", hw.name.lower()).strip("-")
    return name if name.startswith(hw.kind) else f"{hw.kind}-{name}"


def migration_for(
    service: Service, plan: ServicePlan, hardware: Sequence[Hardware], grant: GrantFn
) -> Migration:
    by_id = {hw.id: hw for hw in hardware}
    # A service that declares hardware keeps it declared; one that declares none got every
    # attached device of the plugin kinds, and those become labels.
    declares = service.devices or any(k.startswith(PREFIX) for k in service.labels)
    offered = [] if declares else [by_id[i] for i in plan.hardware if i in by_id]
    labels: dict[str, str] = {}
    for hw in offered:
        labels[PREFIX + _slot(hw)] = match_filter(hw, hardware)
        g = grant(hw)
        for key, value in g.labels.items() if g else ():
            if key not in service.labels:
                labels[key] = value
    have = {c.upper().removeprefix("CAP_") for c in service.cap_add}
    caps = tuple(c.value for c in plan.capabilities if c.value not in have)
    network = plan.network_mode.value if plan.network_mode else None
    return Migration(
        service.name,
        tuple(sorted(labels.items())),
        caps,
        network if network and network != service.network_mode else None,
    )


def migrate(
    text: str, project: Project, plan: Plan, hardware: Sequence[Hardware], grant: GrantFn
) -> Result:
    lines = text.splitlines()
    migrations, notes = [], []
    # Bottom-up, so earlier services' line numbers stay valid while later ones are edited.
    for service in sorted(project.services, key=lambda s: s.line, reverse=True):
        if not service.privileged:
            continue
        m = migration_for(service, plan.service(service.name), hardware, grant)
        migrations.append(m)
        notes += _edit_service(lines, service, m)
    out = "\n".join(lines) + ("\n" if text.endswith("\n") else "")
    return Result(out, tuple(reversed(migrations)), tuple(reversed(notes)))


def _block(lines: list[str], service: Service) -> tuple[int, int, str]:
    """(first child line, end, child indent) of a service's block; indices are 0-based."""
    start = service.line  # the line after the service's key (service.line is 1-based)
    head = len(lines[service.line - 1]) - len(lines[service.line - 1].lstrip())
    end, indent = len(lines), None
    for i in range(start, len(lines)):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            continue
        level = len(lines[i]) - len(lines[i].lstrip())
        if level <= head:
            end = i
            break
        if indent is None:
            indent = " " * level
    return start, end, indent if indent is not None else " " * (head + 2)


def _keys(lines: list[str], start: int, end: int, indent: str) -> dict[str, int]:
    found = {}
    for i in range(start, end):
        m = _KEY.match(lines[i])
        if m and m.group(1) == indent:
            found[m.group(2)] = i
    return found


def _items_form(lines: list[str], key_line: int, end: int) -> tuple[str, str] | None:
    """How a block key's children are written: ("list"|"map", their indent), or None when
    the value is on the key's own line (flow style) and cannot be extended line-wise."""
    if _KEY.match(lines[key_line]).group(3).split("#")[0].strip():  # type: ignore[union-attr]
        return None
    for i in range(key_line + 1, end):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            return ("list" if stripped.startswith("- ") else "map"), indent
    return None


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _edit_service(lines: list[str], service: Service, m: Migration) -> list[str]:
    start, end, indent = _block(lines, service)
    where = f"service '{service.name}'"
    privileged = next((i for i in range(start, end) if _TRUE.match(lines[i])), None)
    if privileged is None:
        return [
            f"{where}: privileged: true is not written in its own block (an anchor or "
            "extension?): remove it where it is defined"
        ]
    keys = _keys(lines, start, end, indent)
    notes: list[str] = []
    inserts: list[tuple[int, list[str]]] = []  # (after line index, new lines)
    new_here: list[str] = [f"{indent}# hwprov migrate: was privileged: true"]
    if m.cap_add:
        if "cap_add" in keys:
            form = _items_form(lines, keys["cap_add"], end)
            if form and form[0] == "list":
                inserts.append((keys["cap_add"], [f"{form[1]}- {c}" for c in m.cap_add]))
            else:
                notes.append(f"{where}: add {', '.join(m.cap_add)} to its cap_add by hand")
        else:
            new_here.append(f"{indent}cap_add: [{', '.join(m.cap_add)}]")
    if m.network_mode:
        if "network_mode" in keys:
            notes.append(f"{where}: its hardware needs network_mode: {m.network_mode}")
        else:
            new_here.append(f"{indent}network_mode: {m.network_mode}")
    if m.labels:
        if "labels" in keys:
            form = _items_form(lines, keys["labels"], end)
            if form is None:
                notes.append(
                    f"{where}: add these labels by hand: "
                    + ", ".join(f"{k}: {v}" for k, v in m.labels)
                )
            elif form[0] == "list":
                inserts.append((keys["labels"], [f"{form[1]}- {k}={v}" for k, v in m.labels]))
            else:
                inserts.append(
                    (keys["labels"], [f"{form[1]}{k}: {_quote(v)}" for k, v in m.labels])
                )
        else:
            step = indent + "  "
            new_here += [f"{indent}labels:"] + [f"{step}{k}: {_quote(v)}" for k, v in m.labels]
    inserts.append((privileged, new_here))
    # Apply from the bottom so indices stay valid; the privileged line itself goes.
    for after, new in sorted(inserts, key=lambda x: x[0], reverse=True):
        if after == privileged:
            lines[privileged : privileged + 1] = new
        else:
            lines[after + 1 : after + 1] = new
    return notes


def summary(m: Migration) -> Mapping[str, object]:
    return {
        "service": m.service,
        "labels": dict(m.labels),
        "cap_add": list(m.cap_add),
        "network_mode": m.network_mode,
    }
