"""Figure 3: a uevent storm. Adapters are plugged and unplugged at random, at a paced rate of
uevents per second, for a few seconds; then: how many recreates hwprov made, how long after
the storm the containers were right, and whether they are exactly right.

"Right" is computed from the simulator's own state at the end (which unit holds which
ttyUSB node now): every service's container runs, under its own name, with exactly the nodes
of its plugged adapters at the paths its labels ask for, and, checked inside each container,
with the numbers those adapters have now. It counts as final when it has held for a quiet
period with hwprov saying nothing more.

The simulator runs in a network namespace of its own with net.unix.max_dgram_qlen raised
(agent/hwprov/sim/runner.py), so umockdev never aborts the sender when hwprov reads more slowly
than the storm comes. hwprov runs with its default settle time here, since the time to the
final state includes it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
from hwprov.containers import journal
from hwprov.containers.spec import HardwareSpec, clone_payload

from bench import boards, compose_cli
from bench.figure import Figure, Ratio
from bench.lab import Lab
from bench.sizes import Sizes
from lab.simdaemon import SimDaemon

PROJECT = "bstorm"
SERIAL = "STORM"
TIMEOUT_S = 180.0
Devices = dict[str, frozenset[tuple[str, str]]]  # container name -> {(host path, container path)}


def _layout(sizes: Sizes) -> dict[int, tuple[int, int]]:
    """Adapter index -> (service, slot): adapters dealt round-robin to the services."""
    return {
        k: (k % sizes.storm_services, k // sizes.storm_services) for k in range(sizes.storm_devices)
    }


def _compose(layout: dict[int, tuple[int, int]], services: int) -> dict[str, dict[str, object]]:
    labels: dict[int, dict[str, str]] = {s: {} for s in range(services)}
    for k, (s, slot) in layout.items():
        serial = boards.serial_of(SERIAL, k)
        labels[s][f"io.hwprov.device.d{slot}"] = f"kind=serial, serial={serial}, path=/dev/d{slot}"
    return {f"s{s}": compose_cli.service(labels=labels[s]) for s in range(services)}


def _schedule(sizes: Sizes, seed: int = 7) -> list[tuple[str, str]]:
    """Random toggles, enough of them for rate x seconds uevents."""
    rng = random.Random(seed)
    plugged = [False] * sizes.storm_devices
    count = round(sizes.storm_rate * sizes.storm_seconds / boards.DEVICES_PER_ADAPTER)
    ops = []
    for _ in range(max(count, 1)):
        k = rng.randrange(sizes.storm_devices)
        ops.append(("unplug" if plugged[k] else "plug", f"a{k}"))
        plugged[k] = not plugged[k]
    return ops


def _expected(
    daemon: SimDaemon, layout: dict[int, tuple[int, int]], services: int
) -> tuple[Devices, dict[str, str]]:
    """What the containers must map now, and the numbers each host path must carry."""
    status = daemon.sim("status")
    nodes = json.loads((Path(status["nodes"]) / "nodes.json").read_text())
    want: dict[str, set[tuple[str, str]]] = {f"{PROJECT}-s{s}-1": set() for s in range(services)}
    numbers = {}
    for k, (s, slot) in layout.items():
        tty = next((n for n in status["nodes_of"].get(f"a{k}", []) if "ttyUSB" in n), None)
        if tty is not None:
            want[f"{PROJECT}-s{s}-1"].add((nodes[tty]["host_path"], f"/dev/d{slot}"))
            numbers[nodes[tty]["host_path"]] = nodes[tty]["host_dev"]
    return {name: frozenset(v) for name, v in want.items()}, numbers


def _actual(api: docker.APIClient) -> Devices | None:
    """Running containers of the project and their devices; None while any is not running.

    One listing first, and the inspects only once every container runs under its own name:
    polled every 50 ms, inspecting all of them while the swaps are under way took the engine's
    time from the very swaps being measured (10-20 inspects a poll on a 2-core machine).
    """
    summaries = api.containers(all=True, filters={"label": f"com.docker.compose.project={PROJECT}"})
    if any(c["State"] != "running" or journal.in_flight(c["Names"][0]) for c in summaries):
        return None
    out = {}
    for summary in summaries:
        try:
            attrs = api.inspect_container(summary["Id"])
        except docker.errors.NotFound:
            return None  # removed between the listing and the inspect: a swap in flight
        if not attrs["State"]["Running"]:
            return None
        devices = attrs["HostConfig"]["Devices"] or ()
        out[attrs["Name"].lstrip("/")] = frozenset(
            (d["PathOnHost"], d["PathInContainer"]) for d in devices
        )
    return out


def _numbers_inside(api: docker.APIClient, want: Devices, numbers: dict[str, str]) -> bool:
    """Each mapped node, seen from inside its container, has the adapter's numbers."""
    for name, devices in want.items():
        for host, inside in devices:
            exec_id = api.exec_create(name, ["stat", "-L", "-c", "%t:%T", inside])["Id"]
            major, _, minor = api.exec_start(exec_id).decode().strip().partition(":")
            if f"{int(major, 16)}:{int(minor, 16)}" != numbers[host]:
                return False
    return True


