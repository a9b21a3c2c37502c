"""The planner on synthetic inventories: policy lines, reasons, and never privileged."""

from __future__ import annotations

from pathlib import Path

import pytest
from hwprov.hardware.nodeview import NodeInfo
from hwprov.planning.matchlabels import LabelSyntaxError, parse_match
from hwprov.planning.planner import plan_service
from hwprov.planning.requirements import DeclaredNode, Requirements
from hwprov.plugins.host import PluginHost
from hwprov.records import Hardware, ProbedDevice, UdevDevice
from hypothesis import given, settings
from hypothesis import strategies as st
from udevdata import console_tty, ftdi_tty, gpio_node, hci, i2c_bus

HOST = PluginHost().load(eps=[])
MEM = UdevDevice(
    sys_path="/sys/devices/virtual/mem/mem",
    subsystem="mem",
    sys_name="mem",
    node="/dev/mem",
    major=1,
    minor=1,
)


def inventory() -> list[Hardware]:
    devices = [
        i2c_bus(1),
        ftdi_tty(0),
        gpio_node("gpio", "gpiochip0", 254, 0),
        gpio_node("bcm2835-gpiomem", "gpiomem", 240, 0),
        MEM,
        hci("hci0"),
        console_tty(1),
    ]
    hw = [h for d in devices if (h := HOST.classify(d))]
    i2c = next(h for h in hw if h.kind == "i2c")
    probed = (
        ProbedDevice("0x44", "sht3x", "identified"),
        ProbedDevice("0x76", "bme280", "identified"),
    )
    return [h if h is not i2c else _with_probe(i2c, probed) for h in hw]


def _with_probe(hw: Hardware, probed: tuple[ProbedDevice, ...]) -> Hardware:
    import dataclasses

    return dataclasses.replace(hw, probed=probed)


def node(path: str, major: int, minor: int, resolved: str | None = None) -> NodeInfo:
    return NodeInfo(path, resolved or path, "char", major, minor)


NODES = {
    n.path: n
    for n in [
        node("/dev/mem", 1, 1),
        node("/dev/gpiomem", 240, 0),
        node("/dev/i2c-1", 89, 1),
        node("/dev/tty0", 4, 0),
        node("/dev/tty1", 4, 1),
        node("/dev/kvm", 10, 232),
        node(
            "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0", 188, 0, "/dev/ttyUSB0"
        ),
        NodeInfo("/dev/ttyACM0", "/dev/ttyACM0", "missing"),
        NodeInfo("/var/run", "/var/run", "other"),
        NodeInfo("/dev/../etc/shadow", None, "outside"),
        NodeInfo("/dev/evil", "/etc/passwd", "outside"),
        NodeInfo(
            "/dev/bus/usb",
            "/dev/bus/usb",
            "dir",
            members=(node("/dev/bus/usb/001/001", 189, 0), node("/dev/bus/usb/001/003", 189, 2)),
        ),
    ]
}


def req(name: str = "svc", **kw: object) -> Requirements:
    return Requirements(service=name, where="docker-compose.yml:3", **kw)  # type: ignore[arg-type]


def declared(*paths: str) -> tuple[DeclaredNode, ...]:
    out = []
    for p in paths:
        host, _, container = p.partition(":")
        out.append(DeclaredNode(host, container or host, None, "docker-compose.yml:9"))
    return tuple(out)


def plan(r: Requirements):
    return plan_service(r, inventory(), HOST.grant, NODES)


def test_node_red_privileged_service_becomes_its_declared_devices_and_sys_rawio() -> None:
    p = plan(
        req(
            "node-red",
            privileged=True,
            network_mode="host",
            capabilities=("SYS_RAWIO",),
            nodes=declared("/dev/mem:/dev/mem", "/dev/gpiomem:/dev/gpiomem", "/dev/i2c-1"),
        )
    )
    assert p.privileged is False and p.was_privileged
    assert [(d.host, d.container, d.permissions) for d in p.devices] == [
        ("/dev/gpiomem", "/dev/gpiomem", "rw"),
        ("/dev/i2c-1", "/dev/i2c-1", "rw"),
        ("/dev/mem", "/dev/mem", "rw"),
    ]
    assert [c.value for c in p.capabilities] == ["SYS_RAWIO"]
    assert "CAP_SYS_RAWIO" in p.capabilities[0].reason or "SYS_RAWIO" in p.capabilities[0].reason
    assert any("never granted" in n for n in p.notes)
    assert all(d.reason for d in p.devices)


