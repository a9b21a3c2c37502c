"""Figure 6: what `hwprov run` costs while nothing happens: resident memory and CPU time of
the hwprov process itself (not the simulator around it), read from /proc before and after an
idle window, with the wake-ups (context switches) that polling would show.

For scale, the same numbers for a bare Python interpreter doing nothing and for the engine.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import compose_cli
from bench.figure import Figure, Ratio
from bench.lab import Lab
from bench.sizes import Sizes
from lab.simdaemon import SimDaemon

BOARD = "x86-gateway"
PROJECT = "bidle"
WARM_UP_S = 2.0  # start-up work (coldplug, first reconcile) finishes well within this
TICK_S = 1 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Sample:
    rss_kb: int
    hwm_kb: int
    anon_kb: int
    file_kb: int
    threads: int
    cpu_ticks: int  # utime + stime of the whole process, /proc/<pid>/stat
    run_ns: int  # time on a CPU, summed over its threads (/proc/<pid>/task/*/schedstat)
    switches: int  # voluntary + involuntary context switches, summed over its threads


def _status(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[0].isdigit():
            out[key] = int(parts[0])
    return out


def sample(pid: int) -> Sample:
    proc = Path(f"/proc/{pid}")
    status = _status((proc / "status").read_text())
    stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
    run_ns = switches = 0
    for task in (proc / "task").iterdir():
        with contextlib.suppress(OSError):  # a thread may end between listing and reading
            run_ns += int((task / "schedstat").read_text().split()[0])
            t = _status((task / "status").read_text())
            switches += t["voluntary_ctxt_switches"] + t["nonvoluntary_ctxt_switches"]
    return Sample(
        rss_kb=status["VmRSS"],
        hwm_kb=status["VmHWM"],
        anon_kb=status.get("RssAnon", 0),
        file_kb=status.get("RssFile", 0),
        threads=status["Threads"],
        cpu_ticks=int(stat[11]) + int(stat[12]),
        run_ns=run_ns,
        switches=switches,
    )


def _bare_python_rss_kb() -> int:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as proc:
        try:
            time.sleep(0.5)
            return sample(proc.pid).rss_kb
        finally:
            proc.kill()


def run(lab: Lab, sizes: Sizes) -> list[Figure]:
    folder = lab.folder("idle")
    services = {
        "gps": compose_cli.service(
            labels={"io.hwprov.device.gps": "vendor=0403, model=6001, path=/dev/gps"},
            network_mode="host",
        ),
        "modem": compose_cli.service(
            labels={"io.hwprov.device.modem": "vendor=10c4, model=ea60, path=/dev/modem"}
        ),
    }
    file = compose_cli.write(folder / PROJECT / "docker-compose.yml", services)
    with contextlib.ExitStack() as stack:
        stack.callback(compose_cli.run, lab.url, file, PROJECT, "down", "-v", "-t", "1")
        compose_cli.run(lab.url, file, PROJECT, "up", "-d")
        daemon = stack.enter_context(SimDaemon(lab.url, folder, file, BOARD, "-p", PROJECT))
        daemon.wait("started")
        pid = daemon.hwprov_pid()
        time.sleep(WARM_UP_S)
        mark = daemon.mark()
        before = sample(pid)
        t0 = time.monotonic()
        peak = before.rss_kb
        while (left := sizes.idle_seconds - (time.monotonic() - t0)) > 0:
            time.sleep(min(left, 1.0))
            peak = max(peak, sample(pid).rss_kb)
        after = sample(pid)
        window = time.monotonic() - t0
        said = daemon.events(mark)
    engine_rss = sample(lab.engine.pid).rss_kb if lab.engine.pid else 0
    return [_figure(before, after, peak, window, len(said), _bare_python_rss_kb(), engine_rss)]


def _figure(
    before: Sample, after: Sample, peak: int, window: float, said: int, python_kb: int,
    engine_kb: int,
) -> Figure:  # fmt: skip
    cpu_ms = (after.cpu_ticks - before.cpu_ticks) * TICK_S * 1000
    run_ms = (after.run_ns - before.run_ns) / 1e6
    fig = Figure(6, f"hwprov run idle for {window:.0f} s: memory and CPU", ("label", "value"))
    fig.rows = [
        {"label": "RSS at the end (MB)", "value": after.rss_kb / 1024},
        {"label": "RSS peak during the window (MB)", "value": peak / 1024},
        {"label": "RSS high-water mark since start (MB)", "value": after.hwm_kb / 1024},
        {"label": "  anonymous / file-backed (MB)",
         "value": f"{after.anon_kb / 1024:.1f} / {after.file_kb / 1024:.1f}"},
        {"label": "threads", "value": after.threads},
        {"label": "CPU time in the window, /proc stat (ms)", "value": cpu_ms},
        {"label": "CPU time in the window, schedstat (ms)", "value": run_ms},
        {"label": "CPU, % of one core", "value": run_ms / (window * 1000) * 100},
        {"label": "wake-ups (context switches) per s",
         "value": (after.switches - before.switches) / window},
        {"label": "decisions printed in the window", "value": said},
        {"label": "for scale: bare python3 RSS (MB)", "value": python_kb / 1024},
        {"label": "for scale: dockerd RSS (MB)", "value": engine_kb / 1024},
    ]  # fmt: skip
    fig.ratios.append(Ratio("RSS at the end (MB)", after.rss_kb / 1024, "<=", 40))
    fig.ratios.append(Ratio("CPU % of one core", run_ms / (window * 1000) * 100, "<=", 0.1))
    fig.raw = {"before": asdict(before), "after": asdict(after), "window_s": window}
    return fig
