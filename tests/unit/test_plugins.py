"""The four built-in plugins on synthetic snapshots: classification, identity, grants."""

from __future__ import annotations

import dataclasses

import pytest
from hwprov.plugins.host import PluginHost
from hwprov.records import Kind, Props, UdevDevice
from udevdata import console_tty, ftdi_tty, gpio_node, hci, i2c_bus, platform_uart


@pytest.fixture
def host() -> PluginHost:
    return PluginHost().load(eps=[])


def test_i2c_bus_is_classified_and_granted_its_node_only(host: PluginHost) -> None:
    hw = host.classify(i2c_bus(1))
    assert hw is not None and hw.kind == Kind.I2C and hw.details["bus"] == "1"
    assert hw.id == "i2c:/devices/platform/soc/fe804000.i2c/i2c-1"
    grant = host.grant(hw)
    assert grant is not None
    assert [(d.path_on_host, d.path_in_container, d.cgroup_rule) for d in grant.devices] == [
        ("/dev/i2c-1", "/dev/i2c-1", "c 89:1 rw")
    ]
    assert grant.capabilities == () and grant.network_mode is None


def test_usb_serial_identity_is_the_same_with_and_without_udev_database(host: PluginHost) -> None:
    with_db = host.classify(ftdi_tty(0, with_udev_db=True))
    kernel_only = host.classify(ftdi_tty(0, with_udev_db=False))
    assert with_db is not None and kernel_only is not None
    assert with_db.id == kernel_only.id == "serial:usb:0403:6001:A50285BI:if00"
    # the by-id name computed from sysfs is exactly the one udev's 60-serial.rules makes
    assert kernel_only.details["by_id"] == with_db.details["by_id"]
    assert with_db.details["by_id"] == (
        "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"
    )


def test_usb_serial_identity_survives_re_enumeration(host: PluginHost) -> None:
    first, second = host.classify(ftdi_tty(0)), host.classify(ftdi_tty(2))
    assert first is not None and second is not None
    assert first.id == second.id and (first.node, second.node) == ("/dev/ttyUSB0", "/dev/ttyUSB2")


def test_usb_serial_without_serial_number_is_keyed_by_port(host: PluginHost) -> None:
    hw = host.classify(ftdi_tty(0, serial=None, with_udev_db=False))
    assert hw is not None and hw.id == "serial:usb:0403:6001@1-2:if00"
    assert hw.details["by_id"] == "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART-if00-port0"


def test_serial_grant_adds_the_dialout_group_numerically(host: PluginHost) -> None:
    hw = host.classify(ftdi_tty(0))
    assert hw is not None
    grant = host.grant(hw)
    assert grant is not None and grant.group_add == ("20",)
    world = dataclasses.replace(hw, node_mode=0o666)
    assert host.grant(world).group_add == ()  # type: ignore[union-attr]


@pytest.mark.parametrize("n", [0, 1, 7, 63])
def test_console_ttys_are_not_uarts(host: PluginHost, n: int) -> None:
    assert host.classify(console_tty(n)) is None


def test_8250_port_without_a_chip_is_not_a_uart(host: PluginHost) -> None:
    assert host.classify(platform_uart("ttyS1", "0", "platform/serial8250", "serial8250")) is None
    real = host.classify(platform_uart("ttyS0", "4", "pnp0/00:04", "serial"))
    assert real is not None and real.kind == Kind.SERIAL


def test_pl011_uart_is_a_uart(host: PluginHost) -> None:
    hw = host.classify(platform_uart("ttyAMA0", "3", "platform/soc/fe201000.serial", "uart-pl011"))
    assert hw is not None and hw.details["driver"] == "uart-pl011"


def test_gpio_chip_and_gpiomem_need_no_capability(host: PluginHost) -> None:
    chip = gpio_node("gpio", "gpiochip0", 254, 0)
    gpiomem = gpio_node("bcm2835-gpiomem", "gpiomem", 240, 0)
    for dev in (chip, gpiomem):
        hw = host.classify(dev)
        assert hw is not None and hw.kind == Kind.GPIO and not hw.explicit_only
        grant = host.grant(hw)
        assert grant is not None and grant.capabilities == ()


def test_dev_mem_is_explicit_only_and_needs_sys_rawio(host: PluginHost) -> None:
    mem = UdevDevice(
        sys_path="/sys/devices/virtual/mem/mem", subsystem="mem", sys_name="mem",
        node="/dev/mem", major=1, minor=1,
    )  # fmt: skip
    hw = host.classify(mem)
    assert hw is not None and hw.explicit_only
    assert host.grant(hw).capabilities == ("SYS_RAWIO",)  # type: ignore[union-attr]
    null = dataclasses.replace(mem, sys_path="/sys/devices/virtual/mem/null", sys_name="null")
    assert host.classify(null) is None


