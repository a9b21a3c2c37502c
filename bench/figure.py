"""What every benchmark returns: rows for a small table, ratios against targets, raw samples."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), q in 0..100."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def latency_row(label: str, samples_ms: Sequence[float], **extra: Any) -> dict[str, Any]:
    """p50/p90/p99 of one series, in ms, with the samples kept for the JSON file."""
    return {
        "label": label,
        "n": len(samples_ms),
        "p50_ms": percentile(samples_ms, 50),
        "p90_ms": percentile(samples_ms, 90),
        "p99_ms": percentile(samples_ms, 99),
        "mean_ms": statistics.fmean(samples_ms) if samples_ms else math.nan,
        **extra,
        "samples_ms": [round(s, 3) for s in samples_ms],
    }


@dataclass(frozen=True, slots=True)
class Ratio:
    """A measured ratio and, when the issue sets one, its target (`op` is "<=" or ">=")."""

    name: str
    value: float
    op: str | None = None
    target: float | None = None

    @property
    def met(self) -> bool | None:
        if self.op is None or self.target is None or math.isnan(self.value):
            return None
        return self.value <= self.target if self.op == "<=" else self.value >= self.target

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "target": f"{self.op} {self.target:g}" if self.op and self.target is not None else None,
            "met": self.met,
        }


@dataclass
class Figure:
    number: int
    title: str
    columns: tuple[str, ...]  # row keys shown in the table, in order ("label" first)
    rows: list[dict[str, Any]] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)  # yes/no facts, e.g. "exactly right"
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0  # wall time the figure took
    error: str | None = None  # set when the benchmark failed: the rest of the run goes on

    def to_json(self) -> dict[str, Any]:
        return {
            "figure": self.number,
            "title": self.title,
            "columns": list(self.columns),
            "rows": self.rows,
            "ratios": [r.to_json() for r in self.ratios],
            "checks": self.checks,
            "notes": self.notes,
            "raw": self.raw,
            "seconds": round(self.seconds, 2),
            "error": self.error,
        }
