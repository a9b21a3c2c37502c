"""Nodes another part of the system uses (the console, a serdev UART, a modem) are never given
for a kind alone; naming them still works, and the plan says which was left out or given."""

from __future__ import annotations

import dataclasses

from hwprov.hardware.inventory import Inventory
from hwprov.hardware.nodeview import NodeInfo, NodeType
from hwprov.hardware.owners import Owners, active_consoles, serdev_controllers
from hwprov.planning.matchlabels import parse_match
from hwprov.planning.planner import plan_service
from hwprov.planning.requirements import DeclaredNode, Requirements
from hwprov.plugins.host import PluginHost
from hwprov.records import Hardware, Props
from udevdata import ftdi_tty, platform_uart

HOST = PluginHost().load(eps=[])
PL011 = "platform/soc/fe201000.serial"
OWNERS = Owners(
    consoles=frozenset({"tty1", "ttyS0"}),
    serdev=serdev_controllers(
        [(f"/sys/devices/{PL011}/serial0/serial0-0", "hci_uart_bcm"),
         ("/sys/devices/platform/soc/fe215040.serial/serial1/serial1-0", None)]  # unbound
    ),
)  # fmt: skip


def attached() -> list[Hardware]:
    inv = Inventory(HOST, read_owners=lambda: OWNERS)
    modem = dataclasses.replace(
        ftdi_tty(1),
        properties=Props({"ID_MM_PORT_TYPE_AT_PRIMARY": "1", "ID_MM_PORT_TYPE_GPS": "1"}),
    )
    inv.load([
        platform_uart("ttyAMA0", "3", PL011, "uart-pl011"),
        platform_uart("ttyS0", "4", "platform/soc/fe215040.serial", "bcm2835-aux-uart"),
        ftdi_tty(0),
        modem,
    ])  # fmt: skip
    return inv.hardware()


def test_the_console_a_serdev_uart_and_a_modem_port_carry_who_owns_them() -> None:
    owners = {h.name: h.owner for h in attached()}
    assert owners == {
        "ttyAMA0": "the serdev driver hci_uart_bcm (on serial0-0) drives this UART",
        "ttyS0": "the kernel console is on ttyS0",
        "ttyUSB0": None,
        "ttyUSB1": "ModemManager types it as a modem port (at_primary, gps)",
    }


def test_consoles_are_read_from_sysfs_or_else_from_proc() -> None:
    assert active_consoles("tty1 ttyS0\n", None) == {"tty1", "ttyS0"}
    proc = "ttyS0                -W- (EC p a)    4:64\ntty0                 -WU (E     )    4:1\n"
    assert active_consoles(None, proc) == {"ttyS0", "tty0"}
    assert active_consoles("", None) == frozenset()


def plan(*matches: str, declared: tuple[DeclaredNode, ...] = (), privileged: bool = False):
    req = Requirements(
        "logger", "c.yml:3",
        matches=tuple(parse_match(f"m{i}", m) for i, m in enumerate(matches)),
        nodes=declared, privileged=privileged,
    )  # fmt: skip
    nodes = {"/dev/ttyS0": NodeInfo("/dev/ttyS0", "/dev/ttyS0", NodeType.CHAR, 4, 64)}
    return plan_service(req, attached(), HOST.grant, nodes)


def test_a_kind_alone_takes_only_the_free_port_and_says_what_it_left_out() -> None:
    p = plan("kind=serial")
    assert [d.host for d in p.devices] == ["/dev/ttyUSB0"]
    label = "label io.hwprov.device.m0 (kind=serial)"
    assert p.notes == (
        f"{label}: serial ttyAMA0 left out: the serdev driver hci_uart_bcm (on serial0-0) "
        "drives this UART; name it (name=ttyAMA0) to map it",
        f"{label}: serial ttyS0 left out: the kernel console is on ttyS0; name it (name=ttyS0) "
        "to map it",
        f"{label}: serial ttyUSB1 left out: ModemManager types it as a modem port (at_primary, "
        "gps); name it (name=ttyUSB1) to map it",
    )


def test_a_label_that_says_more_than_a_kind_is_given_the_owned_port() -> None:
    p = plan("kind=serial, detail.driver=uart-pl011")
    assert [d.host for d in p.devices] == ["/dev/ttyAMA0"]
    assert p.notes[0].endswith(
        "given although the serdev driver hci_uart_bcm (on serial0-0) drives this UART: the "
        "label says more than a kind"
    )


def test_when_only_owned_ports_match_the_label_is_unmet_and_says_which() -> None:
    owned = [h for h in attached() if h.owner]
    req = Requirements("logger", "c.yml:3", matches=(parse_match("m", "kind=serial"),))
    [unmet] = plan_service(req, owned, HOST.grant, {}).unmet
    assert unmet.reason == "only what the system uses matches (ttyAMA0, ttyS0, ttyUSB1)"


def test_naming_the_console_or_declaring_it_still_maps_it_and_says_so() -> None:
    assert [d.host for d in plan("name=ttyS0").devices] == ["/dev/ttyS0"]
    declared = (DeclaredNode("/dev/ttyS0", "/dev/ttyS0", None, "c.yml:9"),)
    [device] = plan(declared=declared).devices
    assert device.host == "/dev/ttyS0"
    assert device.reason.endswith(
        "serial ttyS0, given although the kernel console is on ttyS0 (named explicitly)"
    )


def test_a_privileged_service_is_not_offered_what_the_system_uses() -> None:
    p = plan(privileged=True)
    assert [d.host for d in p.devices] == ["/dev/ttyUSB0"]
    assert "privileged: serial ttyS0 not offered: the kernel console is on ttyS0" in p.notes
