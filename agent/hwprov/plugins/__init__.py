"""The public face for plugin authors: everything a plugin needs, importable from here.

A plugin imports from `hwprov.plugins` only (the built-ins in `plugins/hwprov_builtins/` and the
third-party example in `tests/plugins/` do): the modules behind it may move, this list does not.
See docs/hooks.md.
"""

from hwprov.features import DBUS, Feature
from hwprov.plugins.grants import node_grant, node_groups, node_of
from hwprov.plugins.hookspecs import hookimpl
from hwprov.plugins.i2cprobe import (
    ChipSignature,
    ProbeIO,
    SMBusLike,
    crc8_sensirion,
    identify,
    register_equals,
    scan,
    swap16,
    word_register_equals,
)
from hwprov.plugins.usb import USB_ATTRIBUTES, UsbIdentity, usb_identity
from hwprov.records import (
    DeviceNode,
    Grant,
    Hardware,
    Kind,
    Mount,
    ProbedDevice,
    Props,
    UdevDevice,
)

__all__ = [
    "DBUS",
    "USB_ATTRIBUTES",
    "ChipSignature",
    "DeviceNode",
    "Feature",
    "Grant",
    "Hardware",
    "Kind",
    "Mount",
    "ProbeIO",
    "ProbedDevice",
    "Props",
    "SMBusLike",
    "UdevDevice",
    "UsbIdentity",
    "crc8_sensirion",
    "hookimpl",
    "identify",
    "node_grant",
    "node_groups",
    "node_of",
    "register_equals",
    "scan",
    "swap16",
    "usb_identity",
    "word_register_equals",
]
