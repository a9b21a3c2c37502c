"""Fuzzing as a habit (issue 16): generated input thrown at every place where data hwprov does
not control comes in, or is combined.

- the compose loader: random YAML documents of every shape and scalar type (anchors, aliases,
  merges, tags, huge and unicode strings, NUL and control characters, tabs), compose-shaped
  files whose fields have the wrong types, JSON, damaged valid files, and files of raw bytes
  that are not UTF-8 or not YAML at all, with a random `.env` beside them;
- match labels: `parse_match` on label values of every shape (unicode, huge, empty, `=` and
  `,` heavy, `detail.` keys, `address=` garbage, unbalanced globs), `HardwareMatch.matches` over
  generated `Hardware`, and `requirements_of` over generated services;
- the inventory: batches of generated udev events (random subsystems, properties, attributes,
  ancestors, node paths and numbers, realistic devices mutated) through the built-in plugins and
  one that misbehaves, with a fake I2C bus that answers at random;
- the planner: generated requirements over generated hardware, grants and node facts.

Each case must end in a result or in the project's own error with a message (ComposeError,
LabelSyntaxError); any other exception is a bug, and a plugin's failure must come back as a
problem of the plugin host. Those are the contracts that keep the agent running whatever
someone writes or plugs in.

The budget is EXAMPLES: over 10,000 cases in all, in well under a minute; the last test checks
that they ran. For a campaign, import the strategies and checks of this module into a scratch
script and run them with a bigger `max_examples`.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import random
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hwprov.compose import Project, Service, load_project, load_project_text
from hwprov.compose.model import DeviceMapping
from hwprov.errors import ComposeError
from hwprov.features import FEATURES
from hwprov.hardware.inventory import Inventory
from hwprov.hardware.nodeview import NodeInfo, NodeType
from hwprov.planning.matchlabels import (
    MATCHERS,
    HardwareMatch,
    LabelSyntaxError,
    enabled,
    match_labels,
    on_unplug,
    parse_match,
)
from hwprov.planning.plan import Plan, ServicePlan
from hwprov.planning.planner import make_plan, plan_service
from hwprov.planning.requirements import DeclaredNode, Requirements, requirements_of
from hwprov.plugins import USB_ATTRIBUTES, hookimpl
from hwprov.plugins.host import PluginHost
from hwprov.records import (
    Action,
    Ancestor,
    DeviceNode,
    Grant,
    Hardware,
    HardwareEvent,
    Kind,
    Mount,
    ProbedDevice,
    Props,
    UdevDevice,
    UdevEvent,
    UnplugPolicy,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from udevdata import console_tty, ftdi_tty, gpio_node, hci, i2c_bus, platform_uart

# Examples per test: the sum is the module's budget (>= 10,000, checked by the last test).
EXAMPLES = {
    "yaml_documents": 1500,
    "compose_files": 450,
    "yaml_text": 3200,
    "nested": 150,
    "damaged_files": 1300,
    "files_of_bytes": 1000,
    "match_labels": 1000,
    "requirements": 1200,
    "inventory": 300,
    "probe": 150,
    "planner": 300,
}
RAN: Counter[str] = Counter()


def fuzz(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return settings(max_examples=EXAMPLES[name], deadline=None)


# -- text of every kind -------------------------------------------------------------------------

SPECIAL = [
    "", " ", "\t", "\x00", "a\x00b", "\x1b[31m", "\x7f", "\x85", "\u2028", "\ufeff", "\ufffe",
    "\U0001f600", "é", "İ", "ß", "ﬁ", "٣", "²", "\u200b", "\r\n", "\r", "~", "null", "yes", "no",
    "on", "off", "true", "0", "1", "0x10", "0o17", "017", "1_000", "1e3", ".inf", "-.inf", ".nan",
    "2001-12-14", "22:22", "<<", "=", "==", "a=b=c", ",", ",,,", ":", "::", "/dev/", "..",
    "/dev/../etc/shadow", "*", "?", "[", "[!", "[]", "]", "\\", "{", "}", "&a", "*a", "!!str",
    "#", "- ", "$", "$$", "${A}", "${A:-x}", "${", "${NOPE:?gone}",
]  # fmt: skip
short_text = st.one_of(
    st.text(max_size=12),  # any unicode but lone surrogates
    st.text(st.characters(max_codepoint=0x7F), max_size=12),  # ASCII with NUL, tabs, controls
    st.sampled_from(SPECIAL),
)
# Huge strings cost the YAML scanner a few microseconds a character: they go in a few places
# only (label values, some fields, text-level YAML), not in every leaf of every document.
huge_text = st.tuples(st.text(min_size=1, max_size=3), st.integers(300, 5000)).map(
    lambda t: t[0] * t[1]
)
wild_text = st.one_of(
    short_text,
    short_text,
    st.binary(max_size=16).map(lambda b: b.decode("utf-8", "surrogateescape")),
    st.lists(st.sampled_from(SPECIAL), max_size=6).map("".join),
)
ints = st.one_of(
    st.integers(),
    st.sampled_from([0, -1, 2**31, 2**63, 2**64 + 1, -(2**63) - 1, 10**30]),
)

# -- the compose loader -------------------------------------------------------------------------

ENV = {"A": "1", "EMPTY": "", "DEV": "/dev/ttyUSB0"}
DOTENV = {"B": "b", "A": "from-dotenv"}
SERVICE_FIELDS = [
    "image", "build", "devices", "labels", "environment", "cap_add", "cap_drop", "privileged",
    "restart", "network_mode", "depends_on", "group_add", "device_cgroup_rules", "ulimits",
    "volumes", "command", "ports", "extends", "env_file", "composition", "tmpfs", "x-ext",
]  # fmt: skip
TOP_FIELDS = ["version", "name", "services", "volumes", "networks", "secrets", "x-common"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    st.floats(),
    wild_text,
    st.binary(max_size=12),  # !!binary
    st.dates(),  # !!timestamp
    st.datetimes(),
)
keys = st.one_of(
    st.sampled_from([*SERVICE_FIELDS, *TOP_FIELDS, "<<", "source", "target", "permissions"]),
    short_text,
    st.integers(),
    st.none(),
    st.booleans(),
)


def _shared(value: Any) -> Any:
    return [value, value]  # the same object twice: SafeDumper writes an anchor and an alias


trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(keys, children, max_size=5),
        children.map(_shared),
        st.dictionaries(st.sampled_from(["<<"]), children, max_size=1),  # merges of anything
        st.sets(st.integers() | short_text, max_size=3),  # !!set
    ),
    max_leaves=24,
)
# Inside compose-shaped files (every field of every service): generating is the cost there.
small_trees = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(keys, children, max_size=3)
        | children.map(_shared)
    ),
    max_leaves=5,
)
dump_styles = st.fixed_dictionaries(
    {
        "default_flow_style": st.sampled_from([False, True, None]),
        "allow_unicode": st.booleans(),
        "width": st.sampled_from([80, 12, 100_000]),
        "indent": st.sampled_from([2, 4, 9]),
        "canonical": st.booleans(),
        "explicit_start": st.booleans(),
        "explicit_end": st.booleans(),
        "default_style": st.sampled_from([None, None, '"', "'"]),
        "version": st.sampled_from([None, (1, 1), (1, 2)]),
    }
)


def as_yaml(doc: Any, style: dict[str, Any]) -> str:
    return yaml.dump(doc, Dumper=yaml.SafeDumper, sort_keys=False, **style)


def as_json(doc: Any, indent: Any) -> str:
    return json.dumps(doc, default=str, indent=indent, ensure_ascii=indent is None)


def check_compose_error(err: ComposeError, source: str) -> None:
    assert str(err).startswith(source), err
    assert isinstance(err.message, str) and err.message.strip(), err
    assert err.line is None or err.line >= 1, err
    assert err.column is None or err.column >= 1, err


# Hardware of every built-in kind, as the planner sees it after classification.
HOST = PluginHost().load(eps=[])
MEM = UdevDevice(
    sys_path="/sys/devices/virtual/mem/mem", subsystem="mem", sys_name="mem",
    node="/dev/mem", major=1, minor=1,
)  # fmt: skip
REALISTIC: list[Callable[[], UdevDevice]] = [
    lambda: i2c_bus(1),
    lambda: ftdi_tty(0),
    lambda: ftdi_tty(1, with_udev_db=False, serial=None),
    lambda: console_tty(1),
    lambda: platform_uart("ttyAMA0", "4", "platform/soc/fe201000.serial", "uart-pl011"),
    lambda: gpio_node("gpio", "gpiochip0", 254, 0),
    lambda: gpio_node("bcm2835-gpiomem", "gpiomem", 240, 0),
    lambda: MEM,
    lambda: hci("hci0"),
    lambda: hci("hci1", usb=True),
]
ATTACHED = [hw for make in REALISTIC if (hw := HOST.classify(make()))]


def node_facts(paths: list[str]) -> dict[str, NodeInfo]:
    """Made-up facts for declared paths, a pure function of each path (no filesystem)."""
    facts = {}
    for path in paths:
        kind = list(NodeType)[zlib.crc32(path.encode("utf-8", "surrogatepass")) % len(NodeType)]
        facts[path] = NodeInfo(path, path, kind, 1, 3)
    return facts


def check_project(project: Project, source: str) -> None:
    """A loaded project is frozen and hashable all the way down, its services plan cleanly."""
    assert isinstance(project, Project) and project.source == source
    assert all(isinstance(s, Service) for s in project.services)
    assert all(isinstance(w, str) for w in (*project.warnings, *project.notes))
    hash(project)
    order = project.start_order()  # it names dependencies that are no service too
    assert {s.name for s in project.services} <= set(order) and len(set(order)) == len(order)
    requirements = []
    for service in project.services:
        assert isinstance(service.features, tuple)
        try:
            requirements.append(requirements_of(service, source))
        except ComposeError as err:
            check_compose_error(err, source)
    nodes = node_facts([n.host for r in requirements for n in r.nodes])
    check_plan(make_plan(source, requirements, ATTACHED, HOST.grant, nodes), requirements)


def loads_or_fails_cleanly(
    text: str, source: str = "fuzz.yml", env: dict[str, str] | None = None
) -> Project | None:
    try:
        project = load_project_text(text, source, ENV if env is None else env, DOTENV)
    except ComposeError as err:
        check_compose_error(err, source)
        return None
    check_project(project, source)
    return project


@fuzz("yaml_documents")
@given(trees, dump_styles, st.booleans())
def test_any_yaml_document_loads_or_fails_cleanly(
    doc: Any, style: dict[str, Any], wrapped: bool
) -> None:
    # `wrapped`: the same value as a service body and as the top level of the file
    text = as_yaml({"services": {"svc": doc}} if wrapped else doc, style)
    loads_or_fails_cleanly(text)
    RAN["yaml_documents"] += 1


def _join(parts: list[str], seps: list[str]) -> str:
    return "".join(p + (seps[i % len(seps)] if seps else ",") for i, p in enumerate(parts))


# match-label values: filters, options, flags and garbage, joined by `,` (or worse)
LABEL_KEYS = [*MATCHERS, "path", "optional", "detail.", "detail.role", "detail.a.b", "Kind",
              "KIND", " kind ", "", "detail", "unknown", "\uff2b\uff29\uff2e\uff24",
              "kİnd"]  # fmt: skip
NUMBERS = [
    "0x76", "0X76", "118", "0o166", "0b1110110", "0x", "0b102", "1_000", "_1", "-0x5", "+7",
    " 7 ", "٣", "²", "08", "0x" + "f" * 5000, "9" * 5000, "1e3", "0.5", "inf", "nan", "0x-1",
]  # fmt: skip
GLOBS = ["*", "?", "[", "[!", "[]", "[a-", "[]]", "[!]", "\\", "ttyUSB*", "tty[", "*[*", "**"]
label_values_raw = st.one_of(
    short_text,
    st.sampled_from(NUMBERS + GLOBS + ["serial", "i2c", "gpio", "bluetooth", "/dev/x", "/a/../b"]),
    st.text(alphabet="*?[]!-^\\/=,ab01", max_size=12),
    huge_text,
)
label_parts = st.one_of(
    st.tuples(
        st.sampled_from(LABEL_KEYS) | short_text,
        st.sampled_from(["=", " = ", "==", "", "=" * 5]),
        label_values_raw,
    ).map("".join),
    st.sampled_from(["optional", " optional ", "OPTIONAL", "", "=", "==", ","]),
    short_text,
)
label_values = st.one_of(
    st.builds(
        _join,
        st.lists(label_parts, max_size=8),
        st.lists(st.sampled_from([",", ", ", ",,", " , ", "\uff0c", ";"]), max_size=3),
    ),
    short_text,
    huge_text,
)
label_names = st.one_of(
    st.sampled_from(["io.hwprov.device.", "io.hwprov.device.gps", "io.hwprov.device.",
                     "io.hwprov.enable", "io.hwprov.on-unplug", "io.balena.features.dbus",
                     "io.resin.features.kernel-modules", "io.resin.x", "io.balena.features."]),
    st.builds(str.__add__, st.just("io.hwprov.device."), short_text),
    short_text,
)  # fmt: skip
label_maps = st.dictionaries(label_names, label_values | scalars, max_size=6)

# plausible shapes for each field, with wrong types mixed in
device_strings = st.lists(
    st.sampled_from(["/dev/ttyUSB0", "/dev/i2c-1", "", "rwm", "rw", "x", "/dev/mem", " "])
    | short_text,
    min_size=1,
    max_size=5,
).map(":".join)
device_entries = st.one_of(
    device_strings,
    st.fixed_dictionaries(
        {}, optional={"source": scalars, "target": scalars, "permissions": scalars}
    ),
    st.fixed_dictionaries(
        {"source": st.sampled_from(["/dev/ttyUSB0", "/dev/gpiomem", "${DEV}"])},
        optional={"permissions": st.sampled_from(["rw", "", "rwmx", "rr", "R"])},
    ),
    scalars,
)
plausible = {
    "image": st.sampled_from(["busybox", "alpine:3.19", "${A}"]) | scalars | huge_text,
    "devices": st.lists(device_entries, max_size=5) | scalars,
    "labels": label_maps | label_maps.map(lambda m: [f"{k}={v}" for k, v in m.items()]),
    "environment": st.dictionaries(short_text, scalars, max_size=4)
    | st.lists(st.sampled_from(["A=1", "A", "=x", "B=", "DEV"]) | short_text | huge_text),
    "cap_add": st.lists(st.sampled_from(["SYS_RAWIO", "CAP_NET_ADMIN", "ALL"]) | scalars),
    "cap_drop": st.lists(scalars, max_size=3) | scalars,
    "privileged": st.sampled_from([True, False, "yes", "no", "true", 1, 0, 2, "maybe", ""]),
    "restart": st.sampled_from(["no", "always", "on-failure:3", "on-failure:x", False, True]),
    "network_mode": st.sampled_from(["host", "bridge", "service: db", "container:x", "service:"]),
    "depends_on": st.lists(short_text, max_size=3)
    | st.dictionaries(short_text, st.none() | st.just({"condition": "service_started"}) | ints),
    "group_add": st.lists(ints | short_text | scalars, max_size=3),
    "device_cgroup_rules": st.lists(st.just("c 188:* rmw") | scalars, max_size=3),
    "ulimits": st.dictionaries(
        st.sampled_from(["nofile", "nproc", "memlock"]) | short_text,
        ints
        | st.sampled_from(["65535", " 1 ", "-1", "1" * 5000, "x", "\u0661"])
        | st.fixed_dictionaries({}, optional={"soft": scalars, "hard": scalars}),
        max_size=3,
    ),
    "volumes": st.lists(st.sampled_from(["data:/data", "/a:/b:ro"]) | small_trees, max_size=3),
    "command": st.sampled_from(["sleep 1", ""]) | st.lists(scalars, max_size=4),
    "build": st.sampled_from([".", "./x"]) | st.dictionaries(short_text, small_trees, max_size=3),
    "ports": st.lists(st.sampled_from(["80:80", "1-2:3-4/udp"]) | ints | small_trees, max_size=3),
    "extends": small_trees,
    "env_file": st.sampled_from([".env", ["a.env"]]) | small_trees,
    "composition": st.dictionaries(st.sampled_from(SERVICE_FIELDS), small_trees, max_size=3),
}
service_bodies = st.one_of(
    st.fixed_dictionaries(
        {}, optional={k: plausible.get(k, small_trees) | small_trees for k in SERVICE_FIELDS}
    ),
    small_trees,
)
services = st.dictionaries(
    st.sampled_from(["svc", "db", "gps", "", "$x"]) | short_text, service_bodies, max_size=3
)
compose_docs = st.one_of(
    st.fixed_dictionaries(
        {"services": services},
        optional={
            "version": st.sampled_from(["2.1", "3", "3.10", 2.1, 3, "4", ""]) | scalars,
            "name": st.sampled_from(["demo", "My Project", "$x"]) | scalars | huge_text,
            "volumes": st.dictionaries(short_text, small_trees, max_size=3) | small_trees,
            "networks": st.dictionaries(short_text, small_trees, max_size=3) | small_trees,
            "x-common": small_trees,
        },
    ),
    services,  # a fragment: services at the top level
    st.fixed_dictionaries(  # a supervisor target-state service
        {"composition": service_bodies}, optional={"serviceName": scalars, "labels": label_maps}
    ),
)


@fuzz("compose_files")
@given(compose_docs, dump_styles, st.sampled_from(["yaml", "yaml", "json", "json-tab"]))
def test_compose_shaped_files_load_or_fail_cleanly(
    doc: Any, style: dict[str, Any], form: str
) -> None:
    if form == "yaml":
        loads_or_fails_cleanly(as_yaml(doc, style))
    else:
        text = as_json(doc, "\t" if form == "json-tab" else None)
        loads_or_fails_cleanly(text, "fuzz.json")
        loads_or_fails_cleanly(text, "fuzz.yml")  # JSON is YAML too
    RAN["compose_files"] += 1


TOKENS = [
    "services:", "svc:", "image: x", "devices:", "labels:", "- ", "-", ": ", ":", "\n", "\n  ",
    "\n    ", "\n\t", "\t", " ", "&x ", "*x", "*y", "<<: *x", "<<: ", "!!binary ", "!!int ",
    "!!str ", "!!float ", "!!bool ", "!!timestamp ", "!!set ", "!!omap ", "!!pairs ", "!!null ",
    "!!merge ", "!!python/object:os.system ", "!foo ", "!<tag:x> ", "? ", "{", "}", "[", "]",
    ",", "'", '"', "|", ">-", "|+2", "#", "---", "...", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n",
    "\\x00", "\\ud800", "\\U0001f600", "\x00", "\x85", "\u2028", "\ufeff", "\ud800",
    "0x" + "f" * 1100, "0x" + "f" * 4000, "1" * 5000, "0o777", "0x1F", "1_0", "-.inf", ".NaN",
    "2001-12-14", "2001-13-45", "true", "no", "~", "null", "$", "${A}", "${A:-x}", "$$",
    "/dev/ttyUSB0:/dev/x:rwm", "io.hwprov.device.x: ", "kind=serial, vendor=0403", "=",
]  # fmt: skip
yaml_text = st.lists(st.sampled_from(TOKENS) | short_text, max_size=30).map("".join)


@fuzz("yaml_text")
@given(yaml_text)
def test_any_text_loads_or_fails_cleanly(text: str) -> None:
    loads_or_fails_cleanly(text)
    loads_or_fails_cleanly(text, "fuzz.json")
    RAN["yaml_text"] += 1


SEEDS = [
    """version: "2.1"
