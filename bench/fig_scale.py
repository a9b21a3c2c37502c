"""Figure 4: coldplug scan and plan with many devices and services, and how they grow.

For each device count a board of that many UARTs is generated and loaded into a umockdev
testbed in a probe process (bench/scale_probe.py); there hwprov's own coldplug (pyudev
enumeration, snapshots, plugin classification) and planning (compose load, matching, plan)
are timed, the median of a few repeats. Each service asks for one port by name and for the
same port by a node glob, so every service gets devices and every label is matched against
every port. Growth is the log-log slope between the smallest and largest count: 1.0 is
linear.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

from bench import boards, compose_cli
from bench.figure import Figure, Ratio
from bench.lab import REPO, Lab
from bench.sizes import Sizes


def _services(ports: int, services: int) -> dict[str, dict[str, object]]:
    step = max(ports // services, 1)
    out = {}
    for i in range(services):
        name = boards.uart_name(i * step % ports)
        out[f"s{i}"] = compose_cli.service(
            labels={
                "io.hwprov.device.port": f"kind=serial, name={name}, path=/dev/port",
                "io.hwprov.device.alt": f"node=/dev/{name}*, path=/dev/alt, optional",
            }
        )
    return out


def _probe(lab: Lab, sizes: Sizes, ports: int) -> dict[str, Any]:
    folder = lab.folder(f"scale/{ports}")
    board = boards.write(folder / "board.yaml", boards.uart_board(f"uart{ports}", ports))
    command = [
        "umockdev-wrapper", sys.executable, "-m", "bench.scale_probe", "--board", str(board),
        "--repeat", str(sizes.scale_repeat), "--work", str(folder),
    ]  # fmt: skip
    for services in sizes.scale_services:
        file = folder / f"s{services}" / "docker-compose.yml"
        command += ["--compose", str(compose_cli.write(file, _services(ports, services)))]
    if (profile := lab.profile(f"scale-{ports}")) is not None:
        command += ["--profile", str(profile)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"scale probe with {ports} ports failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # keyed by service count rather than by the compose file's temporary path
    result["plan_ms"] = dict(zip(sizes.scale_services, result["plan_ms"].values(), strict=True))
    for key in ("plan_samples_ms", "compose_load_ms"):
        result[key] = dict(zip(sizes.scale_services, result[key].values(), strict=True))
    return result


def _slope(xs: list[int], ys: list[float]) -> float:
    if len(xs) < 2 or ys[0] <= 0 or xs[-1] == xs[0]:
        return math.nan
    return math.log(ys[-1] / ys[0]) / math.log(xs[-1] / xs[0])


def run(lab: Lab, sizes: Sizes) -> list[Figure]:
    counts = sorted(sizes.scale_devices)
    measured = {n: _probe(lab, sizes, n) for n in counts}
    plan_cols = tuple(f"plan_ms_{s}svc" for s in sizes.scale_services)
    fig = Figure(
        4,
        "coldplug scan + plan: time and growth with devices and services",
        ("label", "hardware", "scan_ms", *plan_cols, "us_per_device", "testbed_s"),
    )
    for n in counts:
        m = measured[n]
        row: dict[str, Any] = {
            "label": f"{n} devices", "devices": n, "hardware": m["hardware"],
            "sysfs_devices": m["sysfs_devices"], "scan_ms": m["scan_ms"],
        }  # fmt: skip
        for s, col in zip(sizes.scale_services, plan_cols, strict=True):
            row[col] = m["plan_ms"][s]
        most = max(m["plan_ms"].values())
        row["us_per_device"] = (m["scan_ms"] + most) / n * 1000
        row["testbed_s"] = m["testbed_ms"] / 1000
        row["plugins_ms"] = m["plugins_ms"]
        row["scan_samples_ms"] = m["scan_samples_ms"]
        row["plan_samples_ms"] = m["plan_samples_ms"]
        row["compose_load_ms"] = m["compose_load_ms"]  # of plan_ms, by service count
        fig.rows.append(row)
    fig.ratios.append(
        Ratio(
            f"scan growth exponent {counts[0]}->{counts[-1]} devices",
            _slope(counts, [measured[n]["scan_ms"] for n in counts]),
            "<=",
            1.2,
        )
    )
    for s in sizes.scale_services:
        fig.ratios.append(
            Ratio(
                f"plan growth exponent, {s} services",
                _slope(counts, [measured[n]["plan_ms"][s] for n in counts]),
                "<=",
                1.2,
            )
        )
    services = sorted(sizes.scale_services)
    fig.ratios.append(
        Ratio(
            f"plan growth exponent {services[0]}->{services[-1]} services, {counts[-1]} devices",
            _slope(services, [measured[counts[-1]]["plan_ms"][s] for s in services]),
            "<=",
            1.2,
        )
    )
    fig.checks["every port found"] = all(measured[n]["hardware"] == n for n in counts)
    fig.checks["every service planned with its port"] = all(
        measured[n]["services_with_devices"] == sum(sizes.scale_services) for n in counts
    )
    fig.notes.append(
        "times are inside the umockdev preload, which redirects every sysfs read; testbed_s "
        "is the simulator building the board, not hwprov"
    )
    return [fig]
