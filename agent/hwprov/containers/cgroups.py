"""Which cgroup setup the host has, what a live grant can use there, and where a process is.

Read from /proc/self/mountinfo rather than by looking under /sys/fs/cgroup: under the board
simulator /sys is redirected into a fake tree, /proc is not, and mountinfo also says where
each hierarchy is mounted when that is not the usual place.

* cgroup v1 (also "hybrid": v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified):
  runc enforces devices with the v1 devices controller, so a grant is `devices.allow`. On a
  hybrid host runc attaches no device program to the unified hierarchy.
* cgroup v2: the rules are BPF programs (containers/devicefilter.py, containers/bpf.py). Which
  swap the kernel allows decides the mechanism: BPF_F_REPLACE (5.6+), or attach then detach.

The parsers take text, so tests feed them samples; `detect` and `unified_dir` read /proc.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath

from hwprov.containers import bpf
from hwprov.errors import HwprovError

SYS_CGROUP = "/sys/fs/cgroup"


class CgroupError(HwprovError):
    """A process's cgroup cannot be found, or is out of hwprov's sight."""


class CgroupVersion(StrEnum):
    V1 = "v1"
    HYBRID = "hybrid"
    V2 = "v2"
    NONE = "none"


class Mechanism(StrEnum):
    DEVICES_FILES = "devices.allow"
    BPF_REPLACE = "bpf-replace"
    BPF_ATTACH_DETACH = "bpf-attach-detach"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class CgroupMount:
    fstype: str  # "cgroup" (v1) or "cgroup2"
    root: str  # the hierarchy's directory seen at the mount point ("/" for the whole one)
    mount_point: str
    controllers: frozenset[str]  # v1 only: devices, cpu, name=systemd ...


@dataclass(frozen=True, slots=True)
class CgroupHost:
    version: CgroupVersion
    mechanism: Mechanism
    reason: str
    unified: CgroupMount | None = None  # the cgroup2 mount BPF programs are attached through
    devices: CgroupMount | None = None  # the v1 devices controller

    @property
    def bpf(self) -> bool:
        return self.mechanism in (Mechanism.BPF_REPLACE, Mechanism.BPF_ATTACH_DETACH)

    def describe(self) -> str:
        """One line for a decision log: which mechanism live grants use, or why none."""
        return f"live grants: {self.how}"

    @property
    def how(self) -> str:
        """The mechanism alone, for a field that is already about live grants."""
        return {
            Mechanism.DEVICES_FILES: "cgroup v1 devices.allow",
            Mechanism.BPF_REPLACE: "cgroup v2 BPF, atomic replace",
            Mechanism.BPF_ATTACH_DETACH:
                "cgroup v2 BPF, attach then detach (kernel without BPF_F_REPLACE)",
            Mechanism.NONE: f"none: {self.reason}",
        }[self.mechanism]  # fmt: skip


_V1_OPTIONS = {"rw", "ro"}  # super options that are not controllers


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as \040, \011, \012, \134
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> tuple[CgroupMount, ...]:
    """The cgroup and cgroup2 mounts, in mount order."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        sep = fields.index("-", 6)
        if len(fields) < sep + 4 or fields[sep + 1] not in ("cgroup", "cgroup2"):
            continue
        fstype, options = fields[sep + 1], fields[sep + 3].split(",")
        controllers = frozenset(
            o for o in options if o not in _V1_OPTIONS and ("=" not in o or o.startswith("name="))
        ) if fstype == "cgroup" else frozenset()  # fmt: skip
        found.append(CgroupMount(fstype, _unescape(fields[3]), _unescape(fields[4]), controllers))
    return tuple(found)


def version_of(mounts: Sequence[CgroupMount]) -> CgroupVersion:
    v1 = any(m.fstype == "cgroup" for m in mounts)
    v2 = any(m.fstype == "cgroup2" for m in mounts)
    if v1 and v2:
        return CgroupVersion.HYBRID
    return CgroupVersion.V1 if v1 else CgroupVersion.V2 if v2 else CgroupVersion.NONE


