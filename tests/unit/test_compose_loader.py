"""The compose loader on whole files: shapes, positions, errors, JSON, variables, .env."""

from __future__ import annotations

from pathlib import Path

import pytest
from hwprov.compose import FrozenMap, Project, load_project, load_project_text
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


def test_a_small_project() -> None:
    p = load_project_text(
        "version: 3.10\nname: demo\nservices:\n  a:\n    image: busybox\n"
        "volumes:\n  data:\n  other: {driver: local}\nnetworks: {}\n",
        "c.yml",
    )
    assert (p.version, p.name, p.source) == ("3.10", "demo", "c.yml")  # the text, not 3.1
    assert dict(p.volumes) == {"data": None, "other": FrozenMap({"driver": "local"})}
    assert p.service("a").image == "busybox" and p.service("a").line == 4
    assert p.warnings == p.notes == ()
    with pytest.raises(KeyError):
        p.service("b")


def test_records_are_frozen_hashable_and_equal_by_value() -> None:
    text = "services:\n  a:\n    build: {context: ., args: {A: 1}}\n    volumes: [{type: tmpfs}]\n"
    first, second = load_project_text(text), load_project_text(text)
    assert first == second and hash(first) == hash(second)
    service = first.services[0]
    assert service.build == {"context": ".", "args": {"A": 1}}
    with pytest.raises(TypeError):
        service.raw["image"] = "x"  # type: ignore[index]
    with pytest.raises(AttributeError):
        service.image = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "line", "column", "needle"),
    [
        ("", 1, 1, "the file is empty"),
        ("# only a comment\n", 1, 1, "the file is empty"),
        (
            "- just a list\n",
            1,
            1,
            "expected a mapping with 'services' at the top level, got a list",
        ),
        ("services: [a, b]\n", 1, 11, "'services' must be a mapping (name: settings), got a list"),
        ("services:\n  a: [x]\n", 2, 3, "service 'a': expected a mapping of settings"),
        ("services:\n  a:\n    image: [unclosed\n", 4, 1, "not valid YAML: expected ',' or ']'"),
        ("services:\n\ta: {}\n", 2, 1, "(YAML does not allow tabs for indentation)"),
        ("a: 1\n---\nb: 2\n", 2, 1, "expected a single document"),
        ("services:\n  a: {image: \x07}\n", 2, 14, "not valid YAML: special characters"),
        ("services:\n  a:\n    image: !!int x\n", 3, 12, "'x' is not an integer"),
        ("services: {a: &a {b: *a}}\n", 1, 15, "recursive"),
        ("? [a]\n: b\n", 1, 3, "expected a plain key"),
        (
            "services:\n  a:\n  image: x\n  image: y\n",
            4,
            3,
            "duplicate key 'image' (first at line 3)",
        ),
    ],
)
def test_broken_files_name_line_column_and_what_was_expected(
    text: str, line: int, column: int, needle: str
) -> None:
    err = error(text)
    assert (err.line, err.column) == (line, column) and needle in err.message
    assert str(err).startswith(f"c.yml:{line}:{column}: ")


def test_alias_bombs_and_deep_nesting_are_refused_cleanly() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdef", "bcdefg", strict=True)
    )
    assert "aliases expand to more than" in error(bomb).message
    assert "nested more than 100 levels deep" in error("services: " + "[" * 3000).message


def test_start_order_puts_dependencies_first_however_long_the_chain() -> None:
    cycle = "services:\n  web: {depends_on: [db, cache]}\n  db: {depends_on: [web]}\n  cache: {}\n"
    assert load_project_text(cycle, "c.yml").start_order() == ["db", "cache", "web"]
    # one function call per link once ran out of Python's stack (RecursionError) from ~500
    chain = "".join(f"  s{i}: {{depends_on: [s{i + 1}]}}\n" for i in range(2000))
    order = load_project_text("services:\n" + chain, "c.yml").start_order()
    assert order == [f"s{i}" for i in range(2000, -1, -1)]  # s2000 is no service: named anyway


def test_deep_block_nesting_and_chained_aliases_are_refused_cleanly() -> None:
    # Both read as values nested hundreds deep, which the reader's own walks (freezing,
    # counting) then overflowed: a RecursionError out of the loader.
    deep = "services:\n  a:\n" + "".join("  " * (i + 2) + f"k{i}:\n" for i in range(300))
    chain = "".join(
        f"x-{j}: &a{j} " + "[" * 60 + (f"*a{j - 1}" if j else "x") + "]" * 60 + "\n"
        for j in range(20)
    )
    for text in (deep, chain + "services: {}\n"):
        assert error(text).message == "not valid YAML: nested more than 100 levels deep"
    assert one("x-deep: " + "[" * 95 + "]" * 95).services[0].raw["x-deep"]  # deep, but fine


