"""Readers for the service fields hwprov types: each takes the interpolated value (with its
positions) and returns a frozen value, or raises FieldError at the offending item."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hwprov.compose.model import DeviceMapping, FrozenMap
from hwprov.compose.yamlsrc import MAX_INT_DIGITS, Pos, YList, YMap

RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")
_ON_FAILURE = re.compile(r"on-failure:[0-9]+")
_LIMIT = re.compile(rf"-?[0-9]{{1,{MAX_INT_DIGITS}}}")  # longer: int() would refuse it
# YAML 1.1 words too, so a file written for either YAML version means what its author meant.
_BOOLEAN_WORDS = {"true": True, "yes": True, "on": True, "1": True,
                  "false": False, "no": False, "off": False, "0": False}  # fmt: skip


class FieldError(ValueError):
    def __init__(self, message: str, pos: Pos) -> None:
        self.message, self.pos = message, pos
        super().__init__(message)


def pos_in(container: Any, index: int | str, fallback: Pos) -> Pos:
    if isinstance(container, YList) and isinstance(index, int):
        return container.item_pos(index)
    if isinstance(container, YMap) and isinstance(index, str):
        return container.value_pos(index)
    return fallback


def scalar_text(value: Any) -> str:
    """A scalar as compose turns it into a string (labels, environment values)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def optional_text(value: Any, pos: Pos) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise FieldError(f"expected a string, got {describe(value)}", pos)
    return str(value)


def strings(value: Any, pos: Pos, numbers: bool = False) -> tuple[str, ...]:
    """A list of strings (`numbers`: ints too, as group_add takes gids)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        hint = f" (write it as [{value}])" if isinstance(value, str | int) else ""
        raise FieldError(f"expected a list, got {describe(value)}{hint}", pos)
    kinds = (str, int) if numbers else (str,)
    out = []
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, kinds):
            want = "a string or a number" if numbers else "a string"
            raise FieldError(
                f"item {i + 1}: expected {want}, got {describe(item)}", pos_in(value, i, pos)
            )
        out.append(str(item))
    return tuple(out)


def boolean(value: Any, pos: Pos) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    word = _BOOLEAN_WORDS.get(str(value).strip().lower()) if isinstance(value, str | int) else None
    if word is None:
        raise FieldError(f"expected true or false, got {describe(value)}", pos)
    return word


def pairs(value: Any, pos: Pos, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A map, or a list of KEY=VALUE strings (labels; environment when `env` is given).

    In environment, a bare `KEY` (or `KEY:` with no value) passes the variable through from
    the interpolation environment, and is left out when that does not have it, as compose does.
    """
    if value is None:
        return {}
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list):
                raise FieldError(
                    f"'{key}': expected a string, got {describe(item)}", pos_in(value, key, pos)
                )
            if item is None and env is not None:
                if key in env:
                    out[key] = env[key]
                continue
            out[key] = scalar_text(item)
        return out
    if not isinstance(value, list):
        raise FieldError(f"expected a mapping or a list of KEY=VALUE, got {describe(value)}", pos)
    for i, item in enumerate(value):
        where = pos_in(value, i, pos)
        if not isinstance(item, str):
            raise FieldError(f"item {i + 1}: expected KEY=VALUE, got {describe(item)}", where)
        key, sep, text = item.partition("=")
        if not key.strip():
            raise FieldError(f"item {i + 1}: '{item}' has no name before '='", where)
        if not sep and env is not None:
            if key in env:
                out[key] = env[key]
            continue
        out[key.strip()] = text
    return out


def devices(
    value: Any, pos: Pos, written: Any = None, warnings: list[tuple[Pos, str]] | None = None
) -> tuple[DeviceMapping, ...]:
    """`host[:container[:permissions]]` strings or {source, target, permissions} mappings.

    `written` is the list before interpolation, to say which variable left an entry empty.
    Permissions that are not letters of rwm load (compose-go reads them too) with a warning in
    `warnings`: the engine refuses them when it creates the container.
    """
    if value is None:
        return ()
    if not isinstance(value, list):
        raise FieldError(
            f"expected a list, got {describe(value)} (write one path as '- {value}')", pos
        )
    out = []
    for i, entry in enumerate(value):
        where = pos_in(value, i, pos)
        before = written[i] if isinstance(written, list) and i < len(written) else entry
        device = _device(entry, before, where)
        perms = device.permissions
        if perms is not None and (set(perms) - set("rwm") or len(set(perms)) != len(perms)):
            (warnings if warnings is not None else []).append((where, (
                f"permissions '{perms}' of '{device.host}' are not letters of 'rwm' (each at "
                "most once): the engine will refuse this entry"
            )))  # fmt: skip
        out.append(device)
    return tuple(out)


