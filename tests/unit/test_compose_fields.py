"""The compose loader service field by service field: what it reads, what it refuses, where."""

from __future__ import annotations

import pytest
from hwprov.compose import DeviceMapping, FrozenMap, Project, load_project_text
from hwprov.errors import ComposeError


def one(body: str, **kw: object) -> Project:
    """A project with service `a` whose settings are `body` (indented four spaces)."""
    text = "services:\n  a:\n" + "".join(f"    {line}\n" for line in body.splitlines())
    return load_project_text(text, "c.yml", **kw)  # type: ignore[arg-type]


def error(text: str, **kw: object) -> ComposeError:
    with pytest.raises(ComposeError) as err:
        load_project_text(text, "c.yml", **kw)  # type: ignore[arg-type]
    assert str(err.value).startswith("c.yml")
    return err.value


@pytest.mark.parametrize(
    ("written", "read"),
    [("no", "no"), ("'no'", "no"), ("always", "always"), ("on-failure:3", "on-failure:3")],
)
def test_restart_is_read_as_written(written: str, read: str) -> None:
    p = one(f"restart: {written}")
    assert p.services[0].restart == read and p.warnings == ()


def test_restart_false_from_json_means_no_and_unknown_policies_warn() -> None:
    assert load_project_text('{"services": {"a": {"restart": false}}}').services[0].restart == "no"
    p = one("restart: yes")
    assert p.services[0].restart == "yes"
    assert p.warnings[0].startswith("c.yml:3: service 'a': restart 'yes' is not a policy")


def test_yaml_1_2_scalars_but_booleans_for_privileged_as_either_version_meant() -> None:
    s = one(
        "labels: {a: yes, b: on, c: 1, d: true, e: ~, f: 1.5}\nenvironment: {X: off, Y: 0x10}"
    ).services[0]
    assert dict(s.labels) == {"a": "yes", "b": "on", "c": "1", "d": "true", "e": "", "f": "1.5"}
    assert dict(s.environment) == {"X": "off", "Y": "16"}
    assert one("privileged: yes").services[0].privileged is True
    assert one("privileged: 'false'").services[0].privileged is False
    err = error("services:\n  a:\n    privileged: maybe\n")
    assert (err.line, err.column) == (3, 17) and "expected true or false" in err.message


def test_duplicate_keys_are_an_error_at_the_second_key() -> None:
    err = error("services:\n  a:\n    image: one\n    privileged: true\n    image: two\n")
    assert (err.line, err.column) == (5, 5)
    assert "duplicate key 'image' (first at line 3)" in err.message
    # Duplicates inside an anchor count too, wherever the anchor is used.
    assert "duplicate key 'b'" in error("x-a: &a {b: 1, b: 2}\nservices: {s: {<<: *a}}\n").message


def test_merges_and_extension_fields() -> None:
    text = (
        "x-base: &base\n  image: busybox\n  privileged: true\n  labels: [x=1]\n"
        "x-more: &more {restart: always, image: never-used}\n"
        "services:\n  a:\n    <<: [*base, *more]\n    privileged: false\n"
        "  b:\n    <<: *base\n    x-note: kept\n"
    )
    p = load_project_text(text, "c.yml")
    a, b = p.services
    assert (a.image, a.privileged, a.restart, dict(a.labels)) == (
        "busybox",
        False,
        "always",
        {"x": "1"},
    )
    assert b.privileged is True and b.raw["x-note"] == "kept"
    assert p.warnings == p.notes == ()  # overriding a merged key is no duplicate


def test_merge_order_follows_the_yaml_spec_not_the_pyyaml_version() -> None:
    # The first mapping listed wins, at every depth (PyYAML 6.0.4 changed its own order).
    text = (
        "x-a: &a {image: first, restart: always}\n"
        "x-b: &b {<<: *a, image: second, user: b}\n"
        "x-c: &c {image: third, user: c, working_dir: /c}\n"
        "services:\n  s: {<<: [*b, *c]}\n  t: {<<: [*c, *b], user: own}\n"
    )
    s, t = load_project_text(text, "c.yml").services
    assert (s.image, s.restart, s.raw["user"], s.raw["working_dir"]) == (
        "second",
        "always",
        "b",
        "/c",
    )
    assert (t.image, t.restart, t.raw["user"]) == ("third", "always", "own")


