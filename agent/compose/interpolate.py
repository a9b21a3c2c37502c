"""Compose interpolation: $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?msg}, ${VAR?msg}, $$."""

from __future__ import annotations

import re
from collections.abc import Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>.*))?$", re.S)


class InterpolationError(ValueError):
    pass


def _closing(text: str, start: int) -> int:
    """Index of the '}' that closes the '${' before `start`, allowing nested ${...}."""
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth, i = depth + 1, i + 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"invalid interpolation in '{text}': an unclosed '${{'")


def _braced(body: str, env: Mapping[str, str]) -> str:
    parts = _BRACED.match(body)
    if parts is None:
        raise InterpolationError(f"invalid interpolation '${{{body}}}'")
    name, op, arg = parts.group("name"), parts.group("op"), parts.group("arg") or ""
    value = env.get(name)
    unset_or_empty = value is None or (op is not None and op.startswith(":") and value == "")
    if op in ("-", ":-"):
        return interpolate(arg, env) if unset_or_empty else str(value)
    if op in ("?", ":?"):
        if unset_or_empty:
            raise InterpolationError(f"required variable {name} is missing: {arg or 'no value'}")
        return str(value)
    return value or ""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    out, i = [], 0
    while (j := text.find("$", i)) >= 0:
        out.append(text[i:j])
        if text.startswith("$$", j):
            out.append("$")
            i = j + 2
        elif text.startswith("${", j):
            end = _closing(text, j + 2)
            out.append(_braced(text[j + 2 : end], env))
            i = end + 1
        elif m := _NAME.match(text, j + 1):
            out.append(env.get(m.group(), ""))
            i = m.end()
        else:
            raise InterpolationError(
                f"invalid interpolation in '{text}': use '$$' for a literal '$'"
            )
    out.append(text[i:])
    return "".join(out)


def read_dotenv(text: str) -> dict[str, str]:
    """KEY=VALUE lines, read as compose does: comments, `export ` prefixes, quotes."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        out[key.strip()] = value
    return out
