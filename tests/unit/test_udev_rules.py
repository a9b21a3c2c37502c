"""udev/99-hwprov.rules: a linter (keys, operators, GOTO/LABEL) and an evaluator that applies the
rules to realistic devices, since udevadm is not on the CI machines (udev/README.md)."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[2] / "udev" / "99-hwprov.rules"
MATCH_OPS = ("==", "!=")
ASSIGN_OPS = ("=", "+=", "-=", ":=")
# udev(7): keys that only match, keys that only assign, keys that do both.
MATCH_KEYS = {"ACTION", "DEVPATH", "KERNEL", "KERNELS", "NAME", "SUBSYSTEM", "SUBSYSTEMS",
              "DRIVER", "DRIVERS", "ATTR", "ATTRS", "SYSCTL", "TAG", "TAGS", "ENV", "CONST",
              "TEST", "PROGRAM", "RESULT", "SYMLINK"}  # fmt: skip
ASSIGN_KEYS = {"NAME", "SYMLINK", "OWNER", "GROUP", "MODE", "SECLABEL", "ATTR", "SYSCTL", "ENV",
               "TAG", "RUN", "LABEL", "GOTO", "IMPORT", "OPTIONS", "WAIT_FOR"}  # fmt: skip
TOKEN = re.compile(r'\s*([A-Z_]+)(?:\{([^}]*)\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(?:,|$)')


@dataclass(frozen=True)
class Pair:
    key: str
    attr: str | None
    op: str
    value: str


@dataclass
class Result:
    tags: set[str] = field(default_factory=set)
    group: str | None = None
    mode: str | None = None
    links: list[str] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)


def parse(text: str) -> list[list[Pair]]:
    rules, pending = [], ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if not line or line.startswith("#"):
            continue
        pairs, pos = [], 0
        while pos < len(line):
            m = TOKEN.match(line, pos)
            assert m, f"line {number}: cannot parse at {line[pos:]!r}"
            pairs.append(Pair(m.group(1), m.group(2), m.group(3), m.group(4)))
            pos = m.end()
        for p in pairs:
            keys = MATCH_KEYS if p.op in MATCH_OPS else ASSIGN_KEYS
            assert p.key in keys, f"line {number}: {p.key} cannot be used with {p.op}"
            assert (p.attr is not None) == (p.key in {"ATTR", "ATTRS", "ENV", "IMPORT", "TEST"}), (
                f"line {number}: {p.key} {'needs' if p.attr is None else 'takes no'} {{...}}"
            )
        rules.append(pairs)
    return rules


def _glob(pattern: str, value: str | None) -> bool:
    return value is not None and any(fnmatch.fnmatchcase(value, p) for p in pattern.split("|"))


def _subst(value: str, device: dict[str, str]) -> str:
    return re.sub(r"\$env\{([^}]+)\}", lambda m: device.get(m.group(1), ""), value)


def evaluate(rules: list[list[Pair]], device: dict[str, str]) -> Result:
    """Apply the rules to one device (properties, with ATTR{x} given as 'attr:x')."""
    out, goto = Result(), None
    for pairs in rules:
        if goto is not None:
            if any(p.key == "LABEL" and p.value == goto for p in pairs):
                goto = None
            continue
        matched = True
        for p in (p for p in pairs if p.op in MATCH_OPS):
            key = f"attr:{p.attr}" if p.key == "ATTR" else (p.attr if p.key == "ENV" else p.key)
            hit = _glob(p.value, device.get(key or ""))
            if hit != (p.op == "=="):
                matched = False
        if not matched:
            continue
        for p in (p for p in pairs if p.op in ASSIGN_OPS):
            if p.key == "TAG":
                out.tags.add(p.value)
            elif p.key == "GROUP":
                out.group = p.value
            elif p.key == "MODE":
                out.mode = p.value
            elif p.key == "SYMLINK":
                out.links.append(_subst(p.value, device))
            elif p.key == "IMPORT":
                out.imports.append(p.value)
            elif p.key == "GOTO":
                goto = p.value
    return out


def dev(subsystem: str, kernel: str, **extra: str) -> dict[str, str]:
    return {"ACTION": "add", "SUBSYSTEM": subsystem, "KERNEL": kernel, **extra}


@pytest.fixture(scope="module")
def rules() -> list[list[Pair]]:
    return parse(RULES.read_text())


def test_every_rule_parses_with_known_keys_and_every_goto_has_its_label(rules) -> None:
    assert len(rules) >= 8
    labels = {p.value for r in rules for p in r if p.key == "LABEL"}
    gotos = {p.value for r in rules for p in r if p.key == "GOTO"}
    assert gotos and gotos <= labels


def test_the_linter_refuses_what_udev_would() -> None:
    with pytest.raises(AssertionError, match="GROUP cannot be used with =="):
        parse('SUBSYSTEM=="tty", GROUP=="dialout"\n')
    with pytest.raises(AssertionError, match="cannot parse"):
        parse("SUBSYSTEM==tty\n")  # unquoted value
    with pytest.raises(AssertionError, match="needs"):
        parse('ATTR=="x"\n')


@pytest.mark.parametrize(
    ("device", "group"),
    [
        (dev("i2c-dev", "i2c-1", ID_PATH="platform-fe804000.i2c"), "i2c"),
        (dev("tty", "ttyUSB0"), "dialout"),
        (dev("tty", "ttyACM0"), "dialout"),
        (dev("tty", "ttyAMA0"), "dialout"),
        (dev("tty", "ttyTHS1"), "dialout"),
        (dev("tty", "ttyS0", **{"attr:type": "4"}), "dialout"),
        (dev("gpio", "gpiochip0"), "gpio"),
        (dev("bcm2835-gpiomem", "gpiomem"), "gpio"),
        (dev("spidev", "spidev0.0"), "spi"),
        (dev("bluetooth", "hci0", DEVTYPE="host"), None),
    ],
)
def test_hwprov_devices_are_tagged_with_their_group(rules, device, group) -> None:
    result = evaluate(rules, device)
    assert result.tags == {"hwprov"}, device
    assert result.group == group
    assert result.mode == ("0660" if group else None)


@pytest.mark.parametrize(
    "device",
    [
        dev("tty", "tty1"),  # a virtual console
        dev("tty", "ptmx"),
        dev("tty", "ttyS3", **{"attr:type": "0"}),  # 8250 placeholder with no UART
        dev("input", "event0"),
        dev("bluetooth", "hci0:11", DEVTYPE="link"),  # a connection, not an adapter
        dev("tty", "ttyUSB0", ACTION="remove"),
    ],
)
def test_everything_else_is_left_alone(rules, device) -> None:
    result = evaluate(rules, device)
    assert not result.tags and result.group is None and not result.links


def test_i2c_buses_get_a_by_path_link(rules) -> None:
    result = evaluate(rules, dev("i2c-dev", "i2c-2", ID_PATH="platform-4819c000.i2c"))
    assert result.imports == ["path_id"]
    assert result.links == ["i2c/by-path/platform-4819c000.i2c"]
    assert evaluate(rules, dev("i2c-dev", "i2c-2")).links == []  # no ID_PATH, no link


def test_every_group_the_rules_give_is_one_the_sysusers_file_makes() -> None:
    # udevd ignores a rule's unknown group ("Unknown group 'gpio', ignoring" on Debian), so a
    # group named in the rules and missing from the sysusers file leaves nodes root:root.
    named = set(re.findall(r'GROUP="([^"]+)"', RULES.read_text()))
    made = {
        line.split()[1]
        for line in (RULES.parent / "hwprov-sysusers.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#") and line.split()[0] == "g"
    }
    assert named and named <= made, named - made
