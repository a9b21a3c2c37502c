"""`docker compose config` as a test oracle: what the real compose v2 CLI makes of a file.

`config` needs no engine. It runs in the file's folder with exactly the environment given, so no
COMPOSE_* or DOCKER_* variable of the test run and no stray `.env` can change its answer.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path
from typing import Any


def _compose_binary() -> Path | None:
    """lab.composecli's answer, the one the engine tests use. `python -m pytest` (as
    scripts/test.sh runs it) can import `lab`; `.venv/bin/pytest` leaves the checkout root off
    sys.path, so then the same file is loaded by its path."""
    try:
        from lab.composecli import compose_binary
    except ModuleNotFoundError:
        path = Path(__file__).resolve().parents[2] / "lab" / "composecli.py"
        spec = importlib.util.spec_from_file_location("_hwprov_lab_composecli", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        compose_binary = module.compose_binary
    return compose_binary()


_FOUND = _compose_binary()
COMPOSE = _FOUND if _FOUND is not None and _FOUND.is_file() else None
# `config` writes every `$` of a value back as `$$`, so its output is itself a compose file.
# JSON, and no cross-service checks (a file may set network_mode and networks together).
_CONFIG_FLAGS = ("--format", "json", "--no-consistency")
_ESCAPED = re.compile(r"(?:[^$]|\$\$)*", re.S)


class Refused(Exception):
    """compose refused the file; the message is its stderr without the warnings."""


def config(file: Path, env: dict[str, str], project: str | None = "x") -> dict[str, Any]:
    """The project compose reads from `file` (run in its folder), its `$$` read back as `$`.

    Every profile is on (`--profile "*"`), as hwprov reads every service. `project` is passed as
    `-p`, which compose also puts into the interpolation environment as COMPOSE_PROJECT_NAME;
    None leaves the name to the file or the folder, as a user's run does.
    """
    assert COMPOSE is not None
    name = ["-p", project] if project else []
    run = subprocess.run(
        [str(COMPOSE), "-f", file.name, *name, "--profile", "*", "config", *_CONFIG_FLAGS],
        cwd=file.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if run.returncode:
        lines = [line for line in run.stderr.splitlines() if "level=warning" not in line]
        raise Refused("\n".join(lines).strip() or f"exit code {run.returncode}")
    return unescape(json.loads(run.stdout))


def unescape(value: Any) -> Any:
    """`value` with `$$` read as `$` in every string, keys too (each `$` in the output is
    doubled; a key is as written, as compose does not interpolate keys)."""
    if isinstance(value, str):
        assert _ESCAPED.fullmatch(value), f"a lone '$' in compose's output: {value!r}"
        return value.replace("$$", "$")
    if isinstance(value, dict):
        return {unescape(k): unescape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unescape(v) for v in value]
    return value
