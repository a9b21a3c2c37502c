"""Every node hwprov maps is a device node below /dev with the numbers udev gave: a hostile or
broken uevent (DEVNAME outside /dev, a link, other numbers) is refused, said, and never mapped."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hwprov.export.cdi import build_specs
from hwprov.hardware.inventory import Inventory
from hwprov.hardware.nodeview import (
    NodeInfo,
    NodeType,
    check_node,
    dev_is_the_kernels,
    kernel_name,
    kernel_node_problem,
    node_problem,
)
from hwprov.planning.matchlabels import parse_match
from hwprov.planning.planner import plan_service
from hwprov.planning.requirements import Requirements
from hwprov.plugins.host import PluginHost
from hwprov.records import Action, DeviceNode, Grant, Hardware, UdevEvent
from udevdata import ftdi_tty, i2c_bus

HOST = PluginHost().load(eps=[])
TTY = NodeInfo("/dev/ttyUSB0", "/dev/ttyUSB0", NodeType.CHAR, 188, 0)


@pytest.mark.parametrize(
    ("path", "major", "minor", "info", "why"),
    [
        ("/dev/ttyUSB0", 188, 0, TTY, None),
        ("/dev/../../tmp/x/zero", 1, 5, None,
         "'/dev/../../tmp/x/zero' is not a normalised path below /dev"),
        ("/tmp/x/zero", 1, 5, None, "'/tmp/x/zero' is not a normalised path below /dev"),
        ("/dev//ttyUSB0", 188, 0, None, "'/dev//ttyUSB0' is not a normalised path below /dev"),
        ("/dev", 0, 0, None, "'/dev' is not a normalised path below /dev"),
        ("/dev/ttyUSB0", None, None, TTY, "udev gave no major:minor for /dev/ttyUSB0"),
        ("/dev/ttyUSB0", 188, 0, NodeInfo("/dev/ttyUSB0", "/dev/ttyUSB0", NodeType.MISSING),
         "/dev/ttyUSB0 is not there"),
        ("/dev/serial0", 4, 64, NodeInfo("/dev/serial0", "/dev/ttyS0", NodeType.CHAR, 4, 64),
         "/dev/serial0 is a link to /dev/ttyS0, not a device node"),
        ("/dev/shm", 0, 0, NodeInfo("/dev/shm", "/dev/shm", NodeType.DIR),
         "/dev/shm is not a device node"),
        ("/dev/ttyUSB0", 1, 1, TTY, "udev said 1:1 but /dev/ttyUSB0 is 188:0"),
    ],
)  # fmt: skip
def test_a_node_is_what_udev_said_or_why_not(
    path: str, major: int | None, minor: int | None, info: NodeInfo | None, why: str | None
) -> None:
    assert node_problem(path, major, minor, info) == why


def test_the_real_dev_of_this_machine_is_checked_as_it_is() -> None:
    assert check_node("/dev/null", 1, 3) is None
    assert check_node("/dev/null", 1, 1) == "udev said 1:1 but /dev/null is 1:3"
    assert (check_node("/dev/stdin", 1, 3) or "").startswith("/dev/stdin is a link to ")
    assert check_node("/dev/no-such-node", 1, 3) == "/dev/no-such-node is not there"
    assert check_node("/dev/../etc/passwd", 1, 3) == (
        "'/dev/../etc/passwd' is not a normalised path below /dev"
    )


def _numbers_of(nodes: dict[str, tuple[int, int]]):  # what a fake /dev holds
    def check(path: str, major: int | None, minor: int | None) -> str | None:
        there = nodes.get(path)
        info = (
            NodeInfo(path, path, NodeType.CHAR, *there)
            if there
            else NodeInfo(path, path, NodeType.MISSING)
        )
        return node_problem(path, major, minor, info)

    return check


class CountingProbe:
    def __init__(self) -> None:
        self.opened = 0

    def __call__(self) -> object:
        self.opened += 1
        return object()  # only the serial port is probed after, and no plugin probes those


def test_the_inventory_keeps_refused_hardware_out_and_says_why() -> None:
    probe = CountingProbe()
    inv = Inventory(HOST, probe, _numbers_of({"/dev/ttyUSB0": (188, 0)}))  # type: ignore[arg-type]
    hostile_bus = dataclasses.replace(i2c_bus(1), node="/dev/../../tmp/x/zero")
    forged = dataclasses.replace(ftdi_tty(0), major=1, minor=1)  # /dev/mem's numbers
    changes = inv.load([hostile_bus, forged])
    assert changes == [] and inv.hardware() == [] and probe.opened == 0  # nothing opened
    assert {r.hardware.name: r.reason for r in inv.refused.values()} == {
        "i2c-1": "'/dev/../../tmp/x/zero' is not a normalised path below /dev",
        "ttyUSB0": "udev said 1:1 but /dev/ttyUSB0 is 188:0",
    }
    # The real uevent for the same device is taken, and the refusal is forgotten.
    added = inv.apply([UdevEvent(Action.CHANGE, ftdi_tty(0))])
    assert [(c.action, c.hardware.name) for c in added] == [(Action.ADD, "ttyUSB0")]
    assert [r.hardware.name for r in inv.refused.values()] == ["i2c-1"]
    inv.apply([UdevEvent(Action.REMOVE, hostile_bus)])
    assert inv.refused == {}


def test_hardware_granted_before_its_node_changed_under_it_is_removed() -> None:
    nodes = {"/dev/ttyUSB0": (188, 0)}
    inv = Inventory(HOST, None, _numbers_of(nodes))
    assert [c.action for c in inv.load([ftdi_tty(0)])] == [Action.ADD]
    nodes["/dev/ttyUSB0"] = (1, 1)  # the node is now another device's
    changes = inv.apply([UdevEvent(Action.CHANGE, ftdi_tty(0))])
    assert [c.action for c in changes] == [Action.REMOVE] and inv.hardware() == []


def _spi(path_on_host: str) -> tuple[Hardware, Grant]:
    hw = Hardware(
        id="spi:x", kind="spi", name="spidev0.0", plugin="x", sys_path="/sys/x",
        node="/dev/spidev0.0", major=153, minor=0,
    )  # fmt: skip
    extra = DeviceNode(path_on_host, "/dev/extra", "rw", 1, 5)
    own = DeviceNode("/dev/spidev0.0", "/dev/spidev0.0", "rw", 153, 0)
    return hw, Grant(hw.id, "an SPI device", devices=(own, extra))


@pytest.mark.parametrize("path", ["/dev/../etc/shadow", "/etc/shadow", "relative/zero"])
def test_a_plugin_granted_node_outside_dev_is_planned_as_a_note_and_left_out_of_cdi(
    path: str,
) -> None:
    hw, grant = _spi(path)
    req = Requirements("adc", "c.yml:3", matches=(parse_match("adc", "kind=spi"),))
    plan = plan_service(req, [hw], lambda _: grant, {})
    assert [d.host for d in plan.devices] == ["/dev/spidev0.0"]
    assert plan.notes == (
        f"label io.hwprov.device.adc (kind=spi): spi spidev0.0: {path} is not a path below "
        "/dev; not mapped",
    )
    [spec] = build_specs([hw], lambda _: grant)
    nodes = spec["devices"][0]["containerEdits"]["deviceNodes"]
    assert [n["path"] for n in nodes] == ["/dev/spidev0.0"]


@pytest.mark.parametrize(
    ("path", "major", "minor", "kernel", "why"),
    [
        ("/dev/ttyUSB0", 188, 0, "ttyUSB0", None),
        ("/dev/bus/usb/001/002", 189, 1, "bus/usb/001/002", None),
        ("/dev/../../tmp/x/zero", 1, 5, "zero",
         "'/dev/../../tmp/x/zero' is not a normalised path below /dev"),
        ("/dev/ttyS1", 1, 1, "mem", "the kernel's node for 1:1 is /dev/mem, not /dev/ttyS1"),
        ("/dev/ttyUSB9", 188, 9, None, "the kernel has no device 188:9"),
        ("/dev/ttyUSB0", None, None, "ttyUSB0", "udev gave no major:minor for /dev/ttyUSB0"),
    ],
)  # fmt: skip
def test_in_a_private_dev_a_node_is_what_the_kernel_named_those_numbers(
    path: str, major: int | None, minor: int | None, kernel: str | None, why: str | None
) -> None:
    assert kernel_node_problem(path, major, minor, kernel) == why


def test_which_dev_is_the_kernels() -> None:
    host = "24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12335116k,mode=755"
    container = "812 811 0:98 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755"
    given = "900 811 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,mode=755"  # -v /dev:/dev
    assert dev_is_the_kernels(host)
    assert not dev_is_the_kernels(container)
    assert dev_is_the_kernels(f"{container}\n{given}")  # the last mount on /dev is seen


def test_the_kernels_name_for_numbers_comes_from_sysfs(tmp_path: Path) -> None:
    (tmp_path / "dev" / "char" / "188:0").mkdir(parents=True)
    (tmp_path / "dev" / "char" / "188:0" / "uevent").write_text(
        "MAJOR=188\nMINOR=0\nDEVNAME=ttyUSB0\n"
    )
    (tmp_path / "dev" / "block" / "8:0").mkdir(parents=True)
    (tmp_path / "dev" / "block" / "8:0" / "uevent").write_text("DEVNAME=sda\nDEVTYPE=disk\n")
    assert kernel_name(188, 0, tmp_path) == "ttyUSB0"
    assert kernel_name(8, 0, tmp_path) == "sda"
    assert kernel_name(188, 1, tmp_path) is None


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare"
)
def test_hwprov_in_a_container_with_its_own_dev_keeps_the_hosts_nodes() -> None:
    """deploy/ runs hwprov on balenaOS without the host's /dev (its own tmpfs, as the engine
    makes it). The scan must still take the host's nodes: before, each was refused as 'not
    there'. A private mount namespace with a tmpfs on /dev is that container's view."""
    scan = [sys.executable, "-m", "hwprov", "scan", "--json", "--no-probe"]
    on_host = json.loads(subprocess.run(scan, capture_output=True, check=True).stdout)
    nodes = sorted(h["node"] for h in on_host["hardware"] if h["node"])
    if not nodes:
        pytest.skip("this machine has no node a plugin classifies")
    engine_dev = (
        "mount --make-rprivate / && mount -t tmpfs tmpfs /dev && "
        "mknod -m 666 /dev/null c 1 3 && mknod -m 666 /dev/zero c 1 5 && "
        'mknod -m 666 /dev/urandom c 1 9 && exec "$@"'
    )
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", engine_dev, "sh", *scan], capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()
    inside = json.loads(done.stdout)
    assert sorted(h["node"] for h in inside["hardware"] if h["node"]) == nodes, inside["refused"]
