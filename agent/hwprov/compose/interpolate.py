"""Compose variable interpolation and `.env` files, as docker compose v2.40.3 reads them.

The rules are compose-go v2.9.1's (template/template.go, the library inside that compose), and
tests/unit/test_interpolate_vs_compose.py checks them against the real binary:

- `$$` is a literal `$`. A `$` followed by anything but `$`, `{` or a name is left as it is:
  `$(hostname)`, `cost: 5$`, `$1`, `$ ` and a `$` at the end are literal.
- A name is `[A-Za-z_][A-Za-z0-9_]*`, plus the two non-ASCII letters Go's case-insensitive
  regexp folds onto ASCII ones: U+017F (long s) and U+212A (Kelvin sign). `$VAR` takes the
  longest name; `$VAR` and `${VAR}` are the value, or empty when unset.
- `${VAR:-d}` / `${VAR-d}` give `d` when VAR is unset or empty / unset; `${VAR:+r}` /
  `${VAR+r}` give `r` when VAR is set and non-empty / set, else the (empty) value;
  `${VAR:?e}` / `${VAR?e}` fail with `e` when VAR is unset or empty / unset. The operator is
  the one right after the name. Its argument is interpolated before VAR is looked at, so
  `${SET:-${NOPE:?x}}` fails even though SET is set (compose-go v2.10.1 made this lazy; the
  compose we match is older).
- A `${` that is not `${NAME}` or `${NAME<op>...}` closed by a `}` on the same line is an
  error: `${`, `${}`, `${A`, `${A B}`, `${1}`, `${A:}`, a default that runs onto the next line.
- Where `${NAME<op>` ends is decided twice, as compose-go does: the expression reaches to the
  last `}` on its line, then is cut at the first `}` that balances the braces counted from the
  `${`, where each `{` also hides the character after it; whatever follows the cut is read
  again as ordinary text. So `${A:-{x}}` defaults to `{x}`, and `${A:-{{}}}` is the default
  `{{}` and the text `}` when A is unset, but A's value and `}` when it is set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Go's (?i)[a-z] also matches U+017F and U+212A (they case-fold onto s and k); found by running
# the binary over every code point up to U+307FF: no other non-ASCII character is a name one.
_LETTERS = "A-Za-z_\u017f\u212a"
_NAME = re.compile(f"[{_LETTERS}][{_LETTERS}0-9]*")
# `.` stops at a newline and `.*` is greedy: the expression reaches the line's last `}`.
_BRACED = re.compile(f"\\$\\{{(?P<name>{_NAME.pattern})(?:(?P<op>:?[-+?])(?P<arg>.*))?\\}}")
_DOTENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


MAX_NESTING = 100


class InterpolationError(ValueError):
    """A malformed `${` expression or a required variable without a value."""


def interpolate(
    text: str, env: Mapping[str, str], unset: list[str] | None = None, depth: int = 0
) -> str:
    """`text` with its variables replaced from `env`; names looked up but unset go to `unset`.
    `depth` is how many `${...}` arguments deep `text` is."""
    if depth > MAX_NESTING:
        # Go grows its stack; Python's would overflow a few hundred levels down.
        raise InterpolationError(
            f"invalid interpolation: defaults nested more than {MAX_NESTING} deep"
        )
    out: list[str] = []
    i = 0
    while (j := text.find("$", i)) >= 0:
        out.append(text[i:j])
        value, i = _expression(text, j, env, unset, depth)
        out.append(value)
    out.append(text[i:])
    return "".join(out)


def _expression(
    text: str, at: int, env: Mapping[str, str], unset: list[str] | None, depth: int
) -> tuple[str, int]:
    """The value of the `$` expression at `at`, and where the text after it starts."""
    after = text[at + 1 : at + 2]
    if after == "$":
        return "$", at + 2
    if after == "{":
        return _braced(text, at, env, unset, depth)
    if name := _NAME.match(text, at + 1):
        return _lookup(name.group(), env, unset), name.end()
    return "$", at + 1  # not an expression: compose-go leaves the `$` as written


def _braced(
    text: str, at: int, env: Mapping[str, str], unset: list[str] | None, depth: int
) -> tuple[str, int]:
    """The value of the `${` expression at `at`, and where the text after it starts."""
    match = _BRACED.match(text, at)
    if match is None:
        written = text[at:].split("\n", 1)[0]
        raise InterpolationError(
            f"invalid interpolation '{written}': expected ${{VAR}} or ${{VAR<op>text}} (<op> one "
            "of :- - :? ? :+ +) closed on the same line (write '$$' for a literal '$')"
        )
    name, op = match["name"], match["op"]
    if op is None:
        return _lookup(name, env, unset), match.end()
    close = _balancing_brace(text, at, match.end())
    arg = interpolate(text[match.start("arg") : close], env, unset, depth + 1)  # eager (v2.9.1)
    return _apply(name, op, arg, env), close + 1


def _balancing_brace(text: str, start: int, end: int) -> int:
    """Index of the `}` that closes the `${` at `start`, by compose-go's count: braces balance
    with each `{` skipping the character after it; the last `}` before `end` if none does."""
    depth, i = 0, start
    while i < end:
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        elif text[i] == "{":
            depth += 1
            i += 1
        i += 1
    return end - 1


def _apply(name: str, op: str, arg: str, env: Mapping[str, str]) -> str:
    """`${name<op>arg}` once `arg` is interpolated."""
    value = env.get(name)
    present = value is not None and (not op.startswith(":") or value != "")
    kind = op[-1]
    if kind == "-":
        return str(value) if present else arg
    if kind == "+":
        return arg if present else ""  # the value, which is unset or empty
    if not present:
        raise InterpolationError(
            f"required variable {name} is missing a value" + (f": {arg}" if arg else "")
        )
    return str(value)


def _lookup(name: str, env: Mapping[str, str], unset: list[str] | None) -> str:
    value = env.get(name)
    if value is None:
        if unset is not None and name not in unset:
            unset.append(name)
        return ""
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
