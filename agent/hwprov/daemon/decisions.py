"""The daemon's decision log: one line per decision on stderr, JSON or `event key=value` text.

The lines are the daemon's interface to people and to labs (docs/json.md): benches and tests
wait on exact events instead of polling a log file. Log records go out the same way (`log`
lines), so a reader of the JSON stream never meets a line that does not parse.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from hwprov.schemas import Schema, versioned

LOG_FORMATS = ("json", "text")


@dataclass
class Decisions:
    format: str = "json"
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    # Log lines come from helper threads too: one write per line, one line at a time.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __call__(self, event: str, **fields: Any) -> None:
        if self.format == "text":
            parts = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in fields.items()]
            line = " ".join([time.strftime("%H:%M:%S"), event, *parts])
        else:
            doc = {"ts": round(time.time(), 3), "event": event, **fields}
            line = json.dumps(versioned(Schema.DECISION, doc))
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


class LogLines(logging.Handler):
    """Log records (hwprov's, a library's, a plugin's) as `log` decision lines, so that with
    `--log-format json` every line on stderr is JSON."""

    def __init__(self, decisions: Decisions) -> None:
        super().__init__()
        self.decisions = decisions

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields: dict[str, Any] = {
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            }
            if record.exc_info:
                fields["traceback"] = _FORMAT.formatException(record.exc_info)
            self.decisions("log", **fields)
        except Exception:
            self.handleError(record)


_FORMAT = logging.Formatter()


@contextmanager
def logs_as_decisions(decisions: Decisions) -> Iterator[None]:
    """While entered, log records, warnings, the traceback of a thread that dies and an
    exception Python can only ignore go out as `log` lines through `decisions` instead of as
    plain text."""
    root = logging.getLogger()
    handler = LogLines(decisions)
    old_hook = threading.excepthook

    def thread_died(hook: threading.ExceptHookArgs) -> None:
        if hook.exc_type is SystemExit:
            return  # what the default hook ignores too
        name = hook.thread.name if hook.thread is not None else "?"
        exc_info = (hook.exc_type, hook.exc_value or hook.exc_type(), hook.exc_traceback)
        logging.getLogger("hwprov.threads").error("thread %s died", name, exc_info=exc_info)

    def ignored(hook: sys.UnraisableHookArgs) -> None:  # an exception in a __del__, say
        exc_info = (hook.exc_type, hook.exc_value or hook.exc_type(), hook.exc_traceback)
        what = hook.err_msg or "Exception ignored in"
        logging.getLogger("hwprov").error("%s: %r", what, hook.object, exc_info=exc_info)

    old_unraisable = sys.unraisablehook
    root.addHandler(handler)
    logging.captureWarnings(True)
    threading.excepthook = thread_died
    sys.unraisablehook = ignored
    try:
        yield
    finally:
        sys.unraisablehook = old_unraisable
        threading.excepthook = old_hook
        logging.captureWarnings(False)
        root.removeHandler(handler)