def test_legacy_sysfs_gpiochip_without_node_is_ignored(host: PluginHost) -> None:
    legacy = UdevDevice(sys_path="/sys/devices/platform/soc/fe200000.gpio/gpio/gpiochip512",
                        subsystem="gpio", sys_name="gpiochip512")  # fmt: skip
    assert host.classify(legacy) is None


def test_bluetooth_grant_is_host_network_net_admin_and_dbus(host: PluginHost) -> None:
    for dev in (hci("hci0"), hci("hci1", usb=True)):
        hw = host.classify(dev)
        assert hw is not None and hw.kind == Kind.BLUETOOTH
        grant = host.grant(hw)
        assert grant is not None
        assert grant.network_mode == "host" and "NET_ADMIN" in grant.capabilities
        assert [(m.source, m.target) for m in grant.mounts] == [("/run/dbus", "/host/run/dbus")]
        assert grant.env["DBUS_SYSTEM_BUS_ADDRESS"] == "unix:path=/host/run/dbus/system_bus_socket"
        assert grant.devices == ()
    usb = host.classify(hci("hci1", usb=True))
    assert usb is not None and usb.details["bus"] == "usb"
    assert usb.id == "bluetooth:usb:0a12:0001@1-3"


def test_hci_connection_children_are_not_adapters(host: PluginHost) -> None:
    conn = dataclasses.replace(hci(), sys_name="hci0:11", devtype="link")
    assert host.classify(conn) is None


ODD = [
    UdevDevice(sys_path="/sys/devices/x", subsystem="tty", sys_name=""),
    UdevDevice(sys_path="/sys/devices/x/i2c-dev/i2c-x", subsystem="i2c-dev", sys_name="i2c-x",
               node="/dev/i2c-x"),
    UdevDevice(sys_path="/sys/devices/x", subsystem="bluetooth", sys_name="hci0"),
    UdevDevice(sys_path="/sys/devices/x", subsystem="gpio", sys_name="gpiochip0",
               node="/dev/gpiochip0"),
    UdevDevice(sys_path="/sys/devices/\udcff", subsystem="tty", sys_name="tty\u00e9" * 1000,
               node="/dev/x", properties=Props({"X": "y" * 100_000})),
]  # fmt: skip


@pytest.mark.parametrize("device", ODD, ids=range(len(ODD)))
def test_odd_udev_data_never_raises(host: PluginHost, device: UdevDevice) -> None:
    hw = host.classify(device)
    if hw is not None:
        host.grant(hw)
        hw.to_json()
    assert host.problems == []


@pytest.mark.parametrize("devtype", [None, "i2c_client"])
def test_an_i2c_client_device_points_back_at_its_bus(devtype: str | None) -> None:
    """The kernel sets no DEVTYPE on a client (seen on the kernel bench: new_device's uevent
    had DRIVER and MODALIAS only), so a real chip added at run time was never probed."""
    bus = i2c_bus(1)
    adapter = bus.ancestors[0]
    client = UdevDevice(
        sys_path=f"{adapter.sys_path}/1-0077", subsystem="i2c", sys_name="1-0077",
        devtype=devtype, attributes=Props({"name": "bmp280"}),
        ancestors=bus.ancestors,
    )  # fmt: skip
    host = PluginHost().load()
    assert host.affects(client) == [bus.sys_path]
    assert host.affects(bus) == []  # the bus itself is classified, not "affecting"
    adapter_device = UdevDevice(
        sys_path=adapter.sys_path, subsystem="i2c", sys_name="i2c-1", ancestors=bus.ancestors[1:]
    )
    assert host.affects(adapter_device) == []  # an adapter is not a client


class _VanishedBus:
    """A ProbeIO whose bus is gone by the time the probe opens it (unplugged mid-scan)."""

    i2c_chips = ()
    deadline = float("inf")

    def open_i2c(self, bus: int) -> object:
        raise OSError(19, "No such device")


def test_a_bus_that_cannot_be_opened_is_reported_in_details_not_a_crash(host: PluginHost) -> None:
    """Found by mypy: the error path merged Props with a dict, a TypeError at run time."""
    hw = host.classify(i2c_bus(1))
    assert hw is not None
    probed = host.probe(hw, _VanishedBus())  # type: ignore[arg-type]
    assert probed.details["probe_error"] == "[Errno 19] No such device"
    assert probed.details["bus"] == "1" and host.problems == []
