"""Crash recovery: finish or undo the swaps a killed hwprov left half-done. Never loses a
container: the journal is in the names (containers/journal.py), so the engine alone says
what was in flight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hwprov.containers import journal
from hwprov.containers.engine import EngineAPI
from hwprov.containers.labels import compose_owned
from hwprov.containers.outcome import Outcome, OutcomeAction


def recover(
    engine: EngineAPI,
    project: str | None,
    summaries: Sequence[Mapping[str, Any]],
    started: set[str],
) -> list[Outcome]:
    """One outcome per swap found in flight; the ids of containers it starts go in `started`."""
    ours = [c for c in summaries if compose_owned(c.get("Labels"), project)]
    by_name = {str(c["Names"][0]).lstrip("/"): c for c in ours if c.get("Names")}
    swaps: dict[str, dict[str, Any]] = {}
    for name, summary in by_name.items():
        if (found := journal.parse(name)) is None:
            continue
        base, role, was_running = found
        swap = swaps.setdefault(base, {"was_running": False})
        swap[role] = summary
        swap["was_running"] = swap["was_running"] or was_running
    return [
        _recover(engine, base, swap, by_name.get(base), started)
        for base, swap in sorted(swaps.items())
    ]


def _recover(
    engine: EngineAPI,
    base: str,
    swap: Mapping[str, Any],
    current: Mapping[str, Any] | None,
    started: set[str],
) -> Outcome:
    new, old = swap.get("new"), swap.get("old")
    if old is not None and current is not None and current.get("State") == "running":
        # The replacement was swapped in and runs: finish the swap.
        engine.remove(old["Id"], force=True)
        detail = "the replacement runs; removed the original"
        return Outcome(base, base, OutcomeAction.RECOVERED, detail)
    if new is not None:
        engine.remove(new["Id"], force=True)  # never swapped in
    if old is not None:
        if current is not None:  # a replacement swapped in that never ran
            engine.remove(current["Id"], force=True)
        engine.rename(old["Id"], base)
        current = old
    if current is not None and swap["was_running"] and current.get("State") != "running":
        started.add(str(current["Id"]))
        engine.start(current["Id"])
    detail = "an unfinished swap was undone; the original is back"
    return Outcome(base, base, OutcomeAction.RECOVERED, detail)
