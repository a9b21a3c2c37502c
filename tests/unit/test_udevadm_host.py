"""udev/'s rules under the real `udevadm test` (udev 252) on this host, in a mount namespace.

`udevadm test` is not a dry run: it chmods and chowns the device node, makes /dev links and
writes /run/udev/data. So it runs under `unshare --mount`, with a tmpfs on /dev (the test makes
the nodes there) and on /run, the rules folder and an /etc/group with udev/hwprov-sysusers.conf
applied (by the real systemd-sysusers, on a copy) bound over the host's. The test checks that
the host's /dev, /run/udev, /etc/group and /etc/udev/rules.d are as they were.

Which devices where: the host's own sysfs has a serial port and /dev/null, but no i2c-dev,
gpiochip, gpiomem or spidev. Those four come from a small sysfs tree the test builds (uevent,
dev, subsystem links, parents up to /sys/devices/platform, as the kernel lays them out) and
binds over /sys; SYSTEMD_DEVICE_VERIFY_SYSFS=0 lets sd-device read a tree that is not sysfs.
The rules engine, path_id and group lookup are udevadm's own. The kernel bench's guest
(tests/hil/test_kernel_truths.py) checks the same rules on real drivers under a running udevd.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

UDEV = Path(__file__).resolve().parents[2] / "udev"
RULES = UDEV / "99-hwprov.rules"
SYSUSERS = UDEV / "hwprov-sysusers.conf"

_MISSING = [
    what
    for what, ok in (
        ("root", os.geteuid() == 0),
        ("udevadm", shutil.which("udevadm") is not None),
        ("unshare", shutil.which("unshare") is not None),
        ("systemd-sysusers", shutil.which("systemd-sysusers") is not None),
    )
    if not ok
]
pytestmark = pytest.mark.skipif(
    bool(_MISSING), reason=f"needs {', '.join(_MISSING)} (Debian's udev and systemd, as root)"
)


@dataclass(frozen=True, slots=True)
class FakeDevice:
    """A device of the built sysfs: its /sys/devices path, class or bus, and node numbers."""

    path: str
    subsystem: str
    bus: bool = False  # subsystem is a bus (/sys/bus/X/devices), not a class
    node: tuple[int, int] | None = None
    attrs: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1]


SOC = "/devices/platform/soc"
# Parents first: sd-device refuses a /sys/devices directory without a uevent file, and path_id
# walks every parent up to /sys/devices/platform.
FAKE_SYSFS = (
    FakeDevice("/devices/platform", "platform", bus=True),
    FakeDevice(SOC, "platform", bus=True),
    FakeDevice(f"{SOC}/fe804000.i2c", "platform", bus=True),
    FakeDevice(f"{SOC}/fe804000.i2c/i2c-1", "i2c", bus=True),
    FakeDevice(f"{SOC}/fe804000.i2c/i2c-1/i2c-dev/i2c-1", "i2c-dev", node=(89, 1)),
    FakeDevice(f"{SOC}/fe200000.gpio", "platform", bus=True),
    FakeDevice(f"{SOC}/fe200000.gpio/gpiochip0", "gpio", bus=True, node=(254, 0)),
    FakeDevice(f"{SOC}/fe200000.gpiomem", "platform", bus=True),
    FakeDevice(f"{SOC}/fe200000.gpiomem/bcm2835-gpiomem/gpiomem", "bcm2835-gpiomem", node=(239, 0)),
    FakeDevice(f"{SOC}/fe204000.spi", "platform", bus=True),
    FakeDevice(f"{SOC}/fe204000.spi/spi_master/spi0/spi0.0", "spi", bus=True),
    FakeDevice(
        f"{SOC}/fe204000.spi/spi_master/spi0/spi0.0/spidev/spidev0.0", "spidev", node=(153, 0)
    ),
    FakeDevice("/devices/platform/serial8250", "platform", bus=True),
    # 8250 registers ports with no UART behind them (type 0): the rules must leave them alone.
    FakeDevice(
        "/devices/platform/serial8250/tty/ttyS3", "tty", node=(4, 67), attrs=(("type", "0"),)
    ),
)


@dataclass(frozen=True, slots=True)
class Expect:
    """What 99-hwprov.rules must do to a device: its group (None: leave it) and the tag."""

    syspath: str
    node: str
    group: str | None
    links: tuple[str, ...] = ()


FAKE_EXPECT = (
    Expect(
        "/sys/class/i2c-dev/i2c-1", "/dev/i2c-1", "i2c", ("/dev/i2c/by-path/platform-fe804000.i2c",)
    ),
    Expect("/sys/bus/gpio/devices/gpiochip0", "/dev/gpiochip0", "gpio"),
    Expect("/sys/class/bcm2835-gpiomem/gpiomem", "/dev/gpiomem", "gpio"),
    Expect("/sys/class/spidev/spidev0.0", "/dev/spidev0.0", "spi"),
    Expect("/sys/class/tty/ttyS3", "/dev/ttyS3", None),
)


def build_sysfs(root: Path) -> None:
    for d in FAKE_SYSFS:
        here = root / d.path.lstrip("/")
        here.mkdir(parents=True, exist_ok=True)
        lines = []
        if d.node:
            major, minor = d.node
            lines = [f"MAJOR={major}", f"MINOR={minor}", f"DEVNAME={d.name}"]
            (here / "dev").write_text(f"{major}:{minor}\n")
        (here / "uevent").write_text("".join(f"{line}\n" for line in lines))
        for attr, value in d.attrs:
            (here / attr).write_text(f"{value}\n")
        kind = root / ("bus" if d.bus else "class") / d.subsystem
        listing = kind / "devices" if d.bus else kind
        listing.mkdir(parents=True, exist_ok=True)
        (here / "subsystem").symlink_to(os.path.relpath(kind, here))
        if not (listing / d.name).is_symlink():
            (listing / d.name).symlink_to(os.path.relpath(here, listing))


def real_serial_port() -> str | None:
    """The host's first 8250 port, if it has one (arm hosts may not)."""
    ports = sorted(Path("/sys/class/tty").glob("ttyS[0-9]*"), key=lambda p: int(p.name[4:]))
    return str(ports[0]) if ports else None


