"""A YAML reader for compose files: positions kept, duplicate keys refused, YAML 1.2 scalars.

- Every mapping and list remembers where it, each key, each value and each item started
  (1-based line and column), so errors and plans can cite `file:line:col`.
- Scalars resolve as in YAML 1.2 (what compose-go's go-yaml v3 and the balena CLI's js-yaml
  do), not YAML 1.1 as PyYAML does: `no`, `yes`, `on`, `off` stay strings, so `restart: no`
  is "no" and `KEY: on` is "on"; only true/false are booleans; `22:22` is not sexagesimal;
  `2001-12-14` is not a date. Leading-zero integers (`0440`) stay octal as go-yaml reads them.
- Two equal keys in one mapping are an error at the second one: compose-go ("mapping key
  already defined") and js-yaml ("duplicated mapping key") both refuse them, so no deployed
  release has them, and guessing which `privileged:` was meant is no job for a least-privilege
  tool. A key overriding a `<<` merge is what merges are for, not a duplicate.
- Every failure is a `yaml.YAMLError`, most with a mark, so the caller can name the position.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Pos = tuple[int, int]
NOWHERE: Pos = (0, 0)
# Aliases are shared while parsing but copied by interpolation: bound what they expand to.
MAX_VALUES = 200_000
# The reader's later walks (interpolation, freezing) recurse once per level: bound the nesting
# of what a file (with its aliases followed) reads as, block style too.
MAX_DEPTH = 100
# PyYAML's scanner slows quadratically with flow nesting ("[[[[..." of 3000 takes seconds).
MAX_FLOW_DEPTH = 100
# Python will not write an int of more than 4300 decimal digits as text (int_max_str_digits),
# so a longer one would raise wherever a field turns it into a string. No compose value needs
# more than a few digits; a thousand (of any base) stays well below that limit.
MAX_INT_DIGITS = 1000


class YMap(dict[str, Any]):
    """A mapping with the positions of itself, its keys and its values."""

    __slots__ = ("keys_at", "pos", "texts", "values_at")

    def __init__(self, *args: Any, pos: Pos = NOWHERE) -> None:
        super().__init__(*args)
        self.pos = pos
        self.keys_at: dict[str, Pos] = {}
        self.values_at: dict[str, Pos] = {}
        self.texts: dict[str, str] = {}  # the scalar text as written, e.g. `version: 3.10`

    def key_pos(self, key: str) -> Pos:
        return self.keys_at.get(key) or self.pos

    def value_pos(self, key: str) -> Pos:
        return self.values_at.get(key) or self.key_pos(key)

    def like(self, items: dict[str, Any]) -> YMap:
        """A new mapping with these items and this one's positions."""
        out = YMap(items, pos=self.pos)
        out.keys_at, out.values_at, out.texts = self.keys_at, self.values_at, self.texts
        return out


class YList(list[Any]):
    """A list with the positions of itself and of each item."""

    __slots__ = ("items_at", "pos")

    def __init__(self, *args: Any, pos: Pos = NOWHERE) -> None:
        super().__init__(*args)
        self.pos = pos
        self.items_at: list[Pos] = []

    def item_pos(self, index: int) -> Pos:
        return self.items_at[index] if index < len(self.items_at) else self.pos

    def like(self, items: list[Any]) -> YList:
        out = YList(items, pos=self.pos)
        out.items_at = self.items_at
        return out


def _pos(node: Node) -> Pos:
    return node.start_mark.line + 1, node.start_mark.column + 1


