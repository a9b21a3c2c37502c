"""Every hook a hwprov plugin can implement.

A plugin is a module (or object) of functions decorated with `hwprov.plugins.hookimpl`, installed
through the `hwprov` entry-point group. Built-in plugins live in `plugins/hwprov_builtins/` and
mark their hooks `trylast=True`, so an installed plugin can claim a device before the built-in
would.

Result modes are chosen per hook: a device has exactly one owner, so classify, probe and grant
are `firstresult`; the lists that widen what hwprov looks at (subsystems, sysfs attributes, I2C
chip signatures) are collected from every plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from hwprov.plugins.i2cprobe import ChipSignature, ProbeIO
    from hwprov.records import Grant, Hardware, UdevDevice

PROJECT = "hwprov"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def hwprov_subsystems() -> list[str]:
    """Return the udev subsystems this plugin wants to see.

    The udev source enumerates these at coldplug and filters its hotplug monitor by them in the
    kernel, so a subsystem no plugin names costs nothing.
    """


@hookspec
def hwprov_kinds() -> list[str]:
    """Return the kinds this plugin's `hwprov_classify` produces ("serial", "spi"...).

    A compose label asking for a kind that no loaded plugin declares is a typo, reported at plan
    time with the known kinds. While a plugin that classifies does not declare its kinds, an
    unknown kind can only be a warning: it might be that plugin's.
    """


@hookspec
def hwprov_sysfs_attributes() -> list[str]:
    """Return extra sysfs attribute names to read into each snapshot.

    They are read on the device and on each of its ancestors, and land in
    `UdevDevice.attributes` / `Ancestor.attributes`. Inside a container there is no udev
    database, so sysfs is where identity (idVendor, serial, port_number...) comes from.
    """


@hookspec(firstresult=True)
def hwprov_classify(device: UdevDevice) -> Hardware | None:
    """Turn a udev snapshot into a typed `Hardware` record, or return None if not yours.

    The first plugin that returns a record owns the device. Must be pure and fast: no I/O
    (use `hwprov_probe` for that). Return None for anything you do not recognise; never
    raise on odd data (missing properties, strange names): hwprov reports and skips a
    plugin that raises, but that plugin then misses the device.
    """


@hookspec(firstresult=True)
def hwprov_probe(hardware: Hardware, io: ProbeIO) -> Hardware | None:
    """Look behind a device for details (e.g. which sensors answer on an I2C bus).

    Called once per added device, only for the owner's kind to make sense of it. Return an
    updated record (`dataclasses.replace`) or None to leave it as is. Must be bounded in time
    (`io.deadline`) and must turn bus errors into data, not exceptions.
    """


@hookspec
def hwprov_i2c_chips() -> list[ChipSignature]:
    """Return I2C chip signatures (name, addresses, how to recognise it) to probe for.

    Collected from every plugin, so a plugin can teach the built-in I2C prober new sensors
    without owning I2C buses.
    """


@hookspec
def hwprov_affects(device: UdevDevice) -> list[str]:
    """Return the sys paths of hardware that a change to this device affects.

    Asked for devices no plugin classifies. The inventory probes the named hardware again,
    e.g. an I2C client device added by the kernel (`new_device`, a driver binding) under a bus
    that hwprov already knows means the bus is worth scanning again. Pure, like classify.
    """


@hookspec(firstresult=True)
def hwprov_grant(hardware: Hardware) -> Grant | None:
    """Say what a container needs to use this hardware: the least privilege that works.

    Device nodes with their cgroup permissions, capabilities, supplementary groups, network
    mode, mounts and environment. Never `privileged`. Return None if the hardware is not yours.
    """