def real_expect() -> list[Expect]:
    found = [Expect("/sys/class/mem/null", "/dev/null", None)]
    if port := real_serial_port():
        uart = (Path(port) / "type").read_text().strip() != "0"
        found.append(Expect(port, f"/dev/{Path(port).name}", "dialout" if uart else None))
    return found


def groups_with_sysusers(root: Path) -> dict[str, int]:
    """/etc/group as systemd-sysusers leaves it after the conf file, in a copy under root."""
    (root / "etc").mkdir(parents=True)
    for name in ("group", "passwd"):
        shutil.copy2(f"/etc/{name}", root / "etc" / name)
    conf = root / "usr/lib/sysusers.d"
    conf.mkdir(parents=True)
    shutil.copy(SYSUSERS, conf / "hwprov.conf")
    done = subprocess.run(
        ["systemd-sysusers", f"--root={root}"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return {
        line.split(":")[0]: int(line.split(":")[2])
        for line in (root / "etc/group").read_text().splitlines()
        if line.count(":") >= 3
    }


SCRIPT = r"""
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=0755 tmpfs /dev
while read -r node major minor; do mknod -m 0600 "$node" c "$major" "$minor"; done <"$WORK/nodes"
mount --bind "$WORK/rules.d" /etc/udev/rules.d
mount --bind "$WORK/root/etc/group" /etc/group
test_all() {
    while read -r name syspath; do
        log="$WORK/out/$name.log"
        udevadm test --action=add "$syspath" >"$log" 2>&1 || echo "exit $?" >>"$log"
    done <"$1"
}
test_all "$WORK/real"
mount --bind "$WORK/sys" /sys
SYSTEMD_DEVICE_VERIFY_SYSFS=0 test_all "$WORK/fake"
while read -r node major minor; do
    stat -c '%n %g %a' "$node"
done <"$WORK/nodes" >"$WORK/out/nodes"
find /dev -type l -printf '%p\n' >"$WORK/out/links"
"""


@dataclass(frozen=True, slots=True)
class Run:
    logs: dict[str, str]
    nodes: dict[str, tuple[int, str]]  # node: (gid, octal mode) after udevadm
    links: set[str]
    gids: dict[str, int]


def host_state() -> dict[str, object]:
    """What `udevadm test` outside a namespace would change on the host."""

    def entries(folder: str) -> list[tuple[str, int, int, int, int]]:
        if not os.path.isdir(folder):
            return []
        found = []
        for e in sorted(os.scandir(folder), key=lambda e: e.name):
            st = e.stat(follow_symlinks=False)
            found.append((e.name, st.st_mode, st.st_uid, st.st_gid, st.st_rdev))
        return found

    return {
        "dev": entries("/dev"),
        "dev/char": entries("/dev/char"),
        "run/udev": os.path.exists("/run/udev"),
        "run/udev/data": entries("/run/udev/data"),
        "group": Path("/etc/group").read_bytes(),
        "rules.d": entries("/etc/udev/rules.d"),
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    work = tmp_path_factory.mktemp("udevadm")
    gids = groups_with_sysusers(work / "root")
    (work / "rules.d").mkdir()
    shutil.copy(RULES, work / "rules.d" / RULES.name)
    build_sysfs(work / "sys")
    (work / "out").mkdir()
    real, fake = real_expect(), FAKE_EXPECT
    rdev = {e.node: os.stat(e.node).st_rdev for e in real}
    numbers = {node: (os.major(r), os.minor(r)) for node, r in rdev.items()}
    numbers |= {f"/dev/{d.name}": d.node for d in FAKE_SYSFS if d.node}
    (work / "nodes").write_text("".join(f"{n} {ma} {mi}\n" for n, (ma, mi) in numbers.items()))
    for name, group in (("real", real), ("fake", fake)):
        (work / name).write_text("".join(f"{Path(e.syspath).name} {e.syspath}\n" for e in group))
    before = host_state()
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-euc", SCRIPT],
        env={**os.environ, "WORK": str(work)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert host_state() == before, "udevadm test changed the host"
    out = work / "out"
    nodes = {}
    for line in (out / "nodes").read_text().splitlines():
        node, gid, mode = line.split()
        nodes[node] = (int(gid), mode)
    yield Run(
        logs={p.stem: p.read_text() for p in out.glob("*.log")},
        nodes=nodes,
        links=set((out / "links").read_text().split()),
        gids=gids,
    )


def test_sysusers_makes_the_groups_debian_lacks(run: Run) -> None:
    assert {"i2c", "dialout", "gpio", "spi"} <= set(run.gids)


def test_udevadm_reads_every_rule_without_a_complaint(run: Run) -> None:
    assert len(run.logs) == len(FAKE_EXPECT) + len(real_expect())
    for name, log in run.logs.items():
        assert f"Reading rules file: /etc/udev/rules.d/{RULES.name}" in log, name
        ours = [line for line in log.splitlines() if RULES.name in line]
        complaints = [
            line for line in ours if re.search(r"unknown|invalid|ignoring|error", line, re.I)
        ]
        assert complaints == [], (name, complaints)
        assert "exit " not in log.splitlines()[-1], (name, log[-2000:])


@pytest.mark.parametrize("expect", [*FAKE_EXPECT, *real_expect()], ids=lambda e: e.syspath)
def test_each_device_gets_its_group_mode_and_tag(run: Run, expect: Expect) -> None:
    name = Path(expect.syspath).name
    log = run.logs[name]
    assert f"DEVNAME={expect.node}" in log, log[-2000:]  # udevadm ran the device through
    found = re.search(r"^TAGS=(.*)$", log, re.M)  # no TAGS line: no tags
    tags = found.group(1).split(":") if found else []
    ours = [line for line in log.splitlines() if f"{RULES.name}:" in line]
    if expect.group is None:
        assert "hwprov" not in tags
        assert not [line for line in ours if " GROUP " in line or " MODE " in line], ours
        return
    gid = run.gids[expect.group]
    assert "hwprov" in tags
    assert any(line.endswith(f" GROUP {gid}") for line in ours), ours
    assert any(line.endswith(" MODE 0660") for line in ours), ours
    assert f"Setting permissions {expect.node}, uid=0, gid={gid}, mode=0660" in log
    assert run.nodes[expect.node] == (gid, "660")  # and the node in the namespace's /dev is so
    for link in expect.links:
        assert link in run.links