def unified_mount(mounts: Sequence[CgroupMount]) -> CgroupMount | None:
    """The cgroup2 mount to reach cgroups through: the whole hierarchy, at its usual place
    when it is mounted more than once."""
    usual = (SYS_CGROUP, f"{SYS_CGROUP}/unified")

    def rank(m: CgroupMount) -> tuple[bool, int]:
        return m.root != "/", usual.index(m.mount_point) if m.mount_point in usual else 2

    return min((m for m in mounts if m.fstype == "cgroup2"), key=rank, default=None)


def devices_mount(mounts: Sequence[CgroupMount]) -> CgroupMount | None:
    return next((m for m in mounts if m.fstype == "cgroup" and "devices" in m.controllers), None)


def decide(mounts: Sequence[CgroupMount], probe: Callable[[], bpf.BpfFeatures]) -> CgroupHost:
    """The mechanism for this host. `probe` (the BPF features) is called only when needed."""
    version, devices, unified = version_of(mounts), devices_mount(mounts), unified_mount(mounts)
    if devices is not None:
        why = f"devices controller at {devices.mount_point}"
        return CgroupHost(version, Mechanism.DEVICES_FILES, why, unified, devices)
    if unified is None:
        why = "no devices controller and no cgroup2 mount" if mounts else "no cgroup mounted"
        return CgroupHost(version, Mechanism.NONE, why)
    found = probe()
    if not found.device_programs:
        return CgroupHost(version, Mechanism.NONE, found.reason, unified)
    mechanism = Mechanism.BPF_REPLACE if found.replace else Mechanism.BPF_ATTACH_DETACH
    why = f"cgroup2 at {unified.mount_point}: {found.reason}"
    return CgroupHost(version, mechanism, why, unified)


def detect(
    mountinfo: str | None = None, probe: Callable[[], bpf.BpfFeatures] = bpf.features
) -> CgroupHost:
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError as err:
            return CgroupHost(CgroupVersion.NONE, Mechanism.NONE, f"no mountinfo: {err}")
    return decide(parse_mountinfo(mountinfo), probe)


@functools.cache
def host() -> CgroupHost:
    """This host's answer, found once: neither the mounts nor the kernel change under a run."""
    return detect()


# -- a process's cgroup -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcCgroup:
    devices: str | None  # the v1 devices controller's path
    unified: str | None  # the `0::` line's path


def parse_proc_cgroup(text: str) -> ProcCgroup:
    devices = unified = None
    for line in text.splitlines():
        if line.count(":") < 2:
            continue
        number, controllers, path = line.split(":", 2)
        if number == "0" and controllers == "":
            unified = path
        elif "devices" in controllers.split(","):
            devices = path
    return ProcCgroup(devices, unified)


def under_mount(mount: CgroupMount, path: str) -> str:
    """Where cgroup `path` (as /proc/<pid>/cgroup names it) is below `mount`."""
    # With a cgroup namespace of its own, hwprov sees other containers' cgroups as "/../.."
    parts = PurePosixPath(path).parts
    if ".." in parts:
        where = "outside hwprov's cgroup namespace (run hwprov with `cgroup: host`)"
        raise CgroupError(f"cgroup {path} is {where}")
    root = PurePosixPath(mount.root)
    target = PurePosixPath(path)
    if not target.is_relative_to(root):
        raise CgroupError(f"cgroup {path} is not below {mount.mount_point} (root {mount.root})")
    return str(PurePosixPath(mount.mount_point, target.relative_to(root)))


def read_proc_cgroup(pid: int) -> ProcCgroup:
    try:
        return parse_proc_cgroup(Path(f"/proc/{pid}/cgroup").read_text())
    except OSError as err:
        raise CgroupError(f"container process {pid} is gone: {err}") from err


def unified_dir(pid: int, found: CgroupHost) -> Path:
    """The process's cgroup v2 directory, which its device programs are attached to."""
    if found.unified is None:
        raise CgroupError(f"no cgroup2 mount: {found.describe()}")
    path = read_proc_cgroup(pid).unified
    if path is None:
        raise CgroupError(f"container process {pid} has no cgroup v2 (no 0:: line)")
    return Path(under_mount(found.unified, path))