_MERGE = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.checked: set[int] = set()

    def flatten_mapping(self, node: MappingNode) -> None:
        """Inline `<<` merges as the YAML merge spec says: explicit keys win, then the merged
        mappings in the order listed. Done here, not by PyYAML, whose order changed in 6.0.4
        (it deduplicates by string identity, so a later mapping's key could win)."""
        # Check each mapping once, before its merges are inlined: after, merged keys and the
        # explicit keys overriding them sit side by side and would look like duplicates.
        if id(node) not in self.checked:
            self.checked.add(id(node))
            _check_duplicates(node)
        explicit: list[tuple[Node, Node]] = []
        sources: list[MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                explicit.append((key_node, value_node))
            elif isinstance(value_node, MappingNode):
                sources.append(value_node)
            elif isinstance(value_node, SequenceNode) and all(
                isinstance(n, MappingNode) for n in value_node.value
            ):
                sources += value_node.value
            else:
                raise ConstructorError(
                    None, None, "`<<` merges a mapping or a list of mappings", value_node.start_mark
                )
        taken = {k.value for k, _ in explicit if isinstance(k, ScalarNode)}
        merged: list[tuple[Node, Node]] = []
        for source in sources:
            self.flatten_mapping(source)
            for key_node, value_node in source.value:
                if isinstance(key_node, ScalarNode):
                    if key_node.value in taken:
                        continue
                    taken.add(key_node.value)
                merged.append((key_node, value_node))
        node.value = merged + explicit

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        if self.flow_level >= MAX_FLOW_DEPTH:
            raise yaml.scanner.ScannerError(
                None, None, f"nested more than {MAX_FLOW_DEPTH} levels deep", self.get_mark()
            )
        super().fetch_flow_collection_start(TokenClass)


_DROPPED = {f"tag:yaml.org,2002:{t}" for t in ("bool", "int", "float", "timestamp", "value")}
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _DROPPED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+.0123456789"))


def _scalar_error(node: ScalarNode, kind: str) -> ConstructorError:
    text = node.value if len(node.value) <= 60 else node.value[:57] + "..."
    return ConstructorError(None, None, f"'{text}' is not {kind}", node.start_mark)


def _construct_bool(loader: _Loader, node: ScalarNode) -> bool:
    text = str(node.value).lower()
    if text not in ("true", "false"):
        raise _scalar_error(node, "a boolean (true or false)")
    return text == "true"


def _construct_int(loader: _Loader, node: ScalarNode) -> int:
    text = str(node.value).replace("_", "")
    sign, digits = (-1, text[1:]) if text.startswith("-") else (1, text.lstrip("+"))
    if len(digits.removeprefix("0o").removeprefix("0x")) > MAX_INT_DIGITS:
        raise _scalar_error(node, f"an integer of at most {MAX_INT_DIGITS} digits")
    try:
        if digits.startswith(("0o", "0x")):
            return sign * int(digits[2:], 8 if digits[1] == "o" else 16)
        if len(digits) > 1 and digits[0] == "0" and set(digits) <= set("01234567"):
            return sign * int(digits, 8)
        return sign * int(digits, 10)
    except ValueError:
        raise _scalar_error(node, "an integer") from None


def _construct_float(loader: _Loader, node: ScalarNode) -> float:
    text = str(node.value).replace("_", "").lower()
    try:
        return float(text.replace(".inf", "inf").replace(".nan", "nan"))
    except ValueError:
        raise _scalar_error(node, "a number") from None


def _construct_timestamp(loader: _Loader, node: ScalarNode) -> Any:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except (ValueError, AttributeError, TypeError):
        raise _scalar_error(node, "a timestamp") from None


def _check_duplicates(node: MappingNode) -> None:
    seen: dict[str, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, ScalarNode):
            continue
        if key_node.value in seen:
            raise ConstructorError(
                None,
                None,
                f"duplicate key '{key_node.value}' (first at line {seen[key_node.value]}); "
                "compose refuses duplicate keys: keep one",
                key_node.start_mark,
            )
        seen[key_node.value] = key_node.start_mark.line + 1


def _construct_mapping(loader: _Loader, node: MappingNode) -> YMap:
    loader.flatten_mapping(node)  # resolves `<<`; merged pairs come first, so explicit keys win
    out = YMap(pos=_pos(node))
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            raise ConstructorError(
                None, None, "expected a plain key, found a list or mapping", key_node.start_mark
            )
        key = str(key_node.value)
        out[key] = loader.construct_object(value_node, deep=True)
        out.keys_at[key], out.values_at[key] = _pos(key_node), _pos(value_node)
        if isinstance(value_node, ScalarNode):
            out.texts[key] = str(value_node.value)
    return out


def _construct_sequence(loader: _Loader, node: SequenceNode) -> YList:
    out = YList((loader.construct_object(item, deep=True) for item in node.value), pos=_pos(node))
    out.items_at = [_pos(item) for item in node.value]
    return out


for _tag, _fn in {
    "bool": _construct_bool,
    "int": _construct_int,
    "float": _construct_float,
    "timestamp": _construct_timestamp,
    "map": _construct_mapping,
    "seq": _construct_sequence,
}.items():
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _fn)


def _measure(value: Any, seen: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """How many values `value` stands for once aliases are copied, and how deep it nests
    (memoised: linear time). Tuples are the pairs of `!!omap` and `!!pairs`."""
    if not isinstance(value, dict | list | tuple):
        return 1, 0
    if id(value) not in seen:
        children = [
            _measure(c, seen) for c in (value.values() if isinstance(value, dict) else value)
        ]
        count = 1 + sum(n for n, _ in children)
        seen[id(value)] = count, 1 + max((depth for _, depth in children), default=0)
    return seen[id(value)]


def load_yaml(text: str) -> Any:
    """The one document in `text`, as YMap/YList/scalars. Raises yaml.YAMLError."""
    loader = _Loader(text)
    try:
        doc = loader.get_single_data()
    except RecursionError:
        raise yaml.YAMLError("nested too deeply (or a recursive alias)") from None
    finally:
        loader.dispose()
    try:
        count, depth = _measure(doc, {})
    except RecursionError:  # aliases of aliases, each nested as deep as the parser allows
        count, depth = 0, MAX_DEPTH + 1
    if count > MAX_VALUES:
        raise yaml.YAMLError(f"aliases expand to more than {MAX_VALUES} values")
    if depth > MAX_DEPTH:
        raise yaml.YAMLError(f"nested more than {MAX_DEPTH} levels deep")
    return doc


def load_json(text: str) -> Any:
    """A JSON document through the same reader, so it keeps positions and duplicate checks.

    The caller has checked it is valid JSON. In valid JSON a tab can only be whitespace (JSON
    strings escape tabs), and YAML refuses tabs as indentation, so they become spaces.
    """
    return _join_surrogates(load_yaml(text.replace("\t", " ")))


def _join_surrogates(value: Any) -> Any:
    # YAML reads "\ud83d\ude00" as two lone surrogates; JSON means one character.
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, YMap):
        return value.like({_join_surrogates(k): _join_surrogates(v) for k, v in value.items()})
    if isinstance(value, YList):
        return value.like([_join_surrogates(v) for v in value])
    return value