def _bare_swaps(api: docker.APIClient, names: list[str]) -> float:
    """Seconds the engine alone takes for the swaps of the last pass: for every service at
    once, the original renamed aside, a replacement with the same config created under its
    name, the original stopped, the replacement started, the original removed. The engine
    calls of hwprov's recreate, without its planning, its four-worker bound or its settle
    wait: what no tool that recreates the containers can beat on this engine."""
    bodies = {}
    for name in names:
        attrs = api.inspect_container(name)
        devices = tuple(
            (d["PathOnHost"], d["PathInContainer"], d["CgroupPermissions"])
            for d in attrs["HostConfig"]["Devices"] or ()
        )
        bodies[name] = (attrs["Id"], clone_payload(attrs, HardwareSpec(devices=devices))[0])

    def swap(name: str) -> None:
        old, body = bodies[name]
        api.rename(old, f"{name}.bare-old")
        new = api.create_container_from_config(body, name=name)["Id"]
        api.stop(old, timeout=10)
        api.start(new)
        api.remove_container(old)

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        list(pool.map(swap, names))
    return time.monotonic() - start


def _converge(
    lab: Lab, daemon: SimDaemon, want: Devices, quiet_s: float
) -> tuple[float | None, float]:
    """(when the state became right for good, when hwprov last said anything), as time.time()."""
    right_since: float | None = None
    said, last_said = daemon.mark(), time.time()
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        now = time.time()
        right = _actual(lab.api) == want
        right_since = (right_since or now) if right else None
        if daemon.mark() != said:
            said, last_said = daemon.mark(), now
        if right_since is not None and now - max(right_since, last_said) >= quiet_s:
            break
        time.sleep(0.05)
    return right_since, last_said


def run(lab: Lab, sizes: Sizes) -> list[Figure]:
    folder = lab.folder("storm")
    board = boards.write(
        folder / "storm.yaml", boards.usb_serial_board("storm", sizes.storm_devices, SERIAL, True)
    )
    layout = _layout(sizes)
    file = compose_cli.write(
        folder / "project" / "docker-compose.yml", _compose(layout, sizes.storm_services)
    )
    ops = _schedule(sizes)
    interval = boards.DEVICES_PER_ADAPTER / sizes.storm_rate
    with contextlib.ExitStack() as stack:
        stack.callback(compose_cli.run, lab.url, file, PROJECT, "down", "-v", "-t", "1")
        compose_cli.run(lab.url, file, PROJECT, "up", "-d")
        daemon = stack.enter_context(
            SimDaemon(
                lab.url, folder, file, str(board), "-p", PROJECT, profile=lab.profile("storm")
            )
        )
        daemon.wait("started")
        cpu_before = _cpu_s(daemon.hwprov_pid())
        mark = daemon.mark()
        late = 0
        with daemon.session() as control:
            start = time.monotonic()
            t_start = time.time()
            for i, (op, unit) in enumerate(ops):
                delay = start + i * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    late += 1
                control(op, id=unit)
            sent_s = time.monotonic() - start
            t_end = time.time()
        want, numbers = _expected(daemon, layout, sizes.storm_services)
        right_since, last_said = _converge(lab, daemon, want, sizes.storm_quiet_s)
        exactly = right_since is not None and _numbers_inside(lab.api, want, numbers)
        final = _actual(lab.api)
        decisions = daemon.events(mark)
        cpu_s = _cpu_s(daemon.hwprov_pid()) - cpu_before
        # hwprov paused: the bare swaps start containers it would take for someone else's.
        os.kill(daemon.hwprov_pid(), signal.SIGSTOP)
        try:
            bare_s = _bare_swaps(lab.api, sorted(want))
        finally:
            os.kill(daemon.hwprov_pid(), signal.SIGCONT)
    return [_figure(sizes, ops, sent_s, t_start, t_end, right_since, last_said, exactly,
                    decisions, want, final, late, cpu_s, bare_s)]  # fmt: skip


