"""The daemon's decision log: one line per decision on stderr, JSON or `event key=value` text.

The lines are the daemon's interface to people and to labs (docs/json.md): benches and tests
wait on exact events instead of polling a log file.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

LOG_FORMATS = ("json", "text")


@dataclass
class Decisions:
    format: str = "json"
    stream: TextIO = field(default_factory=lambda: sys.stderr)

    def __call__(self, event: str, **fields: Any) -> None:
        if self.format == "text":
            parts = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in fields.items()]
            line = " ".join([time.strftime("%H:%M:%S"), event, *parts])
        else:
            line = json.dumps({"ts": round(time.time(), 3), "event": event, **fields})
        print(line, file=self.stream, flush=True)
