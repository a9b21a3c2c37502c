"""Compose variable interpolation and `.env` files, as docker compose (compose-go) reads them.

`$$` is a literal `$`; `$VAR` and `${VAR}` are the value or empty when unset; `${VAR:-d}` /
`${VAR-d}` give `d` when VAR is unset or empty / unset; `${VAR:?msg}` / `${VAR?msg}` fail when
VAR is unset or empty / unset; `${VAR:+alt}` / `${VAR+alt}` give `alt` when VAR is set and
non-empty / set. Defaults, alternatives and messages are interpolated too. Any other `$` is an
error (compose-go refuses it as well), so a typo never turns silently into an empty string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.S)
_DOTENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


class InterpolationError(ValueError):
    """A malformed `$` expression or a required variable without a value."""


def interpolate(text: str, env: Mapping[str, str], unset: list[str] | None = None) -> str:
    """`text` with its variables replaced from `env`; names used but unset go to `unset`."""
    out: list[str] = []
    i = 0
    while (j := text.find("$", i)) >= 0:
        out.append(text[i:j])
        if text.startswith("$$", j):
            out.append("$")
            i = j + 2
        elif text.startswith("${", j):
            end = _closing_brace(text, j + 2)
            out.append(_braced(text[j + 2 : end], env, unset))
            i = end + 1
        elif name := _NAME.match(text, j + 1):
            out.append(_lookup(name.group(), env, unset))
            i = name.end()
        else:
            raise InterpolationError(
                f"invalid interpolation in '{text}': a '$' must start $VAR or ${{VAR}} "
                "(write '$$' for a literal '$')"
            )
    out.append(text[i:])
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    """Index of the `}` closing the `${` before `start`; a nested `${` needs its own `}`."""
    depth, i = 1, start
    while i < len(text):
        if text.startswith("${", i):
            depth, i = depth + 1, i + 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"invalid interpolation in '{text}': '${{' is never closed by '}}'")


def _lookup(name: str, env: Mapping[str, str], unset: list[str] | None) -> str:
    value = env.get(name)
    if value is None:
        if unset is not None and name not in unset:
            unset.append(name)
        return ""
    return str(value)


def _braced(body: str, env: Mapping[str, str], unset: list[str] | None) -> str:
    parts = _BRACED.fullmatch(body)
    if parts is None:
        raise InterpolationError(
            f"invalid interpolation '${{{body}}}': expected ${{VAR}}, ${{VAR:-default}}, "
            "${VAR-default}, ${VAR:?message} or ${VAR?message}"
        )
    name, op, arg = parts.group("name"), parts.group("op"), parts.group("arg") or ""
    if op is None:
        return _lookup(name, env, unset)
    value = env.get(name)
    present = value is not None and (not op.startswith(":") or value != "")
    kind = op[-1]
    if kind == "-":
        return str(value) if present else interpolate(arg, env, unset)
    if kind == "+":
        return interpolate(arg, env, unset) if present else ""
    if not present:
        message = interpolate(arg, env, unset)
        raise InterpolationError(
            f"required variable {name} is missing a value" + (f": {message}" if message else "")
        )
    return str(value)


def read_dotenv(
    text: str, env: Mapping[str, str] | None = None, source: str = ".env"
) -> dict[str, str]:
    """The KEY=VALUE pairs of a `.env` file, read as compose reads them.

    Blank lines and `#` comments are skipped; `export ` is allowed before a key; 'single
    quotes' are literal; "double quotes" know \\n, \\t, \\", \\\\ and interpolate; unquoted
    values end at ` #` and interpolate. Interpolation sees the earlier lines and `env` (which
    wins, as the process environment does in compose). A broken line raises ValueError naming
    `source` and the line (the loader turns it into a ComposeError).
    """
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        key = key.strip()
        if not sep or not _DOTENV_KEY.fullmatch(key):
            raise DotenvError(source, number, f"expected KEY=VALUE, got '{line}'")
        try:
            out[key] = _dotenv_value(value.strip(), {**out, **(env or {})})
        except InterpolationError as err:
            raise DotenvError(source, number, str(err)) from None
        except ValueError as err:
            raise DotenvError(source, number, f"{key}: {err}") from None
    return out


class DotenvError(ValueError):
    def __init__(self, source: str, line: int, message: str) -> None:
        self.source, self.line, self.message = source, line, message
        super().__init__(f"{source}:{line}: {message}")


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$$"}


def _dotenv_value(value: str, env: Mapping[str, str]) -> str:
    if value[:1] == "'":
        end = value.find("'", 1)
        if end < 0:
            raise ValueError("a single quote is never closed")
        _comment_only(value[end + 1 :])
        return value[1:end]
    if value[:1] == '"':
        chars, i = [], 1
        while i < len(value) and value[i] != '"':
            if value[i] == "\\" and i + 1 < len(value):
                chars.append(_ESCAPES.get(value[i + 1], "\\" + value[i + 1]))
                i += 2
            else:
                chars.append(value[i])
                i += 1
        if i >= len(value):
            raise ValueError("a double quote is never closed (multi-line values are not read)")
        _comment_only(value[i + 1 :])
        return interpolate("".join(chars), env)
    if value.startswith("#"):
        return ""
    return interpolate(value.split(" #", 1)[0].rstrip(), env)


def _comment_only(rest: str) -> None:
    rest = rest.strip()
    if rest and not rest.startswith("#"):
        raise ValueError(f"unexpected text after the closing quote: '{rest}'")
