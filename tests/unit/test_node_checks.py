"""Every node hwprov maps is a device node below /dev with the numbers udev gave: a hostile or
broken uevent (DEVNAME outside /dev, a link, other numbers) is refused, said, and never mapped."""

from __future__ import annotations

import dataclasses

import pytest
from hwprov.export.cdi import build_specs
from hwprov.hardware.inventory import Inventory
from hwprov.hardware.nodeview import NodeInfo, NodeType, check_node, node_problem
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
