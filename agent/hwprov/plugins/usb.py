"""USB identity from sysfs, computed the way udev's usb_id builtin and 60-serial.rules do.

Inside a container there is no udev database, so ID_SERIAL and /dev/serial/by-id links are
missing; computing them from sysfs gives the same identity whichever way a device was seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hwprov.records import UdevDevice

# udev_replace_chars() keeps these and turns anything else into '_'.
_UNSAFE = re.compile(r"[^0-9A-Za-z#+\-.:=@_]")


def udev_safe(text: str) -> str:
    """Whitespace runs become one '_' (udev_replace_whitespace), then unsafe chars become '_'."""
    return _UNSAFE.sub("_", "_".join(text.split()))


@dataclass(frozen=True, slots=True)
class UsbIdentity:
    vendor_id: str
    model_id: str
    serial: str | None
    manufacturer: str | None
    product: str | None
    port_path: str  # "<busnum>-<devpath>", e.g. "1-1.3": where it is plugged
    interface: str | None  # bInterfaceNumber, two hex digits

    @property
    def id_serial(self) -> str:
        """udev's ID_SERIAL: vendor_model[_serial], names from the USB strings when present."""
        vendor = udev_safe(self.manufacturer) if self.manufacturer else self.vendor_id
        model = udev_safe(self.product) if self.product else self.model_id
        base = f"{vendor}_{model}"
        return f"{base}_{udev_safe(self.serial)}" if self.serial else base

    def details(self) -> dict[str, str | None]:
        """The identity as Hardware details, under the keys match labels use (docs/labels.md)."""
        return {
            "vendor_id": self.vendor_id,
            "model_id": self.model_id,
            "serial": self.serial,
            "manufacturer": self.manufacturer,
            "product": self.product,
            "usb_port": self.port_path,
        }

    @property
    def stable_key(self) -> str:
        """vid:pid:serial when the device has a serial number, else where it is plugged."""
        if self.serial:
            return f"{self.vendor_id}:{self.model_id}:{self.serial}"
        return f"{self.vendor_id}:{self.model_id}@{self.port_path}"


def usb_identity(device: UdevDevice) -> UsbIdentity | None:
    usb = device.ancestor("usb", "usb_device")
    if usb is None:
        return None
    attrs = usb.attributes
    vendor, model = attrs.get("idVendor"), attrs.get("idProduct")
    if not vendor or not model:
        return None
    iface = device.ancestor("usb", "usb_interface")
    busnum = attrs.get("busnum", "")
    devpath = attrs.get("devpath", "")
    # Without the attributes the sysfs name of the device ("1-1.3") is the port path already.
    port = f"{busnum}-{devpath}" if busnum and devpath else usb.sys_path.rsplit("/", 1)[-1]
    return UsbIdentity(
        vendor_id=vendor.lower(),
        model_id=model.lower(),
        serial=attrs.get("serial") or None,
        manufacturer=attrs.get("manufacturer") or None,
        product=attrs.get("product") or None,
        port_path=port,
        interface=iface.attributes.get("bInterfaceNumber") if iface else None,
    )


USB_ATTRIBUTES = (
    "idVendor", "idProduct", "serial", "manufacturer", "product", "busnum", "devnum", "devpath",
    "bInterfaceNumber",
)  # fmt: skip
