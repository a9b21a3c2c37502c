"""Helpers plugins use to build least-privilege grants from a hardware record."""

from __future__ import annotations

import stat

from hwprov.errors import PluginError
from hwprov.records import DeviceNode, Grant, Hardware


def node_of(hardware: Hardware, container_path: str | None = None) -> DeviceNode:
    """The device node mapped at the same path (or `container_path`), read and write only.

    No 'm' (mknod): the engine creates the node in the container itself.
    """
    if hardware.node is None:  # a plugin bug, reported as that plugin's problem
        raise PluginError(f"{hardware.id} has no device node to grant")
    return DeviceNode(
        path_on_host=hardware.node,
        path_in_container=container_path or hardware.node,
        permissions="rw",
        major=hardware.major,
        minor=hardware.minor,
    )


def node_groups(hardware: Hardware) -> tuple[str, ...]:
    """The node's group, when only group members may open it (dialout, gpio, i2c...).

    Numeric, because the engine copies the host node's owner and mode into the container and a
    group name might not exist in the container's /etc/group.
    """
    mode, gid = hardware.node_mode, hardware.node_gid
    if mode is None or gid is None or gid == 0:
        return ()
    others_rw = mode & (stat.S_IROTH | stat.S_IWOTH) == (stat.S_IROTH | stat.S_IWOTH)
    group_rw = mode & (stat.S_IRGRP | stat.S_IWGRP) == (stat.S_IRGRP | stat.S_IWGRP)
    return (str(gid),) if group_rw and not others_rw else ()


def node_grant(hardware: Hardware, reason: str, capabilities: tuple[str, ...] = ()) -> Grant:
    return Grant(
        hardware_id=hardware.id,
        reason=reason,
        devices=(node_of(hardware),),
        capabilities=capabilities,
        group_add=node_groups(hardware),
    )
