"""Plain-text tables for the terminal: machine info, then per figure its rows and ratios."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TextIO

from bench.figure import Figure


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 100:
            return f"{value:.0f}"
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return "-" if value is None else str(value)


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        first, *rest = row
        cells = [first.ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def print_machine(info: Mapping[str, Any], out: TextIO) -> None:
    out.write("machine\n")
    width = max(len(k) for k in info)
    for key, value in info.items():
        out.write(f"  {key.ljust(width)}  {value}\n")
    out.flush()


def print_figure(fig: Figure, out: TextIO) -> None:
    out.write(f"\nfigure {fig.number}: {fig.title}  ({fig.seconds:.0f} s)\n")
    if fig.error:
        out.write(f"  FAILED: {fig.error}\n")
        out.flush()
        return
    rows = [[_cell(r.get(c)) for c in fig.columns] for r in fig.rows]
    out.write(table(list(fig.columns), rows) + "\n")
    for ratio in fig.ratios:
        verdict = {True: "met", False: "MISSED", None: ""}[ratio.met]
        target = f"  target {ratio.op} {ratio.target:g}  {verdict}" if ratio.op else ""
        out.write(f"  ratio {ratio.name}: {_cell(ratio.value)}{target}\n")
    for name, ok in fig.checks.items():
        out.write(f"  check {name}: {_cell(ok)}\n")
    for note in fig.notes:
        out.write(f"  note: {note}\n")
    out.flush()