x-common: &common
  restart: unless-stopped
  labels:
    io.balena.features.dbus: "1"
services:
  gps:
    <<: *common
    image: busybox
    devices:
      - /dev/ttyUSB0:/dev/gps:rw
      - source: /dev/i2c-1
    labels:
      io.hwprov.device.env: "kind=i2c, sensor=bme280, address=0x76"
      io.hwprov.device.bt: "kind=bluetooth, optional"
      io.hwprov.on-unplug: stop
    environment: [A=1, "B=${B:-x}", DEV]
    cap_add: [SYS_RAWIO]
    privileged: true
    network_mode: "service: db"
    depends_on: {db: {condition: service_started}}
    ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 65535}
    group_add: [dialout, 20]
  db:
    image: postgres
    command: ["postgres", "-c", 1]
    volumes: ["data:/var/lib/postgresql/data"]
volumes:
  data:
""",
    '{"services": {"a": {"image": "x", "devices": ["/dev/mem"], "labels": ['
    '"io.hwprov.device.s=kind=serial, vendor=0403, path=/dev/gps"], "privileged": true,'
    ' "restart": false, "ports": [80]}}, "version": "3.9"}',
    "composition:\n  image: x\n  devices: [/dev/gpiomem]\nserviceName: main\nlabels: {a: b}\n",
    "main:\n  image: x\n  privileged: yes\nother:\n  build: .\n",
]
edit = st.tuples(
    st.sampled_from(["insert", "delete", "replace", "tabify", "duplicate-line"]),
    st.floats(0, 1),
    st.integers(0, 12),
    st.sampled_from(TOKENS) | short_text,
)


def damaged(text: str, edits: list[tuple[str, float, int, str]]) -> str:
    for kind, where, length, insert in edits:
        at = int(where * len(text))
        if kind == "insert":
            text = text[:at] + insert + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + length :]
        elif kind == "replace":
            text = text[:at] + insert + text[at + length :]
        elif kind == "tabify":
            text = text[:at] + text[at:].replace("  ", "\t", length or 1)
        else:
            lines = text.splitlines(keepends=True)
            index = min(int(where * len(lines)), len(lines) - 1)
            text = "".join(lines[: index + 1] + lines[index:]) if lines else text
    return text


def nested(shape: str, depth: int, links: int) -> str:
    """A file nested `depth` levels deep in one of several styles, or (`links` > 1) as a chain
    of anchors each nesting the one before: generated trees are never this deep, and it took
    a hand-written case to find that the reader overflowed its stack from 250 levels."""
    if shape == "defaults":  # ${NOPE:-${NOPE:-...}} in a value
        return f"services:\n  a:\n    image: '{'${NOPE:-' * depth}x{'}' * depth}'\n"
    if shape == "depends":  # a chain of services, each depending on the next
        chain = "".join(f"  s{i}: {{depends_on: [s{i + 1}]}}\n" for i in range(depth))
        return "services:\n" + chain
    if shape == "block-maps":
        body = "".join("  " * (i + 2) + f"k{i}:\n" for i in range(depth))
    elif shape == "block-lists":
        body = "    x-deep:\n      " + "- " * depth + "x\n"
    elif shape == "flow":
        body = "    x-deep: " + "[{a: " * depth + "x" + "}]" * depth + "\n"
    else:  # block mappings and lists in turn, as a compose file nests
        lines, indent = [], 4
        for i in range(depth):
            lines.append(" " * indent + (f"- k{i}:" if i % 2 else f"k{i}:"))
            indent += 4 if i % 2 else 2
        body = "\n".join(lines) + "\n"
    if links <= 1:
        return "services:\n  a:\n" + body
    per_link = max(depth // links, 1)
    chain = "".join(
        f"x-{j}: &a{j} " + "[" * per_link + (f"*a{j - 1}" if j else "x") + "]" * per_link + "\n"
        for j in range(links)
    )
    return chain + f"services:\n  a:\n    x-deep: *a{links - 1}\n    x-again: *a{links - 1}\n"


@fuzz("nested")
@given(
    st.sampled_from(["block-maps", "block-lists", "flow", "mixed", "defaults", "depends"]),
    st.integers(1, 600),
    st.integers(0, 30),
)
def test_deeply_nested_files_load_or_fail_cleanly(shape: str, depth: int, links: int) -> None:
    text = nested(shape, depth, links)
    loads_or_fails_cleanly(text)
    loads_or_fails_cleanly(text, "fuzz.json")
    RAN["nested"] += 1


@fuzz("damaged_files")
@given(st.sampled_from(SEEDS), st.lists(edit, min_size=1, max_size=4))
def test_a_damaged_valid_file_loads_or_fails_cleanly(
    seed: str, edits: list[tuple[str, float, int, str]]
) -> None:
    text = damaged(seed, edits)
    loads_or_fails_cleanly(text)
    loads_or_fails_cleanly(text, "fuzz.json")
    RAN["damaged_files"] += 1


def _encoded(text: str, codec: str) -> bytes:
    return text.encode(codec, "replace")


file_bytes = st.one_of(
    st.binary(max_size=300),
    st.builds(
        _encoded,
        st.sampled_from(SEEDS) | yaml_text,
        st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "utf-32", "latin-1"]),
    ),
    st.builds(  # a valid file with bytes inserted: invalid UTF-8, NULs, a stray BOM
        lambda seed, where, junk: seed[:where] + junk + seed[where:],
        st.sampled_from([s.encode() for s in SEEDS]),
        st.integers(0, max(len(s) for s in SEEDS)),
        st.binary(min_size=1, max_size=8) | st.sampled_from([b"\xff", b"\xc3", b"\xef\xbb\xbf"]),
    ),
)
dotenv_lines = st.lists(
    st.sampled_from(["A=1", "export B='x'", 'C="${A}\\n"', "#c", "", "D", "=x", "E='open",
                     'F="open', "G=a #c", "H=${NOPE:?gone}", "I=$", "J=${A", " K = v "])
    | short_text,
    max_size=6,
).map("\n".join)  # fmt: skip
dotenv_bytes = st.binary(max_size=60) | dotenv_lines.map(lambda t: t.encode("utf-8", "replace"))


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    for folder in ("plain", "with-env"):
        (root / folder).mkdir()
    return root


@fuzz("files_of_bytes")
@given(
    file_bytes,
    st.sampled_from(["docker-compose.yml", "compose.json", "c.yaml"]),
    st.none() | dotenv_bytes,
)
def test_a_file_of_any_bytes_loads_or_fails_cleanly(
    fuzz_dir: Path, content: bytes, name: str, dotenv: bytes | None
) -> None:
    folder = fuzz_dir / ("plain" if dotenv is None else "with-env")
    path = folder / name
    path.write_bytes(content)
    if dotenv is not None:
        (folder / ".env").write_bytes(dotenv)
    try:
        project = load_project(path, env=ENV)
    except ComposeError as err:
        check_compose_error(err, str(folder))
    else:
        check_project(project, str(path))
    RAN["files_of_bytes"] += 1


# -- match labels -------------------------------------------------------------------------------

DETAIL_KEYS = ["bus", "vendor_id", "model_id", "serial", "by_id", "usb_port", "role", "adapter",
               "driver", "probe_error", "a.b", "", "role "]  # fmt: skip
MODELS = ["bme280", "sht3x", "BME280", "", "ads1115"]
# A third-party probe may record an address that is not hex: an address= filter skips it.
probe_addresses = (
    st.integers(0, 0x7F).map("0x{:02x}".format)
    | st.sampled_from(["0x0", "0X76", "76", "0x1ff", "-0x1", "0x_7"])
    | short_text
)
probed = st.builds(
    ProbedDevice,
    address=probe_addresses,
    model=st.none() | st.sampled_from(MODELS) | short_text,
    state=st.sampled_from(["identified", "unknown", "busy", ""]),
)
text_or_none = st.none() | wild_text
hardware = st.builds(
    Hardware,
    id=short_text,
    kind=st.sampled_from([*Kind, "spi", ""]) | short_text,
    name=st.sampled_from(["ttyUSB0", "i2c-1", "hci0", "mem", "gpiochip0"]) | wild_text,
    plugin=st.sampled_from(["i2c", "serial", "gpio", "bluetooth", "spidev"]) | short_text,
    sys_path=wild_text,
    node=st.none() | st.sampled_from(["/dev/ttyUSB0", "/dev/i2c-1", "/dev/mem", ""]) | wild_text,
    major=st.none() | ints,
    minor=st.none() | ints,
    node_gid=st.none() | ints,
    node_mode=st.none() | ints,
    links=st.lists(wild_text, max_size=3).map(tuple),
    details=st.dictionaries(
        st.sampled_from(DETAIL_KEYS) | short_text, wild_text | huge_text, max_size=6
    ).map(Props),
    probed=st.lists(probed, max_size=3).map(tuple),
    explicit_only=st.booleans(),
)


def check_match_or_error(slot: str, value: object) -> HardwareMatch | None:
    try:
        match = parse_match(slot, value)
    except LabelSyntaxError as err:
        assert str(err).strip()
        return None
    assert isinstance(match, HardwareMatch) and match.filters
    assert match.container_path is None or match.container_path.startswith("/")
    assert isinstance(match.describe(), str)
    return match


@fuzz("match_labels")
@given(short_text, label_values | scalars | trees, st.lists(hardware, max_size=2))
def test_match_labels_parse_or_say_why_and_match_with_a_bool(
    slot: str, value: object, attached: list[Hardware]
) -> None:
    match = check_match_or_error(slot, value)
    if match is not None:
        for hw in [*attached, *ATTACHED]:
            assert match.matches(hw) in (True, False)
    RAN["match_labels"] += 1


devices_of_service = st.lists(
    st.builds(DeviceMapping, wild_text, wild_text, st.none() | short_text, st.none() | ints),
    max_size=3,
).map(tuple)
service_records = st.builds(
    Service,
    name=short_text,
    line=ints,
    devices=devices_of_service,
    cap_add=st.lists(short_text, max_size=3).map(tuple),
    privileged=st.booleans(),
    network_mode=st.none() | short_text,
    labels=label_maps.map(lambda m: Props({k: "" if v is None else v for k, v in m.items()})),
)


@fuzz("requirements")
@given(service_records, short_text | st.just(""))
def test_requirements_of_any_service_or_a_compose_error(service: Service, source: str) -> None:
    for helper in (match_labels, enabled):
        helper(service.labels)
    try:
        on_unplug(service.labels)
    except LabelSyntaxError as err:
        assert str(err)
    try:
        req = requirements_of(service, source)
    except ComposeError as err:
        assert err.message.strip() and str(err).startswith(source)
    else:
        assert isinstance(req, Requirements) and req.service == service.name
        assert req.on_unplug is None or isinstance(req.on_unplug, UnplugPolicy)
        assert all(isinstance(m, HardwareMatch) for m in req.matches)
    RAN["requirements"] += 1


# -- the inventory and the plugins --------------------------------------------------------------

SUBSYSTEMS = ["tty", "i2c-dev", "i2c", "gpio", "bcm2835-gpiomem", "rpi-gpiomem", "mem",
              "bluetooth", "usb", "usb-serial", "platform", "spidev", "input", "",
              "TTY"]  # fmt: skip
SYS_NAMES = ["i2c-1", "i2c-", "i2c-\u0661", "i2c-²", "i2c-" + "9" * 30, "ttyUSB0", "ttyAMA0",
             "gpiochip0", "gpiochip", "mem", "hci0", "hci0:11", "gpiomem", "", "tty1"]  # fmt: skip
DEVTYPES = [None, "host", "usb_device", "usb_interface", "i2c_client", "i2c_adapter", "link", ""]
PARENTS = ["/sys/devices/platform/soc/fe804000.i2c/i2c-1",
           "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-2", "/sys/devices/virtual/tty", "/sys",
           "", "/", "/sys/devices/platform/soc/fe201000.serial/serial0/serial0-0"]  # fmt: skip
ATTRIBUTES = ["type", "port_number", "name", "label", "ngpio", *USB_ATTRIBUTES]
PROPERTIES = ["ID_SERIAL", "ID_VENDOR_ID", "ID_MODEL_ID", "DEVNAME", "MAJOR", "MINOR",
              "SUBSYSTEM", "DEVPATH", "ID_PATH", "DEVLINKS"]  # fmt: skip
garbage_values = st.one_of(
    wild_text,
    st.sampled_from([*NUMBERS, "0403", "6001", "00", "0", "4", "1-2", "1.3", ""]),
    huge_text,
)
attribute_maps = st.dictionaries(
    st.sampled_from(ATTRIBUTES) | short_text, garbage_values, max_size=5
).map(Props)
ancestors = st.builds(
    Ancestor,
    sys_path=st.sampled_from(PARENTS) | wild_text,
    subsystem=st.sampled_from(["usb", "usb-serial", "i2c", "platform", "serial", None])
    | short_text,
    devtype=st.sampled_from(DEVTYPES) | short_text,
    driver=st.none() | st.sampled_from(["ftdi_sio", "usb", "btusb"]) | short_text,
    attributes=attribute_maps,
)
generated_devices = st.builds(
    UdevDevice,
    sys_path=st.builds("{}/{}".format, st.sampled_from(PARENTS), st.sampled_from(SYS_NAMES))
    | wild_text,
    subsystem=st.sampled_from(SUBSYSTEMS) | short_text,
    sys_name=st.sampled_from(SYS_NAMES) | wild_text,
    devtype=st.sampled_from(DEVTYPES) | short_text,
    driver=text_or_none,
    node=st.none() | st.sampled_from(["/dev/ttyUSB0", "/dev/i2c-1", "/dev/mem", ""]) | wild_text,
    major=st.none() | ints,
    minor=st.none() | ints,
    node_gid=st.none() | ints,
    node_mode=st.none() | ints,
    properties=st.dictionaries(
        st.sampled_from(PROPERTIES) | short_text, garbage_values, max_size=4
    ).map(Props),
    attributes=attribute_maps,
    links=st.lists(st.sampled_from(["/dev/serial/by-id/x", "/dev/serial/by-path/"]) | wild_text,
                   max_size=3).map(tuple),
    ancestors=st.lists(ancestors, max_size=3).map(tuple),
)  # fmt: skip
field_overrides = st.fixed_dictionaries(
    {},
    optional={
        "subsystem": st.sampled_from(SUBSYSTEMS),
        "sys_name": st.sampled_from(SYS_NAMES) | wild_text,
        "devtype": st.sampled_from(DEVTYPES),
        "node": st.none() | wild_text,
        "major": st.none() | ints,
        "minor": st.none() | ints,
        "node_mode": st.none() | ints,
        "attributes": attribute_maps,
        "links": st.lists(wild_text, max_size=2).map(tuple),
        "ancestors": st.lists(ancestors, max_size=3).map(tuple),
    },
)


def _mutated(make: Callable[[], UdevDevice], changes: dict[str, Any], parent: int) -> UdevDevice:
    device = dataclasses.replace(make(), **changes)
    if device.ancestors and "ancestors" not in changes:  # garbage in one real ancestor
        index = parent % len(device.ancestors)
        a = device.ancestors[index]
        garbage = Props({**a.attributes, "idVendor": "", "bInterfaceNumber": "zz"})
        a = dataclasses.replace(a, attributes=garbage)
        device = dataclasses.replace(
            device, ancestors=(*device.ancestors[:index], a, *device.ancestors[index + 1 :])
        )
    return device


udev_devices = st.one_of(
    generated_devices,
    st.sampled_from(REALISTIC).map(lambda make: make()),
    st.builds(_mutated, st.sampled_from(REALISTIC), field_overrides, st.integers(0, 3)),
)


class Chaos:
    """A plugin that breaks every rule, decided by the device's path (so repeatable)."""

    AFFECTS: tuple[Any, ...] = ([1, None], "abc", 5, [], ["/sys/devices/nowhere"], (b"x",))

    @staticmethod
    def _pick(device: UdevDevice) -> int:
        return zlib.crc32(device.sys_path.encode("utf-8", "surrogatepass")) % 11

    @hookimpl
    def hwprov_classify(self, device: UdevDevice) -> Any:
        pick = self._pick(device)
        if pick == 0:
            raise ValueError(f"chaos cannot read {device.sys_name!r}")
        if pick == 1:
            raise KeyError(device.sys_path)
        if pick == 2:
            return "not a Hardware record"
        if pick == 3:
            return device.properties["ID_NOPE"]  # KeyError, as a sloppy plugin would
        return None

    @hookimpl
    def hwprov_affects(self, device: UdevDevice) -> Any:
        pick = self._pick(device)
        if pick == 4:
            raise RuntimeError("chaos")
        return self.AFFECTS[pick % len(self.AFFECTS)]

    @hookimpl
    def hwprov_grant(self, hardware: Hardware) -> Any:
        if zlib.crc32(hardware.id.encode("utf-8", "surrogatepass")) % 5 == 0:
            raise TypeError("chaos grant")
        return None


