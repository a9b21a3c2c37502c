"""A real CDI consumer reads what `hwprov cdi` writes: rootful podman (Debian 12's 4.3.1).

`hwprov cdi` runs on the simulated Raspberry Pi 4 with an FTDI adapter plugged; podman then runs
busybox with `--device hwprov.io/...` and the container must have the nodes (type and numbers
from the spec: rootful podman makes them with mknod, so the simulator's numbers are fine), the
bluetooth kind's /run/dbus mount and its DBUS_SYSTEM_BUS_ADDRESS.

podman 4.3 reads specs only from /etc/cdi and /var/run/cdi (it has no cdi_spec_dirs setting),
so it runs under `unshare --mount` with a tmpfs on /run: the specs go to the namespace's
/run/cdi, and podman's run state, its runtime's and the /run/dbus the spec mounts live and die
there. Its storage is a temp folder and the container runs from a folder rootfs holding the
static busybox the offline images are made of (hwprov.sandbox.images), so nothing is pulled,
loaded or left in the host's /var/lib/containers. Run it under the engine lock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import sim
from hwprov.sandbox.images import BUSYBOX

_MISSING = [
    what
    for what, ok in (
        ("root", os.geteuid() == 0),
        ("podman", shutil.which("podman") is not None),
        ("unshare", shutil.which("unshare") is not None),
        (str(BUSYBOX), BUSYBOX.exists()),
    )
    if not ok
]
pytestmark = pytest.mark.skipif(
    bool(_MISSING), reason=f"needs {', '.join(_MISSING)} (scripts/bootstrap.sh, as root)"
)

FTDI_BY_ID = "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"
DEVICES = (
    "hwprov.io/i2c=1",
    "hwprov.io/serial=ftdi-A50285BI",
    "hwprov.io/gpio=gpiochip0",
    "hwprov.io/bluetooth=hci0",
)
# What the container reports: each node's type and hex numbers, the variable, its mounts.
INSIDE = (
    "for n in /dev/i2c-1 /dev/ttyUSB0 " + FTDI_BY_ID + " /dev/gpiochip0; do "
    "stat -c 'node %n %F %t %T' $n; done; "
    'echo "env DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SYSTEM_BUS_ADDRESS"; '
    "grep ' /host/run/dbus ' /proc/mounts | sed 's/^/mount /'"
)
# The ulimits: podman 4.3 asks runc for nofile 1048576 and nproc 4194304, which a host without
# CAP_SYS_RESOURCE and lower hard limits refuses ("error setting rlimit type 7: operation not
# permitted", then type 6).
SCRIPT = r"""
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/cdi /run/dbus
cp "$SPECS"/* /run/cdi/
exec podman --root "$WORK/storage" --runroot /run/podman --tmpdir /run/libpod \
    --cgroup-manager cgroupfs --events-backend file \
    run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
    $FLAGS --rootfs "$WORK/rootfs" "$@"
"""


def podman(
    work: Path, specs: Path, devices: tuple[str, ...], *command: str
) -> subprocess.CompletedProcess[str]:
    # Options go before --rootfs: the first argument after it is the rootfs, then the command.
    flags = " ".join(f"--device {d}" for d in devices)
    return subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-euc",
            SCRIPT,
            "podman",
            *command,
        ],
        env={**os.environ, "WORK": str(work), "SPECS": str(specs), "FLAGS": flags},
        capture_output=True,
        text=True,
        timeout=120,
    )


def write_specs(out: Path, *flags: str) -> dict[str, dict[str, Any]]:
    done = sim(
        "sh",
        "-c",
        f"hwprov sim plug ftdi >/dev/null && hwprov cdi {' '.join(flags)} --output {out}/",
    )
    assert done.returncode == 0, done.stderr
    specs = [yaml.safe_load(p.read_text()) for p in sorted(out.glob("hwprov-*.yaml"))]
    return {s["kind"]: s for s in specs}


def podman_cgroups() -> set[Path]:
    """The cgroups podman's cgroupfs manager makes for its containers and conmon, in every
    hierarchy: podman removes the containers' but leaves these behind, empty."""
    root = Path("/sys/fs/cgroup")
    return set(root.glob("libpod_parent")) | set(root.glob("*/libpod_parent"))


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    rootfs = tmp_path / "rootfs"
    for d in ("bin", "dev", "proc", "sys", "tmp", "etc"):
        (rootfs / d).mkdir(parents=True)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    before = podman_cgroups()
    yield tmp_path
    made = podman_cgroups() - before
    for top in made:  # deepest first: a cgroup goes only once it has no children
        for path in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if path.is_dir():
                path.rmdir()
        top.rmdir()
    assert not podman_cgroups() - before, "podman left cgroups that could not be removed"


def edits(specs: dict[str, dict[str, Any]], device: str) -> dict[str, Any]:
    kind, _, name = device.partition("=")
    (found,) = (d for d in specs[kind]["devices"] if d["name"] == name)
    return dict(found["containerEdits"])


def test_podman_maps_the_nodes_mount_and_env_of_hwprovs_specs(work: Path) -> None:
    specs = write_specs(work / "specs")
    assert {k: s["cdiVersion"] for k, s in specs.items()} == {
        "hwprov.io/bluetooth": "0.3.0",
        "hwprov.io/gpio": "0.3.0",
        "hwprov.io/i2c": "0.5.0",  # a name that begins with a digit
        "hwprov.io/serial": "0.5.0",  # the by-id node's hostPath
    }
    done = podman(work, work / "specs", DEVICES, "/bin/busybox", "sh", "-c", INSIDE)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()

    want_nodes = {
        n["path"]: f"character special file {n['major']:x} {n['minor']:x}"
        for d in DEVICES[:3]
        for n in edits(specs, d)["deviceNodes"]
    }
    assert set(want_nodes) == {"/dev/i2c-1", "/dev/ttyUSB0", FTDI_BY_ID, "/dev/gpiochip0"}
    got_nodes = {
        line.split()[1]: line.split(maxsplit=2)[2] for line in lines if line.startswith("node ")
    }
    assert got_nodes == want_nodes
    bluetooth = edits(specs, "hwprov.io/bluetooth=hci0")
    (env,) = bluetooth["env"]
    assert f"env {env}" in lines
    (mount,) = bluetooth["mounts"]
    (inside,) = [line.split() for line in lines if line.startswith("mount ")]
    assert inside[2] == mount["containerPath"]
    assert {"nosuid", "nodev", "noexec"} <= set(inside[4].split(","))


def test_annotated_specs_are_0_6_0_which_podman_4_3_refuses(work: Path) -> None:
    version = subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout
    if not version.startswith("podman version 4.3."):
        pytest.skip(f"the refusal is podman 4.3's (CDI 0.5 loader); this is {version.strip()}")
    specs = write_specs(work / "specs", "--annotations")
    assert {s["cdiVersion"] for s in specs.values()} == {"0.6.0"}
    done = podman(work, work / "specs", ("hwprov.io/i2c=1",), "/bin/busybox", "true")
    assert done.returncode != 0
    assert "unresolvable CDI devices hwprov.io/i2c=1" in done.stderr
