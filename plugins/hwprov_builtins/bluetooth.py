"""Bluetooth adapters (hciN), on a UART or a USB dongle, used through the host's BlueZ.

An hci adapter has no /dev node. AF_BLUETOOTH sockets exist only in the initial network
namespace (kernel bt_sock_create), so the container needs the host network; the mgmt socket
needs NET_ADMIN; bluetoothd is reached over the host's system D-Bus, which balena mounts at
/host/run/dbus for the io.balena.features.dbus label.
"""

from __future__ import annotations

from hwprov.plugins import (
    DBUS,
    USB_ATTRIBUTES,
    Grant,
    Hardware,
    Kind,
    Props,
    UdevDevice,
    hookimpl,
    usb_identity,
)

NAME = "bluetooth"


@hookimpl(trylast=True)
def hwprov_kinds() -> list[str]:
    return [Kind.BLUETOOTH]


@hookimpl(trylast=True)
def hwprov_subsystems() -> list[str]:
    return ["bluetooth"]


@hookimpl(trylast=True)
def hwprov_sysfs_attributes() -> list[str]:
    return list(USB_ATTRIBUTES)


@hookimpl(trylast=True)
def hwprov_classify(device: UdevDevice) -> Hardware | None:
    # hciN is the adapter ("host"); its connections (hci0:11) are children of other devtypes.
    if device.subsystem != "bluetooth" or device.devtype != "host":
        return None
    usb = usb_identity(device)
    details: dict[str, str | None] = {
        "driver": next((a.driver for a in device.ancestors if a.driver), None),
        "bus": "usb" if usb else "uart",
    }
    if usb:
        identity = f"bluetooth:usb:{usb.stable_key}"
        details.update(usb.details())
    else:
        parent = device.ancestors[0].sys_path if device.ancestors else device.sys_path
        identity = f"bluetooth:{parent.removeprefix('/sys')}"
    return Hardware.from_device(
        device, kind=Kind.BLUETOOTH, id=identity, plugin=NAME, details=details
    )


@hookimpl(trylast=True)
def hwprov_grant(hardware: Hardware) -> Grant | None:
    if hardware.plugin != NAME:
        return None
    return Grant(
        hardware_id=hardware.id,
        reason=(
            f"Bluetooth adapter {hardware.name}: host network (AF_BLUETOOTH exists only there), "
            "NET_ADMIN for the mgmt socket, NET_RAW for raw HCI, host D-Bus to reach bluetoothd"
        ),
        capabilities=("NET_ADMIN", "NET_RAW"),
        network_mode="host",
        # balena's D-Bus feature, so the same image finds bluetoothd under the supervisor too
        mounts=DBUS.mounts,
        env=DBUS.env,
        labels=Props({DBUS.label: "1"}),
    )
