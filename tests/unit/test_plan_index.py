"""The planner's hardware index (planning/index.py) gives what testing every match against every
piece of hardware gives: the same pieces in the same order, so the same plans, notes and all.

The reference is the planner as it was before the index: `AllPairs` below checks every filter
on every piece, and the planner run with it in place of the index is the old planner.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping, Sequence

import pytest
from hwprov.hardware.nodeview import NodeInfo
from hwprov.planning import planner
from hwprov.planning.index import FIELDS, HardwareIndex
from hwprov.planning.matchlabels import MATCHERS, HardwareMatch, parse_match
from hwprov.planning.plan import Plan
from hwprov.planning.requirements import DeclaredNode, Requirements
from hwprov.plugins.host import PluginHost
from hwprov.records import Grant, GrantFn, Hardware, Kind, ProbedDevice, Props, UdevDevice
from hypothesis import given, settings
from hypothesis import strategies as st
from udevdata import console_tty, ftdi_tty, gpio_node, hci, i2c_bus, platform_uart

HOST = PluginHost().load(eps=[])


class AllPairs(HardwareIndex):
    """The old planner's matching: every filter of a match checked on every piece."""

    def holding(self, match: HardwareMatch) -> list[Hardware]:
        return [hw for hw in self.hardware if match.holds(hw)]

    def by_node(self) -> Mapping[str, Hardware]:
        return {hw.node: hw for hw in self.hardware if hw.node}


def reference_plan(
    requirements: Sequence[Requirements],
    hardware: Sequence[Hardware],
    grant: GrantFn,
    nodes: Mapping[str, NodeInfo],
) -> Plan:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(planner, "HardwareIndex", AllPairs)
        return planner.make_plan("c.yml", requirements, hardware, grant, nodes, ["w"])


def outcome(
    holding: Callable[[HardwareMatch], list[Hardware]], match: HardwareMatch
) -> list[Hardware] | str:
    """What `holding` returns, or what it raises."""
    try:
        return holding(match)
    except ValueError as err:
        return f"ValueError: {err}"


# -- hardware and filters that collide: case, globs, prefixes of each other, empty values ----

WORDS = ["ttyUSB0", "ttyUSB01", "ttyS0", "TTYS0", "hci0", "", "İ", "i̇", "ß", "SS", "a[b", "a*",
         "[", "0403", "usb", "Usb", "bme280", "BME280", "/dev/ttyUSB0", "/dev/ttyUSB01", "/dev/",
         "/dev/serial/by-id/usb-FTDI_A-if00-port0", "/dev/serial/by-id/",
         "usb-FTDI_A-if00-port0"]  # fmt: skip
words = st.sampled_from(WORDS)
text = words | st.text(alphabet="aAtyS0/*?[", max_size=4)


def variants(word: str) -> st.SearchStrategy[str]:
    """A word as a label may give it: itself, in another case, or as a glob that matches it,
    or words that share its start."""
    cut = len(word) // 2
    return st.sampled_from([
        word, word.upper(), word.lower(), word.swapcase(), word[:cut] + "*", "*" + word[cut:],
        word[:-1] + "?", f"[{word[:1]}]{word[1:]}", word + "*", word[:cut] + "[!x]*",
    ])  # fmt: skip


DETAILS = ["bus", "vendor_id", "model_id", "serial", "by_id", "usb_port", "role", "driver", "x"]
KEYS = [*MATCHERS, "detail.driver", "detail.vendor_id", "detail.x", "detail.nope", "nope"]
VALUES = {
    "kind": st.sampled_from(["serial", "Serial", "bluetooth", "spi", ""]),
    "address": st.sampled_from(["0x76", "118", "0o166", "0x77", "76"]),
}


def hardware_of(words: st.SearchStrategy[str]) -> st.SearchStrategy[Hardware]:
    word = words.flatmap(lambda w: st.sampled_from([w, w, w.lower(), w.upper()]))
    probed = st.builds(
        ProbedDevice,
        address=st.sampled_from(["0x76", "0x77", "0X76", "76", "118", "0x_7", "", "zz"]),
        model=st.none() | word,
        state=st.just("identified"),
    )
    return st.builds(
        Hardware,
        id=word,
        kind=st.sampled_from([Kind.SERIAL, Kind.BLUETOOTH, "serial", "Serial", "spi", ""]),
        name=word,
        plugin=st.sampled_from(["serial", "i2c", "bluetooth"]),
        sys_path=word,
        node=st.none() | word,
        links=st.lists(word, max_size=3).map(tuple),
        details=st.dictionaries(st.sampled_from(DETAILS), word, max_size=5).map(Props),
        probed=st.lists(probed, max_size=3).map(tuple),
        explicit_only=st.booleans(),
        owner=st.none() | st.just("the kernel console is on it"),
    )