def test_bluetooth_block_gets_host_network_net_admin_and_dbus() -> None:
    p = plan(
        req(
            "bluetooth",
            network_mode="host",
            capabilities=("NET_ADMIN",),
            features=("dbus",),
            matches=(parse_match("bt", "kind=bluetooth"),),
        )
    )
    assert {c.value for c in p.capabilities} == {"NET_ADMIN", "NET_RAW"}
    assert [(m.source, m.target) for m in p.mounts] == [("/run/dbus", "/host/run/dbus")]
    assert [e.value for e in p.env] == [
        "DBUS_SYSTEM_BUS_ADDRESS=unix:path=/host/run/dbus/system_bus_socket"
    ]
    assert p.network_mode is None  # already host, nothing to change
    bridge = plan(req("bt2", matches=(parse_match("bt", "kind=bluetooth"),)))
    assert bridge.network_mode is not None and bridge.network_mode.value == "host"


def test_declared_console_ttys_are_mapped_but_never_uarts() -> None:
    p = plan(req("padd", nodes=declared("/dev/tty0", "/dev/tty1")))
    assert [(d.host, d.hardware_id) for d in p.devices] == [
        ("/dev/tty0", None),
        ("/dev/tty1", None),
    ]
    assert all("no plugin claims" in d.reason for d in p.devices)
    assert not [
        h
        for h in inventory()
        if h.kind == "serial" and h.name.startswith("tty") and h.name[3:].isdigit()
    ]


def test_by_id_symlink_maps_the_resolved_node_at_the_declared_path() -> None:
    by_id = "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"
    p = plan(req("gps", nodes=declared(f"{by_id}:/dev/gps")))
    [d] = p.devices
    assert (d.host, d.container, d.cgroup_rule) == ("/dev/ttyUSB0", "/dev/gps", "c 188:0 rw")
    assert d.hardware_id == "serial:usb:0403:6001:A50285BI:if00"
    assert [g.value for g in p.group_add] == ["20"]


def test_absent_non_device_and_escaping_paths_are_reported_not_mapped() -> None:
    p = plan(
        req("x", nodes=declared("/dev/ttyACM0", "/var/run", "/dev/../etc/shadow", "/dev/evil"))
    )
    assert p.devices == ()
    assert [u.what for u in p.unmet] == ["/dev/ttyACM0"] and not p.unmet[0].optional
    assert sum("not a device node" in n for n in p.notes) == 1
    assert sum("outside /dev" in n for n in p.notes) == 2


def test_a_directory_means_its_nodes() -> None:
    p = plan(req("usb", nodes=declared("/dev/bus/usb")))
    assert [d.container for d in p.devices] == ["/dev/bus/usb/001/001", "/dev/bus/usb/001/003"]


def test_match_labels_select_by_sensor_vendor_and_report_unmet() -> None:
    p = plan(
        req(
            "env",
            matches=(
                parse_match("env", "kind=i2c, sensor=bme280"),
                parse_match("gps", "kind=serial, vendor=0403, model=6001, path=/dev/gps"),
                parse_match("modem", "kind=serial, vendor=1a86, optional"),
                parse_match("lora", "kind=serial, vendor=10c4"),
            ),
        )
    )
    assert [(d.host, d.container) for d in p.devices] == [
        ("/dev/ttyUSB0", "/dev/gps"),
        ("/dev/i2c-1", "/dev/i2c-1"),
    ]
    assert [(u.optional, "1a86" in u.what or "10c4" in u.what) for u in p.unmet] == [
        (True, True),
        (False, True),
    ]


def test_kind_match_never_offers_dev_mem_but_naming_it_does() -> None:
    by_kind = plan(req("g", matches=(parse_match("g", "kind=gpio"),)))
    assert "/dev/mem" not in [d.host for d in by_kind.devices]
    assert by_kind.capabilities == ()
    named = plan(req("g", matches=(parse_match("m", "kind=gpio, node=/dev/mem"),)))
    assert [d.host for d in named.devices] == ["/dev/mem"]
    assert [c.value for c in named.capabilities] == ["SYS_RAWIO"]


def test_privileged_with_nothing_declared_gets_attached_hardware_but_not_mem_or_bluetooth() -> None:
    p = plan(req("fbcp", privileged=True))
    hosts = [d.host for d in p.devices]
    assert hosts == ["/dev/gpiochip0", "/dev/gpiomem", "/dev/i2c-1", "/dev/ttyUSB0"]
    assert "/dev/mem" not in hosts and p.capabilities == () and p.network_mode is None
    assert any("hci0 not offered" in n for n in p.notes)
    on_host = plan(req("fbcp", privileged=True, network_mode="host"))
    assert {c.value for c in on_host.capabilities} == {"NET_ADMIN", "NET_RAW"}


