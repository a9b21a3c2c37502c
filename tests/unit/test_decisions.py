"""One stream per format: while `hwprov run` runs, log records (hwprov's own, a library's),
warnings and a dying thread's traceback are decision lines like the rest."""

from __future__ import annotations

import io
import json
import logging
import signal
import sys
import threading
import warnings
from pathlib import Path

import pytest
from hwprov.commands.main import main
from hwprov.daemon.decisions import Decisions, logs_as_decisions


class Leaky:
    def __del__(self) -> None:
        raise OSError("closed twice")


def test_every_line_is_json_whatever_logged_it() -> None:
    out = io.StringIO()
    emit = Decisions("json", out)
    hook, unraisable = threading.excepthook, sys.unraisablehook
    with logs_as_decisions(emit):
        emit("started", project="p")
        logging.getLogger("hwprov.containers.recreate").warning("rolling back %s", "gps-1")
        logging.getLogger("urllib3.connectionpool").warning("Connection pool is full")
        logging.getLogger("hwprov.x").info("below the root's level: not shown")
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # the suite makes warnings errors
            warnings.warn("a library's deprecation", DeprecationWarning, stacklevel=1)
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("hwprov.hardware.udev").exception("dropped a udev event for x")
        dying = threading.Thread(target=lambda: 1 / 0, name="hwprov-udev")
        dying.start()
        dying.join()
        Leaky()  # its __del__ raises: Python can only print that, so it is a line too
    lines = [json.loads(line) for line in out.getvalue().splitlines()]  # each one parses
    logs = [(d["level"], d["logger"], d["message"]) for d in lines if d["event"] == "log"]
    assert logs[:3] == [
        ("warning", "hwprov.containers.recreate", "rolling back gps-1"),
        ("warning", "urllib3.connectionpool", "Connection pool is full"),
        ("warning", "py.warnings", logs[2][2]),
    ]
    assert "DeprecationWarning: a library's deprecation" in logs[2][2]
    assert logs[3:5] == [
        ("error", "hwprov.hardware.udev", "dropped a udev event for x"),
        ("error", "hwprov.threads", "thread hwprov-udev died"),
    ]
    assert logs[5][:2] == ("error", "hwprov") and "Leaky.__del__" in logs[5][2]
    tracebacks = [d["traceback"] for d in lines if "traceback" in d]
    assert "ValueError: boom" in tracebacks[0] and "ZeroDivisionError" in tracebacks[1]
    assert "OSError: closed twice" in tracebacks[2]
    # Left as found: the next command's records are not decision lines.
    assert threading.excepthook is hook and sys.unraisablehook is unraisable
    assert not [h for h in logging.getLogger().handlers if h.__class__.__name__ == "LogLines"]


def test_text_lines_carry_the_log_too() -> None:
    out = io.StringIO()
    with logs_as_decisions(Decisions("text", out)):
        logging.getLogger("hwprov.plugins.host").warning("plugin x failed in classify: y")
    [line] = out.getvalue().splitlines()
    assert line.split(" ", 1)[1] == (
        "log level=warning logger=hwprov.plugins.host message=plugin x failed in classify: y"
    )


def test_lines_from_many_threads_never_mix() -> None:
    out = io.StringIO()
    emit = Decisions("json", out)

    def burst(n: int) -> None:
        for i in range(200):
            emit("add", hardware=f"{n}-{i}" * 20)

    writers = [threading.Thread(target=burst, args=(n,)) for n in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 800 and all(json.loads(line)["event"] == "add" for line in lines)


def test_the_error_that_ends_hwprov_run_is_a_decision_line_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services: [this is: not a service\n")
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        code = main(["run", "-f", str(broken), "--log-format", "json"])
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
    assert code == 2
    [line] = capsys.readouterr().err.splitlines()
    doc = json.loads(line)
    assert doc["event"] == "error" and "not valid YAML" in doc["error"], doc
