"""Raw results as JSON, one file per run: bench/results/<timestamp>.json (gitignored)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.figure import Figure

RESULTS = Path(__file__).parent / "results"


def _finite(value: Any) -> Any:
    # JSON has no NaN: a missing measurement is null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def save(
    figures: Sequence[Figure],
    machine: Mapping[str, Any],
    options: Mapping[str, Any],
    started: float,
    folder: Path = RESULTS,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.localtime(started)
    path = folder / f"{time.strftime('%Y%m%dT%H%M%S', stamp)}.json"
    doc = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", stamp),
        "machine": dict(machine),
        "options": dict(options),
        "figures": [f.to_json() for f in figures],
    }
    path.write_text(json.dumps(_finite(doc), indent=1) + "\n")
    return path
