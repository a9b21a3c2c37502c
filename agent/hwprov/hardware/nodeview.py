"""What the paths a compose file names under `devices:` really are, looked up at the edge.

The planner is pure; it gets these facts as data. Paths must resolve inside /dev: a `..` or a
symlink that leads out of /dev is reported, never followed into a mapping.
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