def test_devices_short_and_long_syntax_with_their_lines() -> None:
    p = one(
        "devices:\n"
        "  - /dev/ttyUSB0\n"
        "  # a comment between entries\n"
        "  - /dev/ttyUSB1:/dev/gps\n"
        "  - ' /dev/i2c-1:/dev/i2c-1:rw '\n"
        "  - {source: /dev/video0, target: /dev/webcam, permissions: r}\n"
        "  - source: /dev/kvm\n"
    )
    assert p.services[0].devices == (
        DeviceMapping("/dev/ttyUSB0", "/dev/ttyUSB0", None, 4),
        DeviceMapping("/dev/ttyUSB1", "/dev/gps", None, 6),
        DeviceMapping("/dev/i2c-1", "/dev/i2c-1", "rw", 7),
        DeviceMapping("/dev/video0", "/dev/webcam", "r", 8),
        DeviceMapping("/dev/kvm", "/dev/kvm", None, 9),
    )
    flow = load_project_text("services: {a: {devices: [\n  /dev/a,\n\n  /dev/b]}}\n")
    assert [d.line for d in flow.services[0].devices] == [2, 4]


def test_device_permissions_outside_rwm_load_with_a_warning() -> None:
    p = one("devices: ['/dev/x:/dev/y:rwz', '/dev/z:/dev/z:rr']")
    assert [d.permissions for d in p.services[0].devices] == ["rwz", "rr"]
    assert len(p.warnings) == 2 and p.warnings[0].startswith("c.yml:3: service 'a': devices:")


@pytest.mark.parametrize(
    ("entry", "line", "column", "needle"),
    [
        (
            "devices: /dev/kvm",
            3,
            14,
            "expected a list, got '/dev/kvm' (write one path as '- /dev/kvm')",
        ),
        ("devices: [1]", 3, 15, "expected 'host[:container[:permissions]]', got 1"),
        ("devices: ['']", 3, 15, "got ''"),
        ("devices: ['/a:/b:rw:x']", 3, 15, "got '/a:/b:rw:x'"),
        ("devices: [':/b']", 3, 15, "got ':/b'"),
        ("devices: ['/a:/b:']", 3, 15, "got '/a:/b:'"),
        ("devices: [{target: /dev/x}]", 3, 15, "the long syntax needs 'source'"),
        ("devices: [{source: /dev/x, permissions: 7}]", 3, 15, "permissions: expected rwm"),
        (
            "devices:\n  - '${DEV}'",
            4,
            9,
            "got '' after interpolating '${DEV}' (is the variable set?)",
        ),
    ],
)
def test_broken_device_entries(entry: str, line: int, column: int, needle: str) -> None:
    text = "services:\n  a:\n" + "".join(f"    {ln}\n" for ln in entry.splitlines())
    err = error(text)
    assert (err.line, err.column) == (line, column)
    assert err.message.startswith("service 'a': devices: ") and needle in err.message


def test_labels_lists_maps_and_legacy_names() -> None:
    s = one(
        "labels:\n  - io.resin.features.dbus=1\n  - io.resin.features.resin-api=1\n"
        "  - io.resin.update.strategy=kill-then-download\n  - plain=a=b\n  - bare"
    ).services[0]
    assert dict(s.labels) == {
        "io.balena.features.dbus": "1",
        "io.balena.features.balena-api": "1",
        "io.balena.update.strategy": "kill-then-download",
        "plain": "a=b",
        "bare": "",
    }
    both = one("labels: {io.resin.features.dbus: '1', io.balena.features.dbus: '0'}").services[0]
    assert dict(both.labels) == {"io.balena.features.dbus": "0"}  # the current name wins


def test_features_are_what_the_supervisor_counts_as_on() -> None:
    s = one(
        "labels:\n  io.balena.features.dbus: 1\n  io.balena.features.sysfs: 'TRUE'\n"
        "  io.balena.features.procfs: 'on'\n  io.balena.features.firmware: 'yes'\n"
        "  io.balena.features.kernel-modules: '0'\n"
        "  io.balena.features.requires.sw.supervisor: '>=6.1.0'\n  other.features.x: 1"
    ).services[0]
    assert s.features == ("dbus", "procfs", "sysfs")