def host_with_chaos() -> PluginHost:
    host = PluginHost().load(eps=[])
    host.register(Chaos(), "chaos")
    return host


CHAOS = host_with_chaos()  # loading plugins costs more than a case: one host, problems cleared


def fresh_host(chaos: bool) -> PluginHost:
    host = CHAOS if chaos else HOST
    host.problems.clear()
    return host


def check_events(changes: object, inventory: Inventory) -> None:
    assert isinstance(changes, list)
    for change in changes:
        assert isinstance(change, HardwareEvent), change
        assert isinstance(change.action, Action) and isinstance(change.hardware, Hardware)
    assert all(isinstance(hw, Hardware) for hw in inventory.hardware())


batches = st.lists(
    st.lists(st.tuples(st.sampled_from(Action), st.integers(0, 5)), max_size=6), max_size=3
)


@fuzz("inventory")
@given(st.lists(udev_devices, min_size=1, max_size=6), batches, st.booleans())
def test_the_inventory_turns_any_udev_events_into_hardware_events(
    pool: list[UdevDevice], events: list[list[tuple[Action, int]]], chaos: bool
) -> None:
    host = fresh_host(chaos)
    inventory = Inventory(host)
    check_events(inventory.load(pool[: len(pool) // 2]), inventory)
    for batch in events:
        check_events(
            inventory.apply(UdevEvent(a, pool[i % len(pool)]) for a, i in batch), inventory
        )
    check_events(inventory.resync(pool), inventory)
    # a resync ends where a fresh coldplug of the same devices does
    fresh = Inventory(host)
    check_events(fresh.load(pool), fresh)
    assert set(inventory.hardware()) == set(fresh.hardware())
    for hw in inventory.hardware():
        grant = host.grant(hw)
        assert grant is None or isinstance(grant, Grant)
    assert not chaos or all(p.plugin == "chaos" for p in host.problems), host.problems
    assert chaos or host.problems == [], host.problems
    RAN["inventory"] += 1


FAKE_BREAKS = "RuntimeError: a fake bus that breaks"


class FakeBus:
    """An I2C bus whose every answer is random: values, OSErrors, or something worse."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def _answer(self) -> int:
        roll = self.rng.random()
        if roll < 0.3:
            code = self.rng.choice([errno.EBUSY, errno.ENXIO, errno.EIO, errno.EREMOTEIO, None])
            raise OSError(code, "fake bus")
        if roll < 0.31:
            raise TimeoutError("fake bus")
        if roll < 0.315:
            raise RuntimeError("a fake bus that breaks the SMBus contract")
        return self.rng.choice([0x60, 0x61, 0x56, 0x5400, 0x0080, 0xFF7F, -1, 1 << 20, 0])

    def read_byte(self, i2c_addr: int) -> int:
        return self._answer()

    def write_quick(self, i2c_addr: int) -> None:
        self._answer()

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        return self._answer()

    def read_word_data(self, i2c_addr: int, register: int) -> int:
        return self._answer()

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None:
        self._answer()

    def i2c_rdwr(self, *msgs: Any) -> None:
        self._answer()


@dataclasses.dataclass
class FakeIO:
    rng: random.Random
    i2c_chips: tuple[Any, ...]
    deadline: float = float("inf")  # the fake answers at once: no clock in this test

    @contextmanager
    def open_i2c(self, bus: int) -> Iterator[FakeBus]:
        if self.rng.random() < 0.1:
            raise FileNotFoundError(errno.ENOENT, f"/dev/i2c-{bus}")
        yield FakeBus(self.rng)

    def i2c_clients(self, bus: int) -> dict[int, str]:
        # What sysfs may say a driver holds: known models, other chips, junk.
        names = ("bme280", "24c32", "", "bm\u00e9280", "x" * 300)
        return {self.rng.randrange(0, 0x80): self.rng.choice(names) for _ in range(3)}


i2c_devices = st.builds(
    lambda n, name, changes: dataclasses.replace(i2c_bus(n), sys_name=name, **changes),
    st.integers(0, 3),
    st.sampled_from(["i2c-1", "i2c-\u0661", "i2c-²", "i2c-" + "9" * 30, "i2c-0"]),
    st.fixed_dictionaries({}, optional={"attributes": attribute_maps, "node": wild_text}),
)
i2c_clients = st.builds(
    lambda n: UdevDevice(
        sys_path=f"/sys/devices/platform/soc/fe804000.i2c/i2c-{n}/{n}-0076",
        subsystem="i2c", sys_name=f"{n}-0076", devtype="i2c_client",
        ancestors=(Ancestor(f"/sys/devices/platform/soc/fe804000.i2c/i2c-{n}", "i2c",
                            "i2c_adapter", None),),
    ),
    st.integers(0, 3),
)  # fmt: skip


@fuzz("probe")
@given(
    st.lists(i2c_devices | i2c_clients | udev_devices, min_size=1, max_size=5),
    st.randoms(use_true_random=False),
    st.booleans(),
)
def test_probing_a_bus_that_answers_at_random_ends_in_hardware_events(
    devices: list[UdevDevice], rng: random.Random, chaos: bool
) -> None:
    host = fresh_host(chaos)
    chips = tuple(host.i2c_chips())
    inventory = Inventory(host, probe_io=lambda: FakeIO(rng, chips))
    check_events(inventory.load(devices), inventory)
    check_events(inventory.apply(UdevEvent(Action.CHANGE, d) for d in reversed(devices)), inventory)
    for hw in inventory.hardware():
        assert all(isinstance(p, ProbedDevice) for p in hw.probed)
    # Bus errors are data; only a fake that breaks the SMBus contract makes the i2c plugin fail.
    for problem in host.problems:
        assert problem.plugin == "chaos" or problem.error.startswith(FAKE_BREAKS), problem
    RAN["probe"] += 1


# -- the planner --------------------------------------------------------------------------------

dev_paths = st.sampled_from(["/dev/ttyUSB0", "/dev/i2c-1", "/dev/mem", "/dev/gpiomem", "/dev/",
                             "/dev/bus/usb", "/var/run", "relative", ""]) | wild_text  # fmt: skip
node_infos = st.builds(
    NodeInfo,
    path=dev_paths,
    resolved=st.none() | dev_paths,
    type=st.sampled_from(NodeType),
    major=st.none() | ints,
    minor=st.none() | ints,
    members=st.lists(
        st.builds(NodeInfo, dev_paths, dev_paths, st.sampled_from(NodeType), ints, ints),
        max_size=3,
    ).map(tuple),
)
parsed_matches = label_values.map(
    lambda v: check_match_or_error("slot", v) or parse_match("slot", "kind=serial, optional")
) | st.sampled_from(["kind=serial", "kind=i2c, sensor=bme280, address=0x76", "name=*, optional",
                     "vendor=0403, path=/dev/gps", "detail.role=mem", "node=/dev/mem"]).map(
    lambda v: parse_match("s", v)
)  # fmt: skip
names = st.sampled_from(["svc", "db", "", "SYS_RAWIO", "é", "\x00"]) | short_text
requirements = st.builds(
    Requirements,
    service=names,
    where=st.just("fuzz.yml:3"),
    nodes=st.lists(
        st.builds(DeclaredNode, dev_paths, dev_paths, st.none() | names, st.just("fuzz.yml:4")),
        max_size=4,
    ).map(tuple),
    matches=st.lists(parsed_matches, max_size=3).map(tuple),
    capabilities=st.lists(names, max_size=3).map(tuple),
    features=st.lists(st.sampled_from([*FEATURES, "nope"]) | short_text, max_size=3).map(tuple),
    network_mode=st.none() | st.sampled_from(["host", "bridge"]) | short_text,
    privileged=st.booleans(),
    enabled=st.booleans(),
    on_unplug=st.none() | st.sampled_from(UnplugPolicy),
)
grants = st.builds(
    Grant,
    hardware_id=names,
    reason=names,
    devices=st.lists(
        st.builds(DeviceNode, dev_paths, dev_paths, st.sampled_from(["rw", "", "x"]) | short_text,
                  st.none() | ints, st.none() | ints, st.sampled_from(["c", "b", ""])),
        max_size=3,
    ).map(tuple),
    capabilities=st.lists(names, max_size=2).map(tuple),
    group_add=st.lists(names, max_size=2).map(tuple),
    network_mode=st.none() | st.sampled_from(["host"]) | short_text,
    mounts=st.lists(st.builds(Mount, wild_text, wild_text, st.booleans()), max_size=2).map(tuple),
    env=st.dictionaries(short_text, wild_text, max_size=2).map(Props),
)  # fmt: skip


def check_plan(plan: Plan, reqs: list[Requirements]) -> None:
    assert isinstance(plan, Plan)
    assert sorted(s.service for s in plan.services) == sorted(r.service for r in reqs)
    for service in plan.services:
        assert isinstance(service, ServicePlan) and service.privileged is False
    json.dumps(plan.to_json())


@fuzz("planner")
@given(
    st.lists(requirements, min_size=1, max_size=3),
    st.lists(hardware, max_size=3),
    st.lists(st.none() | grants, min_size=1, max_size=3),
    st.lists(node_infos, max_size=4),
    st.booleans(),
)
def test_the_planner_plans_any_requirements_over_any_hardware(
    reqs: list[Requirements],
    generated: list[Hardware],
    grant_pool: list[Grant | None],
    infos: list[NodeInfo],
    plugin_grants: bool,
) -> None:
    attached = [*ATTACHED, *generated]
    nodes = node_facts([n.host for r in reqs for n in r.nodes]) | {i.path: i for i in infos}

    def generated_grant(hw: Hardware) -> Grant | None:
        return grant_pool[zlib.crc32(hw.id.encode("utf-8", "surrogatepass")) % len(grant_pool)]

    grant = HOST.grant if plugin_grants else generated_grant
    for req in reqs:
        plan = plan_service(req, attached, grant, nodes)
        assert isinstance(plan, ServicePlan) and plan.service == req.service
        assert plan.managed == req.enabled
    check_plan(make_plan("fuzz.yml", reqs, attached, grant, nodes, ["w"]), reqs)
    RAN["planner"] += 1


def test_the_fuzz_tests_ran_their_examples() -> None:
    if set(RAN) != set(EXAMPLES):
        pytest.skip("only the whole module counts its examples")
    total = sum(RAN.values())
    print(f"\nfuzz examples run: {total} ({dict(RAN)})")
    assert sum(EXAMPLES.values()) >= 10_000
    # Hypothesis stops early only when a strategy runs out of new values; none of these can.
    assert total >= 10_000, dict(RAN)