def matches_of(word: st.SearchStrategy[str]) -> st.SearchStrategy[HardwareMatch]:
    values = word.flatmap(variants)
    filters = st.lists(st.sampled_from(KEYS), min_size=1, max_size=3, unique=True).flatmap(
        lambda keys: st.tuples(*(VALUES.get(k, values) for k in keys)).map(
            lambda vs: Props(zip(keys, vs, strict=True))
        )
    )
    return st.builds(HardwareMatch, st.just("s"), filters, st.none() | word, st.booleans())


hardware = hardware_of(text)
matches = matches_of(text)
# Each example draws from a few words, so that labels and hardware share values often.
pools = st.lists(text, min_size=1, max_size=3).map(lambda pool: st.sampled_from(pool) | text)
cases = pools.flatmap(
    lambda word: st.tuples(st.lists(hardware_of(word), max_size=12), matches_of(word))
)


def test_the_index_has_a_key_for_every_filter() -> None:
    assert set(FIELDS) == set(MATCHERS)


@pytest.mark.parametrize("key", KEYS)
@settings(max_examples=150, deadline=None)
@given(st.data())
def test_each_filter_alone_finds_what_checking_every_piece_finds(
    key: str, data: st.DataObject
) -> None:
    word = data.draw(pools)
    attached = data.draw(st.lists(hardware_of(word), max_size=8))
    value = data.draw(VALUES.get(key, word.flatmap(variants)))
    match = HardwareMatch("s", Props({key: value}), None, False)
    assert HardwareIndex(attached).holding(match) == AllPairs(attached).holding(match)


@settings(max_examples=800, deadline=None)
@given(cases)
def test_the_index_finds_what_checking_every_piece_finds_in_the_same_order(
    case: tuple[list[Hardware], HardwareMatch],
) -> None:
    attached, match = case
    index = HardwareIndex(attached)
    assert outcome(index.holding, match) == outcome(AllPairs(attached).holding, match)
    assert index.by_node() == AllPairs(attached).by_node()


@settings(max_examples=300, deadline=None)
@given(st.lists(hardware, max_size=12), st.lists(text, max_size=3))
def test_an_address_filter_no_parse_let_through_raises_where_checking_every_piece_does(
    attached: list[Hardware], others: list[str]
) -> None:
    # parse_match refuses such a value; a HardwareMatch built by hand need not.
    names = dict(zip(["name", "node", "kind"], others, strict=False))
    match = HardwareMatch("s", Props({"address": "zz", **names}), None, False)
    assert outcome(HardwareIndex(attached).holding, match) == outcome(
        AllPairs(attached).holding, match
    )


# -- whole plans --------------------------------------------------------------------------------

LABELS = ["kind=serial", "kind=serial, name=ttyUSB0", "name=ttyUSB*", "node=/dev/ttyUSB0*",
          "node=*0", "kind=i2c, sensor=bme280, address=0x76", "kind=i2c, bus=1",
          "vendor=0403, model=6001, path=/dev/gps", "by-id=usb-FTDI*", "kind=bluetooth",
          "adapter=hci0", "kind=gpio, name=gpiochip0", "detail.role=mem", "kind=serial, name=ttyS?",
          "serial=A50285BI", "name=[t]ty*", "kind=spi, optional"]  # fmt: skip
requirements = st.builds(
    Requirements,
    service=st.sampled_from(["a", "b", "c", "d"]),
    where=st.just("c.yml:3"),
    nodes=st.lists(
        st.builds(DeclaredNode, text, text, st.none() | st.just("rw"), st.just("c.yml:4")),
        max_size=2,
    ).map(tuple),
    matches=st.lists(
        st.sampled_from(LABELS).map(lambda v: parse_match("s", v)) | matches, max_size=3
    ).map(tuple),
    network_mode=st.none() | st.just("host"),
    privileged=st.booleans(),
    enabled=st.booleans(),
)