def test_environment_lists_maps_and_pass_through() -> None:
    env = {"FROM_ENV": "e", "USED": "u"}
    listed = one(
        "environment:\n  - A=1\n  - B=x=y\n  - FROM_ENV\n  - UNSET\n  - 'Q=${USED}'", env=env
    )
    assert dict(listed.services[0].environment) == {"A": "1", "B": "x=y", "FROM_ENV": "e", "Q": "u"}
    mapped = one("environment: {A: 1, FROM_ENV: , UNSET: , T: true}", env=env)
    assert dict(mapped.services[0].environment) == {"A": "1", "FROM_ENV": "e", "T": "true"}
    assert "has no name" in error("services: {a: {environment: ['=1']}}").message


def test_lists_of_names_and_other_fields() -> None:
    s = one(
        "cap_add: [SYS_RAWIO, NET_ADMIN]\ncap_drop: [ALL]\ngroup_add: [dialout, 20]\n"
        "device_cgroup_rules: ['c 189:* rwm']\ndepends_on: {db: {condition: service_healthy}}\n"
        "ulimits: {core: -1, nofile: {soft: 1024, hard: '2048'}}\nnetwork_mode: 'service: db'\n"
        "command: [run, 3]\nvolumes: [data:/data, {type: bind, source: /x, target: /y}]\n"
        "container_name: x\nbuild: ./x"
    ).services[0]
    assert (s.cap_add, s.cap_drop, s.group_add) == (
        ("SYS_RAWIO", "NET_ADMIN"),
        ("ALL",),
        ("dialout", "20"),
    )
    assert s.device_cgroup_rules == ("c 189:* rwm",) and s.depends_on == ("db",)
    assert dict(s.ulimits) == {"core": (-1, -1), "nofile": (1024, 2048)}
    assert (s.network_mode, s.command, s.build) == ("service:db", ("run", "3"), "./x")
    assert s.volumes == ("data:/data", FrozenMap({"type": "bind", "source": "/x", "target": "/y"}))
    assert s.raw["container_name"] == "x"
    assert one("depends_on: [db, cache]").services[0].depends_on == ("db", "cache")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("cap_add: {a: 1}", "cap_add: expected a list, got a mapping"),
        (
            "cap_add: SYS_RAWIO",
            "cap_add: expected a list, got 'SYS_RAWIO' (write it as [SYS_RAWIO])",
        ),
        ("cap_add: [[x]]", "cap_add: item 1: expected a string, got a list"),
        ("group_add: [true]", "group_add: item 1: expected a string or a number"),
        ("labels: 7", "labels: expected a mapping or a list of KEY=VALUE"),
        ("labels: [{a: 1}]", "labels: item 1: expected KEY=VALUE"),
        ("labels: {a: [1]}", "labels: 'a': expected a string"),
        ("ulimits: {core: lots}", "ulimits: 'core': expected a number"),
        ("ulimits: {core: '" + "1" * 5000 + "'}", "ulimits: 'core': expected a number"),
        ("ulimits: [1]", "ulimits: expected a mapping"),
        ("network_mode: [host]", "network_mode: expected a string"),
        ("image: {a: 1}", "image: expected a string"),
        ("build: [x]", "build: expected a build context"),
        ("command: {a: 1}", "command: expected a string or a list"),
        ("restart: [no]", "restart: expected a restart policy"),
        ("depends_on: {db: yes}", "depends_on: 'db': expected a mapping"),
        ("volumes: data:/data", "volumes: expected a list"),
        ("volumes: [1]", "volumes: item 1"),
        ("image: ${X:?X is needed}", "image: required variable X is missing a value: X is needed"),
        ("image: cost${", "image: invalid interpolation"),
    ],
)
def test_broken_fields_name_the_service_field_and_line(body: str, needle: str) -> None:
    err = error("services:\n  a:\n    " + body + "\n")
    assert err.line == 3
    assert err.message.startswith("service 'a': ") and needle in err.message
