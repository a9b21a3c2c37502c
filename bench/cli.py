"""`python -m bench`: machine info, every figure measured on one private engine, tables, JSON."""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import (
    compose_cli,
    fig_footprint,
    fig_livegrant,
    fig_recreate,
    fig_scale,
    fig_storm,
    report,
    results,
)
from bench.figure import Figure
from bench.lab import Lab, open_lab
from bench.machine import machine_info
from bench.sizes import PRESETS, Sizes

Runner = Callable[[Lab, Sizes], list[Figure]]
# Figures 1 and 2 come from one interleaved loop: asking for either runs both.
RUNNERS: tuple[tuple[tuple[int, ...], str, Runner], ...] = (
    ((1, 2), "plug -> running, vs bare engine and compose", fig_recreate.run),
    ((3,), "uevent storm", fig_storm.run),
    ((4,), "coldplug scan + plan scale", fig_scale.run),
    ((5,), "live grant (cgroup strategy)", fig_livegrant.run),
    ((6,), "idle footprint", fig_footprint.run),
)


def _figures(text: str) -> set[int]:
    try:
        wanted = {int(n) for n in text.split(",") if n.strip()}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected figure numbers like 1,3,5, got {text!r}"
        ) from None
    if not wanted or not wanted <= {1, 2, 3, 4, 5, 6}:
        raise argparse.ArgumentTypeError("figures are numbered 1 to 6")
    return wanted


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="hwprov's benchmarks (issue 7), each against its baseline in one run on a "
        "private Docker engine. Prints machine info and a table per figure; raw results go "
        "to bench/results/<timestamp>.json.",
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes)")
    size.add_argument("--smoke", action="store_true", help="tiny sizes, for the smoke test")
    p.add_argument("--only", type=_figures, help="figures to run, e.g. 1,5 (default: all)")
    p.add_argument("--plugs", type=int, help="figure 1: plug cycles per network mode")
    p.add_argument("--compose-samples", type=int, help="figure 2: compose recreates per mode")
    p.add_argument("--storm-seconds", type=float, help="figure 3: storm length")
    p.add_argument("--storm-rate", type=float, help="figure 3: uevents per second")
    p.add_argument(
        "--scale-devices", type=lambda t: tuple(int(n) for n in t.split(",")),
        help="figure 4: device counts, e.g. 100,1000,5000",
    )  # fmt: skip
    p.add_argument(
        "--scale-services", type=lambda t: tuple(int(n) for n in t.split(",")),
        help="figure 4: service counts, e.g. 10,100",
    )  # fmt: skip
    p.add_argument("--live-plugs", type=int, help="figure 5: plug cycles")
    p.add_argument("--idle-seconds", type=float, help="figure 6: idle window")
    p.add_argument("--out", type=Path, default=results.RESULTS, help="folder for the JSON file")
    p.add_argument(
        "--profile", type=Path, metavar="DIR",
        help="run hwprov (and the scale probe) under cProfile, stats into DIR/*.prof",
    )  # fmt: skip
    return p


def sizes_from(args: argparse.Namespace) -> Sizes:
    base = PRESETS["smoke" if args.smoke else "quick" if args.quick else "full"]
    overrides = {
        "plugs": args.plugs,
        "compose_samples": args.compose_samples,
        "storm_seconds": args.storm_seconds,
        "storm_rate": args.storm_rate,
        "scale_devices": args.scale_devices,
        "scale_services": args.scale_services,
        "live_plugs": args.live_plugs,
        "idle_seconds": args.idle_seconds,
    }
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})


def _interrupt(signum: int, _frame: object) -> None:
    # SIGTERM and SIGHUP unwind like Ctrl-C, so every clean-up in the context managers runs.
    raise KeyboardInterrupt(f"signal {signum}")


def run_all(
    wanted: set[int], sizes: Sizes, out: Path, profile: Path | None
) -> tuple[list[Figure], Path]:
    started = time.time()
    figures: list[Figure] = []
    with open_lab(profile) as lab:
        machine = machine_info(lab.client, compose_cli.binary())
        report.print_machine(machine, sys.stdout)
        sys.stdout.write(f"  sizes  {dataclasses.asdict(sizes)}\n")
        for numbers, title, runner in RUNNERS:
            if not wanted & set(numbers):
                continue
            print(f"\n... running {title}", flush=True)
            t0 = time.monotonic()
            try:
                produced = runner(lab, sizes)
            except Exception as err:  # one broken figure must not lose the others' numbers
                traceback.print_exc()
                produced = [Figure(n, title, ("label",), error=f"{type(err).__name__}: {err}")
                            for n in numbers]  # fmt: skip
            finally:
                lab.remove_containers()
            for fig in produced:
                fig.seconds = time.monotonic() - t0
                if fig.number in wanted:
                    figures.append(fig)
                    report.print_figure(fig, sys.stdout)
    path = results.save(figures, machine, dataclasses.asdict(sizes), started, out)
    return figures, path


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if os.geteuid() != 0:
        print("bench: needs root (private dockerd, network namespaces, mknod)", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    wanted = args.only or {1, 2, 3, 4, 5, 6}
    try:
        figures, path = run_all(wanted, sizes_from(args), args.out, args.profile)
    except KeyboardInterrupt:
        print("\nbench: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    print(f"\nraw results: {path}")
    return 1 if any(f.error for f in figures) else 0
