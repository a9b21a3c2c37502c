"""What the paths a compose file names under `devices:` really are, looked up at the edge.

The planner is pure; it gets these facts as data. Paths must resolve inside /dev: a `..` or a
symlink that leads out of /dev is reported, never followed into a mapping. The nodes udev names
are held to more (`node_problem`): udev's word is not enough, the node must be there and be it.

hwprov in a container (deploy/ on balenaOS) has a /dev of its own, a tmpfs the engine made,
where the host's nodes are not: there the kernel's own word is asked instead, in sysfs
(/sys/dev/char/M:m names the node the kernel made for those numbers).
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

DEV = "/dev"
SYS = Path("/sys")
MAX_DIR_NODES = 4096  # /dev/bus/usb on a busy hub has tens; anything near this is a mistake


class NodeType(StrEnum):
    CHAR = "char"
    BLOCK = "block"
    DIR = "dir"  # its nodes are meant (compose maps a directory's device nodes)
    MISSING = "missing"
    OTHER = "other"  # exists, not a device node
    OUTSIDE = "outside"  # resolves outside /dev


@dataclass(frozen=True, slots=True)
class NodeInfo:
    path: str
    resolved: str | None
    type: NodeType
    major: int | None = None
    minor: int | None = None
    members: tuple[NodeInfo, ...] = ()  # the nodes below a directory


def inside_dev(path: str) -> bool:
    return path == DEV or path.startswith(DEV + "/")


def under_dev(path: str) -> bool:
    """An absolute, normalised path below /dev: no `..`, no `//`, nothing that a later
    normalisation could move out of /dev."""
    return path.startswith(DEV + "/") and os.path.normpath(path) == path


def _named_problem(path: str, major: int | None, minor: int | None) -> str | None:
    """What is wrong with udev's word itself, before any node is looked at."""
    if not under_dev(path):
        return f"'{path}' is not a normalised path below /dev"
    if major is None or minor is None:
        return f"udev gave no major:minor for {path}"
    return None


def node_problem(
    path: str, major: int | None, minor: int | None, info: NodeInfo | None
) -> str | None:
    """Why `path` is not the device node udev announced as `major:minor`, or None.

    Pure: `info` is what `inspect_path` found there. The node must be below /dev, be a character
    or block node itself (not a link to one: udev names nodes, links are its own extras), and
    carry the numbers udev gave, so what is mapped is what the cgroup rule allows.
    """
    if (why := _named_problem(path, major, minor)) is not None:
        return why
    if info is None or info.type == NodeType.MISSING:
        return f"{path} is not there"
    if info.resolved != path:
        return f"{path} is a link to {info.resolved}, not a device node"
    if info.type not in (NodeType.CHAR, NodeType.BLOCK):
        return f"{path} is not a device node"
    if (info.major, info.minor) != (major, minor):
        return f"udev said {major}:{minor} but {path} is {info.major}:{info.minor}"
    return None


def _node(path: str, resolved: str, st: os.stat_result) -> NodeInfo:
    kind = NodeType.CHAR if stat.S_ISCHR(st.st_mode) else NodeType.BLOCK
    return NodeInfo(path, resolved, kind, os.major(st.st_rdev), os.minor(st.st_rdev))


def inspect_path(path: str) -> NodeInfo:
    if not path.startswith("/") or ".." in path.split("/"):
        return NodeInfo(path, None, NodeType.OUTSIDE)
    resolved = os.path.realpath(path)
    if not inside_dev(resolved):
        return NodeInfo(path, resolved, NodeType.OUTSIDE if inside_dev(path) else NodeType.OTHER)
    try:
        st = os.stat(resolved)
    except OSError:
        return NodeInfo(path, resolved, NodeType.MISSING)
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        return _node(path, resolved, st)
    if stat.S_ISDIR(st.st_mode):
        members = []
        for root, _dirs, files in os.walk(resolved):
            for name in sorted(files):
                full = os.path.join(root, name)
                try:
                    fst = os.lstat(full)
                except OSError:
                    continue
                if stat.S_ISCHR(fst.st_mode) or stat.S_ISBLK(fst.st_mode):
                    members.append(_node(full, full, fst))
                if len(members) >= MAX_DIR_NODES:
                    break
        return NodeInfo(path, resolved, NodeType.DIR, members=tuple(members))
    return NodeInfo(path, resolved, NodeType.OTHER)


def inspect_paths(paths: Iterable[str]) -> dict[str, NodeInfo]:
    return {p: inspect_path(p) for p in set(paths)}


def kernel_node_problem(
    path: str, major: int | None, minor: int | None, kernel_name: str | None
) -> str | None:
    """Why `path` is not the node the kernel made for `major:minor`, or None. Pure:
    `kernel_name` is the DEVNAME the kernel gives those numbers in sysfs (None: no such device).
    For a /dev that is not the kernel's, where the node itself cannot be looked at."""
    if (why := _named_problem(path, major, minor)) is not None:
        return why
    if kernel_name is None:
        return f"the kernel has no device {major}:{minor}"
    if f"{DEV}/{kernel_name}" != path:
        return f"the kernel's node for {major}:{minor} is {DEV}/{kernel_name}, not {path}"
    return None


def dev_is_the_kernels(mountinfo: str) -> bool:
    """Whether /dev, as /proc/self/mountinfo shows it, is the kernel's devtmpfs (a host, or a
    container given the host's /dev) rather than a container's private tmpfs."""
    fstype = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] == DEV and "-" in fields:
            fstype = fields[fields.index("-") + 1]  # the last mount on /dev is the one seen
    return fstype in (None, "devtmpfs")


@functools.cache
def private_dev() -> bool:
    """This process's /dev is not the kernel's (asked once: mounts do not move under hwprov)."""
    try:
        return not dev_is_the_kernels(Path("/proc/self/mountinfo").read_text())
    except OSError:
        return False


def kernel_name(major: int, minor: int, sys_root: Path = SYS) -> str | None:
    """The DEVNAME the kernel gives a char (else block) device's numbers, from sysfs."""
    for kind in ("char", "block"):
        try:
            uevent = (sys_root / "dev" / kind / f"{major}:{minor}" / "uevent").read_text()
        except OSError:
            continue
        for line in uevent.splitlines():
            if line.startswith("DEVNAME="):
                return line.removeprefix("DEVNAME=")
    return None


def check_node(path: str, major: int | None, minor: int | None) -> str | None:
    """`node_problem` for what is at `path` now (the inventory asks it of each node udev names);
    where /dev is a container's own, `kernel_node_problem` against sysfs."""
    if private_dev():
        named = kernel_name(major, minor) if major is not None and minor is not None else None
        return kernel_node_problem(path, major, minor, named)
    return node_problem(path, major, minor, inspect_path(path) if under_dev(path) else None)


def node_present(path: str) -> bool:
    """Whether a host node is there now, as far as this process can tell: below a private /dev
    the host's nodes cannot be seen, and the engine is left to say."""
    if private_dev() and path.startswith(DEV + "/"):
        return True
    return os.path.exists(path)