def _device(entry: Any, before: Any, where: Pos) -> DeviceMapping:
    if isinstance(entry, dict):
        host, target = entry.get("source"), entry.get("target", entry.get("source"))
        if not isinstance(host, str) or not host or not isinstance(target, str) or not target:
            raise FieldError(
                "the long syntax needs 'source' (and optionally 'target', 'permissions') "
                f"as paths, got {describe(entry)}",
                where,
            )
        perms = entry.get("permissions")
        if perms == "" or (perms is not None and not isinstance(perms, str)):
            raise FieldError(f"permissions: expected rwm letters, got {describe(perms)}", where)
        return DeviceMapping(host, target, perms, where[0])
    if not isinstance(entry, str):
        raise FieldError(f"expected 'host[:container[:permissions]]', got {describe(entry)}", where)
    text = entry.strip()
    if not text:
        hint = f" after interpolating '{before}' (is the variable set?)" if before != entry else ""
        raise FieldError(f"expected 'host[:container[:permissions]]', got ''{hint}", where)
    parts = text.split(":")
    if len(parts) > 3 or not parts[0] or (len(parts) == 3 and not parts[2]):
        raise FieldError(f"expected 'host[:container[:permissions]]', got '{text}'", where)
    host = parts[0]
    container = parts[1] if len(parts) > 1 and parts[1] else host
    return DeviceMapping(host, container, parts[2] if len(parts) > 2 else None, where[0])


def restart(value: Any, pos: Pos) -> tuple[str | None, str | None]:
    """The policy as written, and a warning when the engine would not know it."""
    if value is None:
        return None, None
    if value is False:  # JSON `false`, or YAML 1.1 tooling that wrote `restart: no` back out
        return "no", None
    if not isinstance(value, str):
        raise FieldError(f"expected a restart policy, got {describe(value)}", pos)
    policy = value.strip()
    if policy.lower() in RESTART_POLICIES or _ON_FAILURE.fullmatch(policy.lower()):
        return policy, None
    return policy, (
        f"restart '{policy}' is not a policy the engine knows ({', '.join(RESTART_POLICIES)}); "
        "the balena supervisor runs it as 'always'"
    )


def depends_on(value: Any, pos: Pos) -> tuple[str, ...]:
    if isinstance(value, dict):
        for name, condition in value.items():
            if condition is not None and not isinstance(condition, dict):
                raise FieldError(
                    f"'{name}': expected a mapping such as {{condition: service_started}}",
                    pos_in(value, name, pos),
                )
        return tuple(value)
    return strings(value, pos)


def network_mode(value: Any, pos: Pos) -> str | None:
    text = optional_text(value, pos)
    if text is None:
        return None
    kind, sep, rest = text.strip().partition(":")
    # The supervisor matches /service:\s*(.+)/, so "service: test" names service "test".
    return f"{kind}:{rest.strip()}" if sep and kind in ("service", "container") else text.strip()


def ulimits(value: Any, pos: Pos) -> FrozenMap:
    if value is None:
        return FrozenMap()
    if not isinstance(value, dict):
        raise FieldError(f"expected a mapping of limits, got {describe(value)}", pos)
    out = {}
    for name, limit in value.items():
        where = pos_in(value, name, pos)
        if isinstance(limit, dict):
            soft, hard = (
                _limit(limit.get("soft"), name, where),
                _limit(limit.get("hard"), name, where),
            )
        else:
            soft = hard = _limit(limit, name, where)
        out[name] = (soft, hard)
    return FrozenMap(out)


def _limit(value: Any, name: str, where: Pos) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _LIMIT.fullmatch(value.strip()):
        return int(value)
    raise FieldError(
        f"'{name}': expected a number or {{soft: n, hard: n}}, got {describe(value)}", where
    )


def build(value: Any, pos: Pos) -> str | FrozenMap | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return FrozenMap((str(k), freeze(v)) for k, v in value.items())
    raise FieldError(f"expected a build context path or a mapping, got {describe(value)}", pos)


def volumes(value: Any, pos: Pos) -> tuple[str | FrozenMap, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise FieldError(f"expected a list, got {describe(value)}", pos)
    for i, item in enumerate(value):
        if not isinstance(item, str | dict):
            raise FieldError(
                f"item {i + 1}: expected 'source:target[:mode]' or a mapping, got {describe(item)}",
                pos_in(value, i, pos),
            )
    return tuple(freeze(value))


def command(value: Any, pos: Pos) -> str | tuple[str, ...] | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return tuple(scalar_text(v) for v in value)
    raise FieldError(f"expected a string or a list of strings, got {describe(value)}", pos)


def freeze(value: Any) -> Any:
    """Immutable, hashable copy of a parsed value (mappings -> FrozenMap, lists -> tuples)."""
    if isinstance(value, dict):
        return FrozenMap((str(k), freeze(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, set | frozenset):
        return frozenset(freeze(v) for v in value)
    return value


def describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
