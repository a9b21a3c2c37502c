"""hwprov's coldplug scan on a real kernel's sysfs, not umockdev's: figure 4 measures the scan
inside the simulator's preload, which redirects every sysfs read; this times the same scan
(`Session.coldplug`, as `hwprov run` does it at start) where it runs, and with `--kernel` on
the kernel bench's guest (Debian's kernel under QEMU, lab/kernelbench.py) with extra real
devices made by gpio-sim.

    python -m bench.real_scan            # this machine's own sysfs
    python -m bench.real_scan --kernel   # boots a guest, adds gpio-sim chips, scans there

Prints one JSON line per place: the udev devices in the plugins' subsystems, what hwprov
classified, the scan's median and samples, and microseconds per udev device. Under TCG every
instruction is emulated, so the guest's absolute times are an upper bound for a board; the
per-device cost and how it grows are what compare with figure 4.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

GPIO_SIM = Path("/sys/kernel/config/gpio-sim")


def measure(repeat: int) -> dict[str, Any]:
    import pyudev
    from hwprov.hardware.session import Session

    t = time.perf_counter()
    loaded = Session.open(probe=False)  # no I2C probing: that is bus time, not the scan's
    plugins_ms = (time.perf_counter() - t) * 1000
    context = pyudev.Context()
    subsystems = sorted(set(loaded.host.subsystems()))
    devices = sum(sum(1 for _ in context.list_devices(subsystem=s)) for s in subsystems)
    samples, found = [], 0
    for _ in range(repeat):
        session = loaded.fresh()
        t = time.perf_counter()
        session.coldplug()
        samples.append((time.perf_counter() - t) * 1000)
        found = len(session.hardware())
    scan = statistics.median(samples)
    return {
        "subsystems": subsystems,
        "udev_devices": devices,
        "hardware": found,
        "plugins_ms": round(plugins_ms, 1),
        "scan_ms": round(scan, 1),
        "scan_samples_ms": [round(s, 1) for s in samples],
        "us_per_device": round(scan * 1000 / max(devices, 1), 1),
    }


def in_guest(chips: int, repeat: int) -> dict[str, Any]:
    from lab.kernelbench import Guest, GuestRunner

    guest = Guest("v2")
    guest.boot()
    try:
        runner = GuestRunner(guest)
        # Through configfs as the bench's own driver does (lab/realbench.py), each chip a real
        # gpiochip with its /dev node; one shell, not a round trip per chip.
        script = "".join(
            f"mkdir -p {GPIO_SIM}/scan{i}/bank0 && echo 1 > {GPIO_SIM}/scan{i}/bank0/num_lines"
            f" && echo 1 > {GPIO_SIM}/scan{i}/live || exit 1\n"
            for i in range(chips)
        )
        made = runner.capture(["sh", "-c", script + "udevadm settle --timeout=120"], {})
        if made.returncode != 0:
            raise RuntimeError(f"gpio-sim chips: {made.stderr.strip()}")
        probe = ["python3", "-m", "bench.real_scan", "--repeat", str(repeat)]
        done = runner.capture(probe, {})
        if done.returncode != 0:
            raise RuntimeError(f"the scan in the guest failed: {done.stderr.strip()}")
        result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
        result["place"] = f"kernel bench guest (TCG), {chips} gpio-sim chips added"
        return result
    finally:
        guest.stop()


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.real_scan")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--kernel", action="store_true", help="on the kernel bench's guest")
    p.add_argument("--chips", type=int, default=400, help="gpio-sim chips to add there")
    args = p.parse_args()
    if args.kernel:
        result = in_guest(args.chips, args.repeat)
    else:
        result = measure(args.repeat)
        result["place"] = "this machine's sysfs"
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
