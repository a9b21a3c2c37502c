"""Inside the kernel bench's guest: make it a device, then answer the bench (lab/guestrpc.py).

Run by virtme-ng as the guest's command (`python -m lab.kernelguest PORT MODULE RUNTIME`), as
root, on Debian's kernel, with the host's root filesystem read-only over 9p and tmpfs on /etc,
/var and /tmp. virtme-ng-init has started systemd-udevd and mounted cgroup2 (or the v1
hierarchies).

What it sets up, each for a reason measured in ../shared/notes/kernel-bench/REPORT.md:
- the test drivers: dummy_hcd with three UDCs (three USB units plugged at once, each on its own
  root hub), libcomposite, i2c-stub with a chip at 0x76, i2c-dev, hci_vhci, and the gpio-sim
  module built out of tree (Debian's kernel has no GPIO_SIM);
- hwprov's udev rules and the groups they name, from udev/, before the drivers load, so
  udevd applies them as on a device;
- the network QEMU forwards the bench's ports to, and dockerd on a tmpfs data-root
  (overlay2 on the 9p-backed /var was not tried), listening on that network for the tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lab import guestrpc, guestruntime
from lab.composecli import compose_binary

ROOT = Path(__file__).resolve().parents[1]
ENGINE_PORT = 2375
# The compose CLI the tests run, copied to the guest's tmpfs: a 76 MB Go binary executed from
# 9p pages itself in through QEMU on every run (5.9 s for `version` under TCG, 1.2 s from here).
COMPOSE = Path("/run/hwprov-bench/docker-compose")
I2C_STUB_CHIPS = "0x76"


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done


def drivers(gpio_sim: str) -> None:
    sh("modprobe", "configfs")
    if not os.path.ismount("/sys/kernel/config"):
        sh("mount", "-t", "configfs", "none", "/sys/kernel/config")
    sh("modprobe", "dummy_hcd", "num=3")
    for module in ("libcomposite", "usb_f_acm", "usb_f_serial", "i2c-dev", "hci_vhci"):
        sh("modprobe", module)
    sh("modprobe", "i2c-stub", f"chip_addr={I2C_STUB_CHIPS}")
    sh("insmod", gpio_sim)


def cgroup_v1_hierarchies() -> None:
    """On cgroup v1, every controller mounted, as a v1 distribution does: virtme-ng-init mounts
    only cpu, cpuacct, blkio, memory, devices and pids, and without the freezer runc cannot
    pause a container ("cannot toggle freezer")."""
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        return  # cgroup v2
    mounted = {Path(line.split()[1]).name for line in Path("/proc/mounts").read_text().splitlines()
               if line.split()[2] == "cgroup"}  # fmt: skip
    for line in Path("/proc/cgroups").read_text().splitlines()[1:]:
        name, _, _, enabled = line.split()
        if enabled == "1" and name not in mounted:
            (root / name).mkdir(exist_ok=True)
            sh("mount", "-t", "cgroup", "-o", name, "cgroup", str(root / name), check=False)


def udev_rules() -> None:
    """As udev/README.md says to install them: the groups first (udevd resolves group names
    when it loads rules), then the rules. Before the drivers load, so udevd applies them to
    the nodes those make, as on a device that boots with them installed."""
    sysusers = Path("/etc/sysusers.d/hwprov.conf")
    sysusers.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "udev" / "hwprov-sysusers.conf", sysusers)
    sh("systemd-sysusers", str(sysusers))
    rules = Path("/etc/udev/rules.d")
    rules.mkdir(parents=True, exist_ok=True)
    for rule in sorted((ROOT / "udev").glob("*.rules")):
        shutil.copy(rule, rules / rule.name)
    sh("udevadm", "control", "--reload")


def network() -> None:
    nics = sorted(n.name for n in Path("/sys/class/net").iterdir() if n.name != "lo")
    if not nics:
        raise RuntimeError("no network interface: the bench's ports cannot reach the guest")
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "link", "set", nics[0], "up")
    sh("ip", "addr", "add", "10.0.2.15/24", "dev", nics[0])
    sh("ip", "route", "add", "default", "via", "10.0.2.2")


def wait_for(
    what: str, ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 180
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start: {log.read_text()[-3000:]}")
        time.sleep(0.2)


def engine() -> list[subprocess.Popen[bytes]]:
    """containerd first, then dockerd on it: under TCG on a busy host, dockerd's own wait for
    the containerd it starts (about 30 s) runs out before containerd is up."""
    data = Path("/var/lib/docker")
    data.mkdir(parents=True, exist_ok=True)
    sh("mount", "-t", "tmpfs", "-o", "size=2G", "tmpfs", str(data))
    sock = Path("/run/containerd/containerd.sock")
    logs = Path("/tmp/containerd.log"), Path("/tmp/dockerd.log")
    containerd = subprocess.Popen(
        ["containerd", "--address", str(sock), "--root", str(data / "containerd"),
         "--state", "/run/containerd", "--log-level", "warn"],
        stdout=logs[0].open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_for("containerd", sock.exists, containerd, logs[0])
    dockerd = subprocess.Popen(
        ["dockerd", "--data-root", str(data), "--storage-driver", "overlay2",
         "--containerd", str(sock), "--iptables=false", "--ip-masq=false",
         "--ip-forward=false", "--bridge=none", "--exec-opt", "native.cgroupdriver=cgroupfs",
         "--log-level", "warn", "--tls=false",
         "-H", "unix:///var/run/docker.sock", "-H", f"tcp://0.0.0.0:{ENGINE_PORT}"],
        stdout=logs[1].open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    up = lambda: sh("docker", "version", check=False).returncode == 0  # noqa: E731
    wait_for("dockerd", up, dockerd, logs[1])
    return [dockerd, containerd]


def runtime(tarball: str) -> None:
    """hwprov as installed on a device (lab/guestruntime.py), first on PATH; the compose CLI
    in tmpfs; the checkout's venv after them."""
    Path(guestruntime.PREFIX).mkdir(parents=True, exist_ok=True)
    sh("tar", "-C", guestruntime.PREFIX, "-xf", tarball)
    binary = compose_binary()
    if binary is not None:
        COMPOSE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(binary, COMPOSE)
    venv = ROOT / ".venv" / "bin"
    rest = os.environ.get("PATH", "/usr/bin:/bin")
    os.environ["PATH"] = f"{guestruntime.PREFIX}/bin:{venv}:{rest}"
    os.environ["LD_LIBRARY_PATH"] = f"{guestruntime.PREFIX}/lib"


def main(port: int, gpio_sim: str, tarball: str) -> int:
    start = time.monotonic()
    runtime(tarball)
    os.environ.setdefault("HOME", "/root")
    udev_rules()
    drivers(gpio_sim)
    cgroup_v1_hierarchies()
    network()
    daemons = engine()
    sh("udevadm", "settle", "--timeout=30", check=False)
    uptime = Path("/proc/uptime").read_text().split()[0]
    print(f"kernelguest: ready after {time.monotonic() - start:.1f} s (uptime {uptime} s)",
          file=sys.stderr, flush=True)  # fmt: skip
    try:
        guestrpc.serve(port)
    finally:
        for daemon in daemons:
            daemon.terminate()
            daemon.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
