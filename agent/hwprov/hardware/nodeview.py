"""What the paths a compose file names under `devices:` really are, looked up at the edge.

The planner is pure; it gets these facts as data. Paths must resolve inside /dev: a `..` or a
symlink that leads out of /dev is reported, never followed into a mapping. The nodes udev names
are held to more (`node_problem`): udev's word is not enough, the node must be there and be it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

DEV = "/dev"
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


def node_problem(
    path: str, major: int | None, minor: int | None, info: NodeInfo | None
) -> str | None:
    """Why `path` is not the device node udev announced as `major:minor`, or None.

    Pure: `info` is what `inspect_path` found there. The node must be below /dev, be a character
    or block node itself (not a link to one: udev names nodes, links are its own extras), and
    carry the numbers udev gave, so what is mapped is what the cgroup rule allows.
    """
    if not under_dev(path):
        return f"'{path}' is not a normalised path below /dev"
    if major is None or minor is None:
        return f"udev gave no major:minor for {path}"
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


def check_node(path: str, major: int | None, minor: int | None) -> str | None:
    """`node_problem` for what is at `path` now (the inventory asks it of each node udev names)."""
    return node_problem(path, major, minor, inspect_path(path) if under_dev(path) else None)
