"""Every JSON document hwprov prints names its schema, and every schema is documented."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hwprov.commands.main import main
from hwprov.commands.output import print_outcome
from hwprov.containers.outcome import Outcome, OutcomeAction
from hwprov.daemon.decisions import Decisions
from hwprov.schemas import Schema, versioned

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_schema_has_a_row_and_an_example_in_json_md() -> None:
    text = (DOCS / "json.md").read_text()
    rows = set(re.findall(r"^\| `(hwprov\.[a-z]+/v\d+)` \|", text, re.M))
    assert rows == {str(s) for s in Schema}
    for schema in Schema:
        assert f'"schema": "{schema}"' in text, f"{schema}: no example in docs/json.md"


def test_the_schema_comes_first_and_replaces_one_already_there() -> None:
    doc = versioned(Schema.PLAN, {"source": "x", "schema": "old"})
    assert list(doc.items()) == [("schema", "hwprov.plan/v1"), ("source", "x")]


def test_each_decision_line_names_its_schema() -> None:
    out = io.StringIO()
    emit = Decisions("json", out)
    emit("started", project="p")
    emit("stopping")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(d["schema"], d["event"]) for d in lines] == [
        ("hwprov.decision/v1", "started"),
        ("hwprov.decision/v1", "stopping"),
    ]
    assert next(iter(lines[0])) == "schema" and lines[0]["project"] == "p"


def test_each_apply_line_names_its_schema() -> None:
    out = io.StringIO()
    print_outcome(Outcome("gps", "p-gps-1", OutcomeAction.RECREATED, "d", ("+ x",)), True, out)
    assert json.loads(out.getvalue()) == {
        "schema": "hwprov.apply/v1",
        "service": "gps",
        "container": "p-gps-1",
        "action": "recreated",
        "detail": "d",
        "differences": ["+ x"],
    }


@pytest.fixture
def root_level() -> Iterator[None]:
    root, last = logging.getLogger(), logging.lastResort
    before = root.level, last.level if last else None
    yield
    root.setLevel(before[0])
    if last is not None and before[1] is not None:
        last.setLevel(before[1])


def test_log_level_sets_the_root_and_the_last_resort_handler(root_level: None) -> None:
    # (pytest's own handlers stand in for the last resort here: the subprocess test of
    # `hwprov status` sees a debug line on stderr)
    assert main(["--log-level", "DEBUG", "sim", "boards"]) == 0
    assert logging.getLogger().level == logging.DEBUG
    assert logging.lastResort is not None and logging.lastResort.level == logging.DEBUG
    assert main(["--log-level", "error", "sim", "boards"]) == 0
    assert logging.getLogger().level == logging.ERROR == logging.lastResort.level


def test_a_bad_log_level_in_the_environment_is_an_error(
    root_level: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HWPROV_LOG_LEVEL", "loud")
    with pytest.raises(SystemExit) as exit:
        main(["sim", "boards"])
    assert exit.value.code == 2
    assert "HWPROV_LOG_LEVEL: expected one of debug" in capsys.readouterr().err
