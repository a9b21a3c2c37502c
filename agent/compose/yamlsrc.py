"""A YAML loader that keeps line numbers and reports duplicate keys.

PyYAML silently keeps the last of two equal keys; real compose files have them, so they are
reported as warnings with their line (the later value wins, as PyYAML and the balena CLI's
js-yaml in non-strict use do), never silently dropped.
"""

from __future__ import annotations

from typing import Any

import yaml


class Located(dict):  # type: ignore[type-arg]
    """A mapping that remembers the line of itself and of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class _Loader(yaml.SafeLoader):
    duplicates: list[tuple[str, int]]


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> Located:
    explicit = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)  # resolves << merges; merged entries come first
    merged = len(node.value) - explicit
    result = Located()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            )
        key = str(key) if not isinstance(key, str) else key
        # A key given explicitly overrides a merged one: that is what << is for, not a duplicate.
        if key in result and index >= merged and result.key_lines.get(key, 0) > 0:
            loader.duplicates.append((key, key_node.start_mark.line + 1))
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1 if index >= merged else 0
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str) -> tuple[Any, list[tuple[str, int]]]:
    """The document and the duplicate keys found (key, line). Raises yaml.YAMLError."""
    loader = _Loader(text)
    loader.duplicates = []
    try:
        return loader.get_single_data(), loader.duplicates
    finally:
        loader.dispose()