def _passes_that_recreated(decisions: list[dict[str, Any]]) -> int:
    passes, recreated = 0, False
    for d in decisions:
        recreated = recreated or d["event"] == "recreated"
        if d["event"] == "reconciled":
            passes, recreated = passes + recreated, False
    return passes


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in USER_HZ ticks


def _figure(
    sizes: Sizes,
    ops: list[tuple[str, str]],
    sent_s: float,
    t_start: float,
    t_end: float,
    right_since: float | None,
    last_said: float,
    exactly: bool,
    decisions: list[dict[str, Any]],
    want: Devices,
    final: Devices | None,
    late: int,
    cpu_s: float,
    bare_s: float,
) -> Figure:
    uevents = len(ops) * boards.DEVICES_PER_ADAPTER
    recreates = sum(d["event"] == "recreated" for d in decisions)
    affected = len({d["service"] for d in decisions if d["event"] == "recreated"})
    # A swap whose node went again before its start is abandoned, the original kept; a
    # rollback is a replacement started and undone.
    abandoned = sum(d["event"] == "abandoned" for d in decisions)
    passes = _passes_that_recreated(decisions)
    failures = [d for d in decisions if d["event"] in ("rolled-back", "failed")]
    hardware = sum(d["event"] in ("add", "remove", "change") for d in decisions)
    right_s = (right_since - t_end) if right_since is not None else float("nan")
    fig = Figure(3, "uevent storm: recreates, time to the final state, exactly right",
                 ("label", "value"))  # fmt: skip
    fig.rows = [
        {"label": "plug/unplug requests", "value": len(ops)},
        {"label": "uevents sent", "value": uevents},
        {"label": "storm length (s)", "value": sent_s},
        {"label": "uevents/s achieved", "value": uevents / sent_s if sent_s else float("nan")},
        {"label": "hardware changes hwprov saw", "value": hardware},
        {"label": "recreates", "value": recreates},
        {"label": "services recreated", "value": affected},
        {"label": "abandoned (node gone again before the start)", "value": abandoned},
        {"label": "rolled back or failed", "value": len(failures)},
        {"label": "containers with devices at the end",
         "value": sum(bool(v) for v in want.values())},
        {"label": "final state right, s after the storm", "value": max(right_s, 0.0)},
        {"label": "final state right, s after its start", "value": right_s + (t_end - t_start)},
        {"label": "hwprov quiet, s after the storm", "value": last_said - t_end},
        {"label": "hwprov CPU during storm and after (s)", "value": cpu_s},
        {"label": f"bare engine: {len(want)} swaps at once (s)", "value": bare_s},
    ]  # fmt: skip
    fig.ratios.append(
        Ratio("uevents per recreate", uevents / recreates if recreates else float("nan"))
    )
    # Issue 19 asks for one recreate per affected service per settled burst: the storm's first
    # events are handled at once, before a storm is known, so their services get one more.
    fig.ratios.append(
        Ratio("recreates per service recreated", recreates / affected if affected else math.nan)
    )
    fig.ratios.append(Ratio("passes that recreated", passes))
    fig.ratios.append(Ratio("final state right, s after the storm", max(right_s, 0.0), "<=", 2.0))
    # The floor under the 2 s: the same swaps by the engine alone, all at once.
    fig.ratios.append(Ratio("final state / bare engine's swaps", max(right_s, 0.0) / bare_s))
    fig.checks["final state exactly right"] = exactly
    if late:
        fig.notes.append(f"{late} of {len(ops)} requests went out late (the sender fell behind)")
    fig.notes.append(
        f"{sizes.storm_devices} adapters, {sizes.storm_services} services; hwprov's default "
        "settle time (500 ms per recreate, several swaps side by side) is part of the time to "
        "the final state"
    )
    fig.raw = {"ops": ops, "decisions": decisions, "failures": failures}
    if not exactly:  # what differs, for the one reading the JSON
        fig.raw["want"] = {k: sorted(v) for k, v in want.items()}
        fig.raw["at the end"] = {k: sorted(v) for k, v in (final or {}).items()}
    return fig
