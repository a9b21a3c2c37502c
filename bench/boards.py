"""Generated boards (hw-fixtures/README.md format).

- USB serial adapters, each laid out as the x86-gateway's FTDI: a usb_device with its bus/usb
  node, its interface, the usb-serial port and the tty, four sysfs devices and one serial port
  the serial plugin classifies, with a serial number of its own so a service can ask for
  exactly that one. Root hubs take 15 adapters each, as a real xHCI root hub has ~15 ports.
- On-board UARTs, one sysfs device each (as x86's ttyS0 under its pnp device), 100 per
  platform parent: umockdev's testbed costs ~5 ms per device added and more as deep USB
  trees grow, so thousands of devices are only practical this way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PORTS_PER_HUB = 15
XHCI = "/devices/pci0000:00/0000:00:14.0"
DEVICES_PER_ADAPTER = 4  # usb_device, usb_interface, usb-serial port, tty


def serial_of(prefix: str, index: int) -> str:
    return f"{prefix}{index:05d}"


def _hub(bus: int) -> dict[str, Any]:
    return {
        "path": f"{XHCI}/usb{bus}",
        "subsystem": "usb",
        "devtype": "usb_device",
        "driver": "usb",
        "attributes": {"idVendor": "1d6b", "idProduct": "0002", "busnum": str(bus),
                       "devnum": "1", "devpath": "0"},
    }  # fmt: skip


def _adapter(index: int, prefix: str, unit: bool) -> list[dict[str, Any]]:
    bus, port = index // PORTS_PER_HUB + 1, index % PORTS_PER_HUB + 1
    devnum = port + 1  # the root hub is devnum 1
    serial = serial_of(prefix, index)
    id_serial = f"FTDI_FT232R_USB_UART_{serial}"
    top = f"{XHCI}/usb{bus}/{bus}-{port}"
    tty = f"ttyUSB{index}"
    usb_ids = {"ID_VENDOR_ID": "0403", "ID_MODEL_ID": "6001", "ID_SERIAL": id_serial,
               "ID_BUS": "usb"}  # fmt: skip
    device: dict[str, Any] = {
        "path": top,
        "subsystem": "usb",
        "devtype": "usb_device",
        "driver": "usb",
        "node": f"bus/usb/{bus:03d}/{devnum:03d}",
        "dev": f"189:{(bus - 1) * 128 + devnum - 1}",
        "properties": {"BUSNUM": f"{bus:03d}", "DEVNUM": f"{devnum:03d}",
                       "PRODUCT": "403/6001/600", "TYPE": "0/0/0"},
        "attributes": {"idVendor": "0403", "idProduct": "6001", "manufacturer": "FTDI",
                       "product": "FT232R USB UART", "busnum": str(bus), "devnum": str(devnum),
                       "devpath": str(port), "speed": "12", "serial": serial},
        "udev": usb_ids,
    }  # fmt: skip
    if unit:
        device = {"id": f"a{index}", "plugged": False, **device}
    return [
        device,
        {"path": f"{top}/{bus}-{port}:1.0", "subsystem": "usb", "devtype": "usb_interface",
         "driver": "ftdi_sio", "attributes": {"bInterfaceNumber": "00", "bInterfaceClass": "ff"}},
        {"path": f"{top}/{bus}-{port}:1.0/{tty}", "subsystem": "usb-serial",
         "driver": "ftdi_sio", "attributes": {"port_number": "0"}},
        {"path": f"{top}/{bus}-{port}:1.0/{tty}/tty/{tty}", "subsystem": "tty", "node": tty,
         "dev": f"188:{index}",
         "udev": {**usb_ids, "ID_USB_INTERFACE_NUM": "00", "ID_USB_DRIVER": "ftdi_sio"},
         "links": [f"serial/by-id/usb-{id_serial}-if00-port0"]},
    ]  # fmt: skip


def usb_serial_board(name: str, adapters: int, prefix: str, hot_pluggable: bool) -> str:
    """A board of `adapters` FTDI adapters, all present at boot or all unplugged units."""
    hubs = (adapters - 1) // PORTS_PER_HUB + 1 if adapters else 1
    devices: list[dict[str, Any]] = [
        {"path": XHCI, "subsystem": "pci", "driver": "xhci_hcd",
         "properties": {"PCI_ID": "8086:A36D"}},
    ]  # fmt: skip
    devices += [_hub(bus) for bus in range(1, hubs + 1)]
    for index in range(adapters):
        devices += _adapter(index, prefix, hot_pluggable)
    return _board(name, f"{adapters} FTDI USB serial adapters", "the FTDI of x86-gateway", devices)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


UARTS_PER_PARENT = 100


def uart_name(index: int) -> str:
    return f"ttyBS{index}"


def uart_board(name: str, ports: int) -> str:
    """A board of `ports` 16550A-like UARTs, all present at boot."""
    devices: list[dict[str, Any]] = []
    for index in range(ports):
        parent = f"/devices/platform/bench-uart.{index // UARTS_PER_PARENT}"
        if index % UARTS_PER_PARENT == 0:
            devices.append({"path": parent, "subsystem": "platform", "driver": "serial8250"})
        devices.append(
            {"path": f"{parent}/tty/{uart_name(index)}", "subsystem": "tty",
             "node": uart_name(index), "dev": f"204:{index}",
             "attributes": {"type": "4", "port": f"0x{0x3F8 + 8 * index:X}", "irq": "4"}}
        )  # fmt: skip
    return _board(name, f"{ports} on-board UARTs", "x86-gateway's ttyS0", devices)


def _board(name: str, what: str, model: str, devices: list[dict[str, Any]]) -> str:
    doc = {
        "board": name,
        "name": f"generated: {what}",
        "provenance": f"generated by bench/boards.py; each modelled on {model}",
        "devices": devices,
    }
    return yaml.safe_dump(doc, sort_keys=False)
