"""How commands print and write what they found: the pieces more than one command uses."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from hwprov.containers.outcome import Outcome
from hwprov.plugins.host import Problem
from hwprov.schemas import Schema, versioned


def print_problems(problems: Iterable[Problem], out: TextIO = sys.stderr) -> None:
    for p in problems:
        print(f"warning: plugin {p.plugin} failed in {p.where}: {p.error}", file=out)


def print_outcome(o: Outcome, as_json: bool, out: TextIO = sys.stdout) -> None:
    if as_json:
        print(json.dumps(versioned(Schema.APPLY, o.to_json())), file=out)
        return
    print(f"{o.service}: {o.action} {o.container or ''} {o.detail}".rstrip(), file=out)
    for d in o.differences:
        print(f"    {d}", file=out)


def write_atomically(path: Path, text: str) -> None:
    """Write aside under a dot-name, then rename: no reader ever sees half a file (runtimes
    watching /etc/cdi load *.json and *.yaml as they change, and skip this name)."""
    tmp = path.with_name(f".{path.name}.hwprov-tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
