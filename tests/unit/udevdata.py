"""Synthetic udev snapshots, shaped like the fixture boards, for pure plugin tests."""

from __future__ import annotations

from hwprov.records import Ancestor, Props, UdevDevice

FTDI_USB = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-2"


def i2c_bus(n: int = 1) -> UdevDevice:
    adapter = f"/sys/devices/platform/soc/fe804000.i2c/i2c-{n}"
    return UdevDevice(
        sys_path=f"{adapter}/i2c-dev/i2c-{n}",
        subsystem="i2c-dev",
        sys_name=f"i2c-{n}",
        node=f"/dev/i2c-{n}",
        major=89,
        minor=n,
        attributes=Props({"name": "bcm2835 (i2c@7e804000)"}),
        ancestors=(
            Ancestor(adapter, "i2c", "i2c_adapter", None),
            Ancestor("/sys/devices/platform/soc/fe804000.i2c", "platform", None, "i2c-bcm2835"),
        ),
    )


def ftdi_tty(
    index: int = 0, *, with_udev_db: bool = True, serial: str | None = "A50285BI"
) -> UdevDevice:
    usb_attrs = {
        "idVendor": "0403",
        "idProduct": "6001",
        "manufacturer": "FTDI",
        "product": "FT232R USB UART",
        "busnum": "1",
        "devpath": "2",
    }
    if serial:
        usb_attrs["serial"] = serial
    iface = f"{FTDI_USB}/1-2:1.0"
    links: tuple[str, ...] = ()
    if with_udev_db:
        links = (
            "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0",
            "/dev/serial/by-path/pci-0000:00:14.0-usb-0:2:1.0-port0",
        )
    return UdevDevice(
        sys_path=f"{iface}/ttyUSB{index}/tty/ttyUSB{index}",
        subsystem="tty",
        sys_name=f"ttyUSB{index}",
        node=f"/dev/ttyUSB{index}",
        major=188,
        minor=index,
        node_gid=20,
        node_mode=0o660,
        links=links,
        ancestors=(
            Ancestor(f"{iface}/ttyUSB{index}", "usb-serial", None, "ftdi_sio",
                     Props({"port_number": "0"})),
            Ancestor(iface, "usb", "usb_interface", "ftdi_sio", Props({"bInterfaceNumber": "00"})),
            Ancestor(FTDI_USB, "usb", "usb_device", "usb", Props(usb_attrs)),
        ),
    )  # fmt: skip


def console_tty(n: int) -> UdevDevice:
    return UdevDevice(
        sys_path=f"/sys/devices/virtual/tty/tty{n}",
        subsystem="tty",
        sys_name=f"tty{n}",
        node=f"/dev/tty{n}",
        major=4,
        minor=n,
    )


def platform_uart(name: str, uart_type: str, parent: str, driver: str) -> UdevDevice:
    return UdevDevice(
        sys_path=f"/sys/devices/{parent}/tty/{name}",
        subsystem="tty",
        sys_name=name,
        node=f"/dev/{name}",
        major=4,
        minor=64,
        attributes=Props({"type": uart_type}),
        ancestors=(Ancestor(f"/sys/devices/{parent}", "platform", None, driver),),
    )


def gpio_node(subsystem: str, name: str, major: int, minor: int) -> UdevDevice:
    parent = "/sys/devices/platform/soc/fe200000.gpio"
    return UdevDevice(
        sys_path=f"{parent}/{name}",
        subsystem=subsystem,
        sys_name=name,
        node=f"/dev/{name}",
        major=major,
        minor=minor,
        ancestors=(Ancestor(parent, "platform", None, "pinctrl-bcm2711"),),
    )


def hci(name: str = "hci0", usb: bool = False) -> UdevDevice:
    if usb:
        ancestors: tuple[Ancestor, ...] = (
            Ancestor(f"{FTDI_USB}/1-3:1.0", "usb", "usb_interface", "btusb"),
            Ancestor("/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3", "usb", "usb_device", "usb",
                     Props({"idVendor": "0a12", "idProduct": "0001", "busnum": "1",
                            "devpath": "3"})),
        )  # fmt: skip
    else:
        ancestors = (
            Ancestor("/sys/devices/platform/soc/fe201000.serial/serial0/serial0-0", "serial", None,
                     "hci_uart_bcm"),
        )  # fmt: skip
    return UdevDevice(
        sys_path=f"{ancestors[0].sys_path}/bluetooth/{name}",
        subsystem="bluetooth",
        sys_name=name,
        devtype="host",
        ancestors=ancestors,
    )
