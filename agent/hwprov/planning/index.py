"""The attached hardware indexed once per plan, so that a match label is checked against the few
pieces that could hold it rather than against everything attached: 100 services over 5,000
ports was 1,000,000 filter checks (figure 4).

The index only narrows. Every candidate is still checked with `HardwareMatch.holds`, so a
filter it has no key for, or a glob that starts with a wildcard, costs a scan and never a wrong
answer: `holding` returns what testing every piece in order returns, in that order.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from hwprov.planning.matchlabels import (
    HardwareMatch,
    by_id_names,
    label_address,
    probed_address,
)
from hwprov.records import Hardware

# fnmatch's only special characters: a value without any matches itself alone, and whatever a
# glob matches starts with the text before the first of them.
GLOB_CHARS = frozenset("*?[")


def _same(value: str) -> str:
    return value


@dataclass(frozen=True, slots=True)
class Field:
    """What one filter compares: the keys a piece of hardware has for it, and the key a label
    value asks for. A glob field's value may be a shell glob (case-sensitive, as fnmatchcase),
    and its empty keys never match (matchlabels' `_glob` skips them)."""

    keys: Callable[[Hardware], Iterable[Hashable]]
    wanted: Callable[[str], Hashable] = _same
    glob: bool = False


def detail_field(key: str) -> Field:
    """A filter on one detail a plugin recorded, compared case-insensitively."""
    return Field(lambda hw: (hw.details.get(key, "").lower(),), str.lower)


# The same comparisons as matchlabels.MATCHERS, as keys (tests/unit/test_plan_index.py holds
# the two to the same set of filters and the same answers).
FIELDS: dict[str, Field] = {
    "kind": Field(lambda hw: (hw.kind,)),
    "name": Field(lambda hw: (hw.name,), glob=True),
    "node": Field(lambda hw: (hw.node or "",), glob=True),
    "bus": detail_field("bus"),
    "vendor": detail_field("vendor_id"),
    "model": detail_field("model_id"),
    "serial": Field(lambda hw: (hw.details.get("serial", ""),), glob=True),
    "by-id": Field(by_id_names, glob=True),
    "usb-port": detail_field("usb_port"),
    "role": detail_field("role"),
    "adapter": Field(lambda hw: (hw.name,) if hw.kind == "bluetooth" else ()),
    "sensor": Field(lambda hw: [p.model for p in hw.probed], str.lower),
    "address": Field(lambda hw: [probed_address(p.address) for p in hw.probed], label_address),
}


def field_of(key: str) -> tuple[str, Field]:
    """The field a filter key compares, and the name its table is kept under: `vendor` and
    `detail.vendor_id` share one. A key `holds` treats as a detail is one here too."""
    if key in FIELDS:
        return key, FIELDS[key]
    detail = key.removeprefix("detail.")
    return f"detail.{detail}", detail_field(detail)


class HardwareIndex:
    """`hardware` and its lookups, each table built on first use, from one pass over it."""

    def __init__(self, hardware: Sequence[Hardware]) -> None:
        self.hardware = hardware
        self._tables: dict[str, dict[Hashable, list[int]]] = {}
        self._sorted: dict[str, list[str]] = {}
        self._by_node: dict[str, Hardware] | None = None

    def by_node(self) -> Mapping[str, Hardware]:
        """The hardware on each node, for `devices:` entries (of two on one node, the later)."""
        if self._by_node is None:
            self._by_node = {hw.node: hw for hw in self.hardware if hw.node}
        return self._by_node

    def holding(self, match: HardwareMatch) -> list[Hardware]:
        """The hardware `match` holds for, in the order of `hardware`."""
        return [hw for hw in self._candidates(match) if match.holds(hw)]

    def _candidates(self, match: HardwareMatch) -> Sequence[Hardware]:
        fewest: list[int] | None = None
        for key, value in match.filters.items():
            try:
                found = self._lookup(key, value)
            except ValueError:
                # A value `holds` raises on too (an address no parse let through): the scan
                # raises where checking every piece would.
                return self.hardware
            if found is not None and (fewest is None or len(found) < len(fewest)):
                fewest = found
        if fewest is None:
            return self.hardware
        return [self.hardware[i] for i in fewest]

    def _lookup(self, key: str, value: str) -> list[int] | None:
        """The positions of what may hold `key=value`, ascending; None when anything may."""
        name, field = field_of(key)
        table = self._table(name, field)
        if not field.glob:
            return table.get(field.wanted(value), [])
        cut = next((i for i, c in enumerate(value) if c in GLOB_CHARS), None)
        if cut is None:
            return table.get(value, [])
        if cut == 0:
            return None
        prefix = value[:cut]
        keys = self._sorted_keys(name, table)
        positions: set[int] = set()
        for i in range(bisect.bisect_left(keys, prefix), len(keys)):
            if not keys[i].startswith(prefix):
                break
            positions.update(table[keys[i]])
        return sorted(positions)

    def _table(self, name: str, field: Field) -> dict[Hashable, list[int]]:
        table = self._tables.get(name)
        if table is None:
            table = {}
            for i, hw in enumerate(self.hardware):
                for k in set(field.keys(hw)):
                    if k or not field.glob:
                        table.setdefault(k, []).append(i)
            self._tables[name] = table
        return table

    def _sorted_keys(self, name: str, table: dict[Hashable, list[int]]) -> list[str]:
        keys = self._sorted.get(name)
        if keys is None:
            keys = self._sorted[name] = sorted(k for k in table if isinstance(k, str))
        return keys