def test_opted_out_service_is_left_alone() -> None:
    p = plan(req("x", enabled=False, privileged=True))
    assert not p.managed and p.devices == ()


@pytest.mark.parametrize(
    "value",
    [
        "",
        "kind",
        "kind=",
        "vendr=0403",
        "path=relative, kind=i2c",
        "address=zz, kind=i2c",
        "kind=i2c, kind=gpio",
        "optional",
        42,
    ],
)
def test_bad_match_labels_say_what_is_wrong(value: object) -> None:
    with pytest.raises(LabelSyntaxError) as err:
        parse_match("x", value)
    assert str(err.value)


def test_plan_is_deterministic() -> None:
    r = req("node-red", privileged=True, nodes=declared("/dev/mem", "/dev/i2c-1", "/dev/gpiomem"))
    assert plan(r) == plan(r)
    assert plan_service(r, list(reversed(inventory())), HOST.grant, NODES) == plan(r)


CORPUS = Path(__file__).resolve().parents[3] / "shared" / "compose-corpus" / "corpus"


def corpus_plan(name: str):
    from hwprov.compose.loader import load_project
    from hwprov.planning.requirements import requirements_of

    project = load_project(CORPUS / name, env={})
    return {
        s.name: plan_service(requirements_of(s, project.source), inventory(), HOST.grant, NODES)
        for s in project.services
    }


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/compose-corpus is not here")
def test_corpus_acceptance_on_a_pi() -> None:
    red = corpus_plan("balena-labs-projects__balena-node-red__docker-compose.yml")["node-red"]
    assert [d.host for d in red.devices] == ["/dev/gpiomem", "/dev/i2c-1", "/dev/mem"]
    assert [c.value for c in red.capabilities] == ["SYS_RAWIO"] and red.privileged is False
    bt = corpus_plan("balena-labs-projects__bluetooth__docker-compose.yml")["bluetooth"]
    assert [c.value for c in bt.capabilities] == ["NET_ADMIN"]
    assert [(m.source, m.target) for m in bt.mounts] == [("/run/dbus", "/host/run/dbus")]
    pihole = corpus_plan("klutchell__balena-pihole__docker-compose.yml")
    assert [d.host for d in pihole["padd"].devices] == ["/dev/tty0", "/dev/tty1"]
    assert all(d.hardware_id is None for d in pihole["padd"].devices)  # consoles: not UARTs
    assert pihole["fbcp"].was_privileged and pihole["fbcp"].privileged is False


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/compose-corpus is not here")
def test_whole_corpus_plans_without_privileged() -> None:
    from hwprov.compose.loader import load_project
    from hwprov.errors import ComposeError
    from hwprov.planning.requirements import requirements_of

    planned = 0
    for path in sorted(CORPUS.iterdir()):
        try:
            project = load_project(path, env={"USB_DEVICE": "/dev/bus/usb", "A": "1"})
        except ComposeError:
            continue  # rejected files are checked in test_compose
        for s in project.services:
            p = plan_service(requirements_of(s, project.source), inventory(), HOST.grant, NODES)
            assert p.privileged is False and p.to_json()["privileged"] is False
            planned += 1
    assert planned > 100


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.text(max_size=12))
def test_random_label_values_parse_or_say_why(value: str, slot: str) -> None:
    try:
        match = parse_match(slot, value)
    except LabelSyntaxError as err:
        assert str(err)
        return
    for hw in inventory():
        assert match.matches(hw) in (True, False)


def test_permissions_outside_rwm_are_reported_not_mapped() -> None:
    bad = DeclaredNode("/dev/i2c-1", "/dev/i2c-1", "permissions", "docker-compose.yml:9")
    p = plan(req("x", nodes=(bad,)))
    assert p.devices == () and p.unmet == ()
    assert p.notes == (
        "devices: /dev/i2c-1 (docker-compose.yml:9): permissions 'permissions' "
        "are not letters of 'rwm'; not mapped",
    )


def test_an_address_filter_skips_a_probed_address_that_is_not_hex() -> None:
    odd = _with_probe(
        next(h for h in inventory() if h.kind == "i2c"),
        (ProbedDevice("", None, "busy"), ProbedDevice("0x77", "bmp280", "identified")),
    )
    assert parse_match("env", "kind=i2c, address=0x77").matches(odd)
    assert not parse_match("env", "kind=i2c, address=0x76").matches(odd)