def classified() -> list[Hardware]:
    devices: list[UdevDevice] = [
        i2c_bus(1), ftdi_tty(0), ftdi_tty(1, serial="B0"), gpio_node("gpio", "gpiochip0", 254, 0),
        hci("hci0"), console_tty(1),
        platform_uart("ttyS0", "4", "platform/soc/fe215040.serial", "bcm2835-aux-uart"),
    ]  # fmt: skip
    found = [h for d in devices if (h := HOST.classify(d))]
    return [
        dataclasses.replace(h, probed=(ProbedDevice("0x76", "bme280", "identified"),))
        if h.kind == "i2c"
        else h
        for h in found
    ]


CLASSIFIED = classified()


def node_facts(reqs: Sequence[Requirements], hardware: Sequence[Hardware]) -> dict[str, NodeInfo]:
    facts = {hw.node: NodeInfo(hw.node, hw.node, "char", 1, 2) for hw in hardware if hw.node}
    return {
        n.host: facts.get(n.host, NodeInfo(n.host, n.host, "missing"))
        for r in reqs
        for n in r.nodes
    }


@settings(max_examples=400, deadline=None)
@given(
    st.lists(requirements, min_size=1, max_size=4),
    st.lists(hardware, max_size=6),
    st.randoms(use_true_random=False),
)
def test_plans_with_the_index_are_the_plans_of_checking_every_piece(
    reqs: list[Requirements], generated: list[Hardware], rng: random.Random
) -> None:
    attached = [*CLASSIFIED, *generated]
    rng.shuffle(attached)
    nodes = node_facts(reqs, attached)
    plan = planner.make_plan("c.yml", reqs, attached, HOST.grant, nodes, ["w"])
    reference = reference_plan(reqs, attached, HOST.grant, nodes)
    assert plan == reference
    assert plan.to_json() == reference.to_json()


def uart(i: int) -> Hardware:
    return Hardware(
        id=f"serial:/devices/platform/u.{i // 100}/tty/ttyBS{i}",
        kind=Kind.SERIAL,
        name=f"ttyBS{i}",
        plugin="serial",
        sys_path=f"/sys/devices/platform/u.{i // 100}/tty/ttyBS{i}",
        node=f"/dev/ttyBS{i}",
        major=204,
        minor=i,
        details=Props({"driver": "serial8250"}),
        owner="the kernel console is on ttyBS7" if i == 7 else None,
    )


def grant_node(hw: Hardware) -> Grant:
    return Grant(hw.id, f"serial port {hw.name}", capabilities=(f"C{hw.minor % 3}",))


@pytest.mark.parametrize("seed", range(8))
def test_many_services_over_many_ports_plan_as_checking_every_piece_does(seed: int) -> None:
    rng = random.Random(seed)
    attached = [uart(i) for i in range(rng.randrange(200, 600))]
    rng.shuffle(attached)
    labels = ["kind=serial, name=ttyBS{n}", "node=/dev/ttyBS{n}*, optional", "name=ttyBS{n}?",
              "kind=serial", "name=*{n}", "kind=serial, node=/dev/ttyBS{n}"]  # fmt: skip
    reqs = [
        Requirements(
            f"s{i}",
            "c.yml:1",
            matches=tuple(
                parse_match(f"m{j}", rng.choice(labels).format(n=rng.randrange(700)))
                for j in range(rng.randrange(1, 4))
            ),
            privileged=rng.random() < 0.1,
        )
        for i in range(40)
    ]
    plan = planner.make_plan("c.yml", reqs, attached, grant_node, {}, ["w"])
    assert plan == reference_plan(reqs, attached, grant_node, {})


def test_a_label_that_names_one_port_of_thousands_checks_a_few_of_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Not a timing: the count of `holds` calls is what made the plan quadratic (figure 4).
    checked: list[Hardware] = []
    holds = HardwareMatch.holds
    monkeypatch.setattr(HardwareMatch, "holds", lambda m, hw: checked.append(hw) or holds(m, hw))
    attached = [uart(i) for i in range(5000)]
    index = HardwareIndex(attached)
    for label in ("kind=serial, name=ttyBS4321", "node=/dev/ttyBS432*", "by-id=nothing"):
        index.holding(parse_match("s", label))
    assert len(checked) == 1 + 11 + 0
    assert [hw.name for hw in index.holding(parse_match("s", "name=ttyBS12?"))] == [
        f"ttyBS12{d}" for d in range(10)
    ]