def test_integers_too_long_to_print_are_refused_cleanly() -> None:
    # Python writes no int of more than 4300 digits as text: these raised a bare ValueError.
    huge_hex = "0x" + "f" * 4000
    json = '{"services": {"a": {"image": ' + "1" * 5000 + "}}}"
    for text, source, line, column in [
        (f"services:\n  a:\n    image: {huge_hex}\n", "c.yml", 3, 12),
        (f"services:\n  a:\n    labels: {{a: {huge_hex}}}\n", "c.yml", 3, 17),
        (f"services:\n  a:\n    group_add: [{huge_hex}]\n", "c.yml", 3, 17),
        (f"version: {huge_hex}\nservices: {{}}\n", "c.yml", 1, 10),
        (json, "c.json", 1, 30),
        (json, "c.yml", 1, 30),
    ]:
        with pytest.raises(ComposeError) as err:
            load_project_text(text, source)
        assert (err.value.line, err.value.column) == (line, column)
        assert err.value.message.endswith("...' is not an integer of at most 1000 digits")
        assert len(err.value.message) < 120
    assert one("image: 0x" + "f" * 1000).services[0].image == str(16**1000 - 1)


def test_json_with_tabs_positions_and_duplicate_keys() -> None:
    text = '{\n\t"services": {\n\t\t"a": {"image": "x", "devices": ["/dev/ttyUSB0"]}\n\t}\n}\n'
    p = load_project_text(text, "t.json")
    assert p.services[0].devices[0].line == 3 and p.services[0].line == 3
    with pytest.raises(ComposeError) as err:
        load_project_text('{"services": {}\n,}', "t.json")
    assert (err.value.line, err.value.column) == (2, 2) and "not valid JSON" in err.value.message
    with pytest.raises(ComposeError) as err:
        load_project_text('{"services": {}, "services": {}}', "t.json")
    assert "duplicate key 'services'" in err.value.message
    flow = load_project_text("{services: {a: {image: x}}}", "flow.yml")  # YAML, not JSON
    assert flow.services[0].image == "x"


def test_composition_wrappers_and_fragments() -> None:
    v3 = load_project_text(
        '{"services": {"main": {"image": "img", "labels": {"l": "1"},\n'
        '  "composition": {"network_mode": "host", "labels": {"c": "2"}}}}}'
    )
    main = v3.services[0]
    assert (main.image, main.network_mode, dict(main.labels)) == ("img", "host", {"c": "2"})
    fragment = load_project_text("zigbee:\n  image: z\n  devices: [/dev/ttyACM0]\nx-y: {}\n")
    assert [s.name for s in fragment.services] == ["zigbee"]
    assert "a fragment" in fragment.warnings[0]
    empty = load_project_text("volumes: {data: }\n")
    assert empty.services == () and "nothing that looks like a service" in empty.warnings[0]


def test_notes_name_what_the_supervisor_ignores() -> None:
    p = one(
        "image: x\ncontainer_name: y\ndevice_cgroup_rules: ['c 1:3 mr']\nx-ext: 1\nexpose: [80]"
    )
    assert p.notes == (
        "c.yml:2: service 'a': the balena supervisor ignores container_name, device_cgroup_rules",
    )


def test_variables_come_from_env_over_dotenv_and_unset_ones_warn() -> None:
    p = one(
        "image: ${IMG}:${TAG}\nlabels: ['a=${NOPE}']",
        env={"IMG": "env"},
        dotenv={"IMG": "file", "TAG": "1"},
    )
    assert p.services[0].image == "env:1"
    assert p.warnings == ("c.yml:4: variable NOPE is not set: read as an empty string",)
    named = load_project_text("name: proj\nservices:\n  a:\n    image: ${COMPOSE_PROJECT_NAME}-a\n")
    assert named.services[0].image == "proj-a"


def test_load_project_reads_dotenv_and_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(
        "services:\n  a:\n    devices: ['${DEV}:/dev/gps']\n    image: ${IMG:-busybox}\n"
    )
    (tmp_path / ".env").write_text("export DEV='/dev/ttyUSB1'\n")
    monkeypatch.setenv("IMG", "from-process")
    assert load_project(compose).services[0].image == "from-process"  # env=None: os.environ
    p = load_project(compose, env={"DEV": "/dev/x"})
    assert (p.services[0].devices[0].host, p.services[0].image) == ("/dev/x", "busybox")
    assert load_project(compose, env={}).services[0].devices[0].host == "/dev/ttyUSB1"
    (tmp_path / ".env").write_text("DEV=1\noops\n")
    with pytest.raises(ComposeError) as err:
        load_project(compose, env={})
    assert str(err.value) == f"{tmp_path / '.env'}:2:1: expected KEY=VALUE, got 'oops'"
    with pytest.raises(ComposeError) as err:
        load_project(tmp_path / "missing.yml")
    assert "cannot read the file" in str(err.value) and err.value.line is None
