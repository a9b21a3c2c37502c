"""hwprov's own compose labels: ask for hot-pluggable hardware by what it is, not where it is.

    labels:
      io.hwprov.device.gps: "kind=serial, vendor=0403, model=6001, path=/dev/gps"
      io.hwprov.device.env: "kind=i2c, sensor=bme280"
      io.hwprov.device.bt:  "kind=bluetooth, optional"

A `devices:` entry stops the engine from creating the container while the device is absent;
a match label does not: hwprov maps whatever matches when it appears. Every key but `path`
and `optional` is a filter; all filters must hold. Values of name, node, by-id and serial may
be shell globs. `detail.<key>=value` matches any detail a plugin records (third-party kinds).
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from hwprov.records import GrantMode, Hardware, Props, UnplugPolicy

E = TypeVar("E", bound=StrEnum)

PREFIX = "io.hwprov.device."
ENABLE_LABEL = "io.hwprov.enable"
ON_UNPLUG_LABEL = "io.hwprov.on-unplug"
GRANT_LABEL = "io.hwprov.grant"
# Set by hwprov on the containers it holds stopped (containers/spec.py), never read from compose.
HELD_LABEL = "io.hwprov.held"
NAMESPACE = "io.hwprov."


def _glob(value: str, candidates: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(c, value) for c in candidates if c)


def label_address(value: str) -> int:
    """The number an `address=` filter gives (0x76, 118, 0o166)."""
    return int(value, 0)


def probed_address(address: str) -> int | None:
    """A probed address ("0x76"), or None when a probe recorded something else."""
    try:
        return int(address, 16)
    except ValueError:
        return None


def _detail(key: str) -> Callable[[Hardware, str], bool]:
    return lambda hw, v: hw.details.get(key, "").lower() == v.lower()


def by_id_names(hw: Hardware) -> list[str]:
    """What a `by-id=` filter is compared with: the by-id link and the udev links, each whole
    and by its last part."""
    names = [hw.details.get("by_id", ""), *hw.links]
    return names + [n.rsplit("/", 1)[-1] for n in names]


def _by_id(hw: Hardware, value: str) -> bool:
    return _glob(value, by_id_names(hw))


MATCHERS: dict[str, Callable[[Hardware, str], bool]] = {
    "kind": lambda hw, v: hw.kind == v,
    "name": lambda hw, v: _glob(v, [hw.name]),
    "node": lambda hw, v: _glob(v, [hw.node or ""]),
    "bus": _detail("bus"),
    "vendor": _detail("vendor_id"),
    "model": _detail("model_id"),
    "serial": lambda hw, v: _glob(v, [hw.details.get("serial", "")]),
    "by-id": _by_id,
    "usb-port": _detail("usb_port"),
    "role": _detail("role"),
    "adapter": lambda hw, v: hw.kind == "bluetooth" and hw.name == v,
    "sensor": lambda hw, v: any(p.model == v.lower() for p in hw.probed),
    "address": lambda hw, v: any(probed_address(p.address) == label_address(v) for p in hw.probed),
}
FLAGS = ("optional",)
OPTIONS = ("path",)
# Filters that name one device outright: only they may select explicit-only hardware (/dev/mem).
NAMING_KEYS = frozenset({"name", "node", "by-id"})


class LabelSyntaxError(ValueError):
    """A match label that cannot be parsed; the message says which part and what was expected."""


@dataclass(frozen=True, slots=True)
class HardwareMatch:
    slot: str
    filters: Props
    container_path: str | None
    optional: bool

    def matches(self, hw: Hardware) -> bool:
        return self.holds(hw) and self.may_take(hw)

    def may_take(self, hw: Hardware) -> bool:
        """Explicit-only hardware needs a naming filter; what another part of the system owns
        needs more than a kind (`kind=serial` alone must not take the console)."""
        if hw.explicit_only and not NAMING_KEYS & set(self.filters):
            return False
        return hw.owner is None or bool(set(self.filters) - {"kind"})

    def holds(self, hw: Hardware) -> bool:
        """Every filter holds (whether this match may take it is `may_take`)."""
        for key, value in self.filters.items():
            check = MATCHERS.get(key)
            ok = check(hw, value) if check else _detail(key.removeprefix("detail."))(hw, value)
            if not ok:
                return False
        return True

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.filters.items())


def parse_match(slot: str, value: object) -> HardwareMatch:
    if not isinstance(value, str) or not value.strip():
        raise LabelSyntaxError("expected 'key=value, ...' (e.g. 'kind=serial, vendor=0403')")
    filters: dict[str, str] = {}
    container_path = None
    optional = False
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        if part in FLAGS:
            optional = True
            continue
        key, sep, val = part.partition("=")
        key, val = key.strip().lower(), val.strip()
        if not sep or not val:
            raise LabelSyntaxError(f"'{part}': expected key=value or 'optional'")
        if key == "path":
            if not val.startswith("/") or ".." in val.split("/"):
                raise LabelSyntaxError(f"path '{val}': expected an absolute container path")
            container_path = val
        elif key in MATCHERS or (key.startswith("detail.") and len(key) > len("detail.")):
            if key == "address":
                try:
                    label_address(val)
                except ValueError:
                    raise LabelSyntaxError(
                        f"address '{val}': expected a number like 0x76"
                    ) from None
            if key in filters:
                raise LabelSyntaxError(f"'{key}' given twice")
            filters[key] = val
        else:
            known = ", ".join([*MATCHERS, *OPTIONS, *FLAGS, "detail.<key>"])
            raise LabelSyntaxError(f"unknown key '{key}' (expected one of: {known})")
    if not filters:
        raise LabelSyntaxError("no filter given: at least one of kind, name, vendor, ...")
    return HardwareMatch(slot, Props(filters), container_path, optional)


def misspelt_labels(labels: Mapping[str, str]) -> list[str]:
    """A message for each label that looks meant for hwprov but is none of its labels.

    Every key in the io.hwprov. namespace must be one hwprov reads, and a key that is a near
    miss of one (`io.hwprv.device.gps`) is caught too: ignoring it would silently give the
    service nothing.
    """
    problems = []
    for key in labels:
        if key in (ENABLE_LABEL, ON_UNPLUG_LABEL, GRANT_LABEL, HELD_LABEL):  # held: hwprov's own
            continue
        if key.startswith(PREFIX):
            if not key.removeprefix(PREFIX):
                problems.append(f"label '{key}': a slot name must follow {PREFIX}")
            continue
        # The slot is what follows the misspelt prefix: after its last '.', or its last '-'
        # for `io.hwprov.device-gps`.
        slots = {key.rsplit(".", 1)[-1], re.split(r"[._-]", key)[-1]}
        candidates = [
            *(PREFIX + slot for slot in sorted(slots)),
            ENABLE_LABEL,
            ON_UNPLUG_LABEL,
            GRANT_LABEL,
        ]
        # Outside hwprov's namespace only a close miss is ours; inside it anything unknown is.
        cutoff = 0.6 if key.startswith(NAMESPACE) else 0.85
        close = difflib.get_close_matches(key, candidates, n=1, cutoff=cutoff)
        if key.startswith(NAMESPACE) or close:
            hint = f"; did you mean '{close[0]}'?" if close else ""
            known = f"{PREFIX}<slot>, {ENABLE_LABEL}, {ON_UNPLUG_LABEL}, {GRANT_LABEL}"
            problems.append(f"label '{key}' is not one hwprov reads ({known}){hint}")
    return problems


def unknown_kind(match: HardwareMatch, known: frozenset[str]) -> str | None:
    """Why the kind a match asks for is none of `known`, with the nearest one; None if known."""
    kind = match.filters.get("kind")
    if kind is None or kind in known:
        return None
    close = difflib.get_close_matches(kind, sorted(known), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    names = ", ".join(sorted(known)) or "none"
    return f"kind '{kind}' is not one the loaded plugins know (kinds: {names}){hint}"


def match_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The io.hwprov.device.* labels of a service, slot -> raw value."""
    return {k.removeprefix(PREFIX): v for k, v in labels.items() if k.startswith(PREFIX)}


def enabled(labels: Mapping[str, str]) -> bool:
    return str(labels.get(ENABLE_LABEL, "true")).strip().lower() not in ("false", "0", "no", "off")


def grant_mode(labels: Mapping[str, str]) -> GrantMode | None:
    """How the service wants its devices, or None to use hwprov's default."""
    return _choice(labels, GRANT_LABEL, GrantMode, "is not a grant mode")


def on_unplug(labels: Mapping[str, str]) -> UnplugPolicy | None:
    """The service's unplug policy, or None to use hwprov's default."""
    return _choice(labels, ON_UNPLUG_LABEL, UnplugPolicy, "is not an unplug policy")


def _choice(labels: Mapping[str, str], key: str, choices: type[E], refusal: str) -> E | None:
    """A label whose value is one of an enum's, case and spaces aside; None when not set.

    `refusal` is the whole phrase users see ("is not an unplug policy"), so that
    docs/troubleshooting.md can quote it and its test find it here.
    """
    value = labels.get(key)
    if value is None:
        return None
    try:
        return choices(str(value).strip().lower())
    except ValueError:
        expected = " or ".join(choices)
        raise LabelSyntaxError(f"'{value}' {refusal} (expected {expected})") from None
