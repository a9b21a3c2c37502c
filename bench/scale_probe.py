"""Inside a umockdev testbed: time hwprov's coldplug scan and plan, as `hwprov run` does them
at start, and print the timings as one JSON line.

Run under umockdev-wrapper (fig_scale does): `python -m bench.scale_probe --board B.yaml
--compose A.yml --compose B.yml`. The testbed is built here from the board with no stand-in
nodes, since no engine is involved; building it is the simulator's cost and reported apart.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hwprov.compose.loader import load_project
from hwprov.hardware.session import Session
from hwprov.planning.build import build_plan
from hwprov.sim.board import load_board
from hwprov.sim.realnodes import RealNodes
from hwprov.sim.testbed import SimTestbed


class NoNodes(RealNodes):
    """No real stand-in nodes: nothing maps them here, and a thousand mknods are not hwprov's."""

    def add(self, node: str, major: int, minor: int) -> None:
        pass

    def remove(self, node: str) -> None:
        pass


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def measure(
    board_file: str, composes: list[str], repeat: int, work: Path, profile: Path | None
) -> dict[str, Any]:
    board = load_board(board_file)
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        t = time.perf_counter()
        bed = SimTestbed(board, NoNodes(Path(tmp), {}))
        testbed_ms = _ms(t)
        try:
            t = time.perf_counter()
            loaded = Session.open()
            plugins_ms = _ms(t)
            scans: list[float] = []
            plans: dict[str, list[float]] = {c: [] for c in composes}
            # The part of each plan that is reading the compose file, so the matching's own
            # time is plan_ms minus this: with indexed matching the file dominates.
            loads: dict[str, list[float]] = {c: [] for c in composes}
            found = matched = 0
            profiler = cProfile.Profile() if profile else None
            for _ in range(repeat):
                if profiler:
                    profiler.enable()
                # As the daemon does it: a fresh inventory, the probe I/O it gives plugins.
                session = loaded.fresh()
                t = time.perf_counter()
                session.coldplug()
                scans.append(_ms(t))
                found = len(session.hardware())
                matched = 0
                for compose in composes:
                    t = time.perf_counter()
                    project = load_project(Path(compose))
                    loads[compose].append(_ms(t))
                    plan = build_plan(project, session.hardware(), session.host)
                    plans[compose].append(_ms(t))
                    matched += sum(bool(s.devices) for s in plan.services)
                if profiler:
                    profiler.disable()
            if profiler and profile:
                profiler.dump_stats(profile)
        finally:
            bed.close()
    return {
        "sysfs_devices": len(board.devices),
        "testbed_ms": testbed_ms,
        "plugins_ms": plugins_ms,
        "hardware": found,
        "services_with_devices": matched,
        "scan_ms": statistics.median(scans),
        "scan_samples_ms": scans,
        "plan_ms": {c: statistics.median(v) for c, v in plans.items()},
        "plan_samples_ms": plans,
        "compose_load_ms": {c: statistics.median(v) for c, v in loads.items()},
    }


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.scale_probe")
    p.add_argument("--board", required=True)
    p.add_argument("--compose", action="append", default=[])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()))
    p.add_argument("--profile", type=Path, help="write cProfile stats of scan + plan here")
    args = p.parse_args()
    result = measure(args.board, args.compose, args.repeat, args.work, args.profile)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
