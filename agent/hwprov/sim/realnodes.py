"""Real character nodes for the engine, which cannot see the LD_PRELOAD /dev of a testbed.

Never create a node whose major has a driver on this host: a stand-in would then be the
host's own device (1:1 would be the real /dev/mem, 4:64 this VM's serial port). Such majors
are remapped to free ones, consistently for a run, and the map says so.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path


def host_char_majors(proc_devices: str) -> set[int]:
    text = proc_devices.split("Block devices:")[0]
    return {int(line.split()[0]) for line in text.splitlines() if line.strip()[:1].isdigit()}


def remap_majors(board_majors: Iterable[int], host_majors: set[int]) -> dict[int, int]:
    """Board major -> the major to use on this host (itself when it has no driver here)."""
    wanted = sorted(set(board_majors))
    taken = host_majors | set(wanted)
    free = (m for m in range(511, 255, -1) if m not in taken)
    return {m: (next(free) if m in host_majors else m) for m in wanted}


class RealNodes:
    def __init__(self, folder: Path, remap: dict[int, int]) -> None:
        self.folder = folder
        self.remap = remap
        self.entries: dict[str, dict[str, str]] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, node: str, major: int, minor: int) -> None:
        host_major = self.remap.get(major, major)
        path = self.folder / node
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        os.mknod(path, stat.S_IFCHR | 0o660, os.makedev(host_major, minor))
        os.chmod(path, 0o660)  # mknod's mode passes through the umask
        self.entries[f"/dev/{node}"] = {
            "host_path": str(path),
            "board_dev": f"{major}:{minor}",
            "host_dev": f"{host_major}:{minor}",
            "remapped": "yes" if host_major != major else "no",
        }
        self._write()

    def remove(self, node: str) -> None:
        (self.folder / node).unlink(missing_ok=True)
        self.entries.pop(f"/dev/{node}", None)
        self._write()

    def _write(self) -> None:
        tmp = self.folder / "nodes.json.tmp"
        tmp.write_text(json.dumps(self.entries, indent=1, sort_keys=True))
        os.replace(tmp, self.folder / "nodes.json")  # readers never see half a file
