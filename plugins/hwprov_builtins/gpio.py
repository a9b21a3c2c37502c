"""GPIO: the character device API (/dev/gpiochipN), Raspberry Pi's /dev/gpiomem, and /dev/mem.

/dev/gpiomem maps only the GPIO registers and needs no capability. /dev/mem maps all of
physical memory: the kernel's open_port() demands CAP_SYS_RAWIO, so it is granted only to a
service that names it explicitly, never offered for "GPIO" in general.
"""

from __future__ import annotations

from hwprov.plugins import Grant, Hardware, Kind, UdevDevice, hookimpl, node_grant

NAME = "gpio"
GPIOMEM_SUBSYSTEMS = ("bcm2835-gpiomem", "rpi-gpiomem")


@hookimpl(trylast=True)
def hwprov_kinds() -> list[str]:
    return [Kind.GPIO]


@hookimpl(trylast=True)
def hwprov_subsystems() -> list[str]:
    return ["gpio", *GPIOMEM_SUBSYSTEMS, "mem"]


@hookimpl(trylast=True)
def hwprov_sysfs_attributes() -> list[str]:
    return ["label", "ngpio"]


@hookimpl(trylast=True)
def hwprov_classify(device: UdevDevice) -> Hardware | None:
    if not device.node:  # legacy /sys/class/gpio/gpiochipNNN entries have no node
        return None
    path = device.sys_path.removeprefix("/sys")
    if device.subsystem == "gpio" and device.sys_name.startswith("gpiochip"):
        parent = device.ancestors[0] if device.ancestors else None
        details = {"role": "gpiochip", "driver": parent.driver if parent else None}
        return Hardware.from_device(
            device, kind=Kind.GPIO, id=f"gpio:{path}", plugin=NAME, details=details
        )
    if device.subsystem in GPIOMEM_SUBSYSTEMS:
        return Hardware.from_device(
            device, kind=Kind.GPIO, id=f"gpio:{path}", plugin=NAME, details={"role": "gpiomem"}
        )
    if device.subsystem == "mem" and device.sys_name == "mem":
        return Hardware.from_device(
            device,
            kind=Kind.GPIO,
            id="gpio:mem",
            plugin=NAME,
            details={"role": "mem"},
            explicit_only=True,
        )
    return None


@hookimpl(trylast=True)
def hwprov_grant(hardware: Hardware) -> Grant | None:
    if hardware.plugin != NAME or hardware.node is None:
        return None
    role = hardware.details.get("role")
    if role == "mem":
        return node_grant(
            hardware,
            "/dev/mem: physical memory; the kernel requires CAP_SYS_RAWIO to open it",
            capabilities=("SYS_RAWIO",),
        )
    return node_grant(hardware, f"GPIO {hardware.name}: its node, read/write, no capability")
