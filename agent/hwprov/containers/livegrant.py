"""Grant a device to a running container without restarting it (cgroup v1 and v2).

`LiveGrants` decides what to grant (the plan's nodes against what it granted that container
process before); `grant` and `revoke` do it.

Two steps, both invisible to the engine and to the balena supervisor (which never reads
DeviceCgroupRules or runtime cgroup state): allow `c M:m` for the container's cgroup, and
create the node inside the container's mount namespace. Revocation is the reverse: deny
first, then unlink, so an open in between fails instead of succeeding. A container restart
loses both (fresh /dev tmpfs, fresh cgroup), so callers re-apply on the engine's `start` event.

How to allow depends on the host (containers/cgroups.py): cgroup v1 (and hybrid hosts, where
runc uses the v1 devices controller) writes `devices.allow`/`devices.deny`; cgroup v2 puts the
grant in hwprov's BPF map in front of the container's device programs (containers/bpf.py,
the design in containers/devicefilter.py).

Both steps run in a forked child: setns(CLONE_NEWNS) needs a single-threaded caller, and the
agent keeps its own namespace. The child also drops UMOCKDEV_DIR: under the board simulator an
LD_PRELOAD library redirects /sys and /dev into a fake tree, but the devices cgroup and the
container's /dev are real (on a device the variable is not set and this changes nothing).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwprov.containers import bpf, cgroups
from hwprov.containers import devicefilter as df
from hwprov.containers.cgroups import CgroupHost
from hwprov.containers.outcome import Outcome, OutcomeAction
from hwprov.containers.spec import caps_set, name_of
from hwprov.errors import HwprovError
from hwprov.planning.plan import ServicePlan
from hwprov.records import cgroup_rule

CLONE_NEWNS = 0x00020000
CGROUP_ROOT = Path("/sys/fs/cgroup/devices")


class LiveGrantError(HwprovError):
    """The container cannot be granted a device while it runs."""


def devices_cgroup(pid: int) -> Path:
    """The container's devices cgroup, read from /proc/<pid>/cgroup rather than assumed
    (cgroupfs puts it at docker/<id>, the systemd driver in a scope)."""
    try:
        found = cgroups.read_proc_cgroup(pid)
    except cgroups.CgroupError as err:
        raise LiveGrantError(str(err)) from err
    if found.devices is None:
        raise LiveGrantError(f"no devices cgroup for container process {pid}")
    return CGROUP_ROOT / found.devices.lstrip("/")


Step = Callable[[], None]  # the cgroup half of a grant or revoke, run in the forked child


def _write_step(target: Path, rule: str) -> Step:
    def write() -> None:
        try:
            target.write_text(rule)
        except OSError as err:
            message = f"cannot write '{rule}' to {target}: {err.strerror}"
            raise OSError(err.errno, message) from None

    return write


def _cgroup_step(
    pid: int, allow: bool, major: int, minor: int, permissions: str, found: CgroupHost
) -> Step:
    """What the child does to the container's cgroup. Reading /proc happens here, in the
    parent, so a process that is gone is a clear error before anything forks."""
    if found.mechanism is cgroups.Mechanism.DEVICES_FILES:
        target = devices_cgroup(pid) / ("devices.allow" if allow else "devices.deny")
        return _write_step(target, rule(major, minor, permissions))
    if not found.bpf:
        raise LiveGrantError(f"no devices cgroup: {found.describe()}")
    try:
        where = cgroups.unified_dir(pid, found)
        node = df.Node(df.DevType.CHAR, major, minor)
        access = df.access_mask(permissions)
    except (cgroups.CgroupError, df.DeviceFilterError) as err:
        raise LiveGrantError(str(err)) from err
    replace = found.mechanism is cgroups.Mechanism.BPF_REPLACE

    def change() -> None:
        if allow:
            bpf.allow(where, node, access, replace)
        else:
            bpf.deny(where, node)

    return change


def _in_child(
    pid: int,
    cgroup_step: Step,
    action: str,
    path: str,
    major: int = 0,
    minor: int = 0,
    mode: int = 0o660,
    gid: int | None = None,
) -> None:
    """Change the container's cgroup, then do one node operation inside its mount namespace."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    try:
        ns = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        # EACCES without CAP_SYS_PTRACE, when the container process has capabilities hwprov
        # lacks (seen under the hardened systemd unit with it taken away): this service's
        # grant fails, the agent goes on.
        raise LiveGrantError(f"{action} {path} in container process {pid}: {err}") from err
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        code = 0
        try:
            os.close(read_end)
            os.unsetenv("UMOCKDEV_DIR")
            cgroup_step()
            if libc.setns(ns, CLONE_NEWNS) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            if action == "mknod":
                os.makedirs(os.path.dirname(path), exist_ok=True)
                if os.path.lexists(path):
                    os.unlink(path)
                os.mknod(path, stat.S_IFCHR | mode, os.makedev(major, minor))
                os.chmod(path, mode)
                if gid is not None:
                    os.chown(path, 0, gid)
            elif os.path.lexists(path):
                os.unlink(path)
        except OSError as err:
            os.write(write_end, f"{err.strerror or err}".encode())
            code = 1
        except HwprovError as err:
            os.write(write_end, str(err).encode())
            code = 1
        os._exit(code)
    os.close(write_end)
    os.close(ns)
    message = os.read(read_end, 4096).decode()
    os.close(read_end)
    _, status = os.waitpid(child, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise LiveGrantError(f"{action} {path} in container process {pid}: {message}")


def grant(
    pid: int,
    path: str,
    major: int,
    minor: int,
    permissions: str = "rw",
    gid: int | None = None,
    host: CgroupHost | None = None,
) -> None:
    """Allow the node, then create it: the app never sees a node it may not open."""
    step = _cgroup_step(pid, True, major, minor, permissions, host or cgroups.host())
    _in_child(pid, step, "mknod", path, major, minor, gid=gid)


def revoke(pid: int, path: str, major: int, minor: int, host: CgroupHost | None = None) -> None:
    """Deny first, then remove the node: an open in between fails instead of succeeding."""
    step = _cgroup_step(pid, False, major, minor, "rwm", host or cgroups.host())
    _in_child(pid, step, "unlink", path)


def rule(major: int, minor: int, permissions: str) -> str:
    # The same text as a DeviceNode's cgroup rule and the engine's DeviceCgroupRules.
    found = cgroup_rule(major, minor, permissions)
    if found is None:  # pragma: no cover - both numbers are given
        raise LiveGrantError(f"no cgroup rule for {major}:{minor}")
    return found


@dataclass(frozen=True, slots=True)
class GrantedNode:
    """A node granted to a container: the host node's numbers, and the numbers udev gave the
    device, which a remove event carries (the same on a device; under the simulator the host
    node is a stand-in with numbers of its own)."""

    major: int
    minor: int
    permissions: str
    udev: tuple[int | None, int | None]

    @property
    def rule(self) -> str:
        return rule(self.major, self.minor, self.permissions)


@dataclass(frozen=True, slots=True)
class Revocation:
    """A node taken out of a running container because its device went away."""

    service: str
    container: str  # the container's name
    path: str  # in the container
    major: int  # the device's, as udev numbered it
    minor: int
    error: str | None = None  # why it could not be taken: the next pass tries again


@dataclass
class LiveGrants:
    """What each running container process was granted live, and the passes that keep it so.

    Remembered per (container, pid): a restart gives the container a fresh /dev and cgroup, so
    the next pass sees a new pid and grants again.

    Two threads use it: passes (`sync`) and the udev monitor's removes (`revoke_gone`), which
    must not wait for a pass that may be recreating other services for seconds. The lock is
    held only while one container's nodes change, never across engine calls.
    """

    host_path: Callable[[str], str] = lambda p: p
    _granted: dict[tuple[str, int], dict[str, GrantedNode]] = field(default_factory=dict)
    _who: dict[tuple[str, int], tuple[str, str]] = field(default_factory=dict)  # service, name
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sync(self, plan: ServicePlan, attrs: Mapping[str, Any], dry_run: bool) -> Outcome:
        """Give the running container exactly the plan's nodes, without touching its config."""
        name, state = name_of(attrs), attrs.get("State") or {}
        if not state.get("Running"):
            detail = "not running: granted when it starts"
            return Outcome(plan.service, name, OutcomeAction.UNCHANGED, detail)
        key = (str(attrs["Id"]), int(state["Pid"]))
        want: dict[str, GrantedNode] = {}
        for d in plan.devices:
            try:
                st = os.stat(self.host_path(d.host))
            except OSError as err:
                detail = f"{d.host}: {err.strerror}"
                return Outcome(plan.service, name, OutcomeAction.FAILED, detail)
            want[d.container] = GrantedNode(
                os.major(st.st_rdev), os.minor(st.st_rdev), d.permissions, (d.major, d.minor)
            )
        caps = sorted({c.value for c in plan.capabilities} - _caps_of(attrs))
        note = f"needs {caps} at create (hwprov migrate)" if caps else ""
        with self._lock:
            have = self._granted.get(key, {})
            changes = tuple(
                [f"+ {p} {node.rule}" for p, node in sorted(want.items()) if have.get(p) != node]
                + [f"- {p}" for p in sorted(set(have) - set(want))]
            )
            if not changes:
                return Outcome(plan.service, name, OutcomeAction.UNCHANGED, note)
            if dry_run:
                return Outcome(plan.service, name, OutcomeAction.WOULD_GRANT, note, changes)
            began = time.monotonic_ns()
            try:
                for path in sorted(set(have) - set(want)):
                    revoke(key[1], path, have[path].major, have[path].minor)
                for path, node in sorted(want.items()):
                    if have.get(path) != node:
                        grant(key[1], path, node.major, node.minor, node.permissions)
            except LiveGrantError as err:
                return Outcome(plan.service, name, OutcomeAction.FAILED, str(err), changes)
            for old in [k for k in self._granted if k[0] == key[0]]:
                del self._granted[old], self._who[old]
            self._granted[key] = want
            self._who[key] = (plan.service, name)
            took = time.monotonic_ns() - began
        detail = f"live, no restart ({cgroups.host().how})" + (f"; {note}" if note else "")
        return Outcome(plan.service, name, OutcomeAction.GRANTED, detail, changes, grant_ns=took)

    def revoke_gone(self, major: int, minor: int) -> list[Revocation]:
        """Take a removed device's node out of every container granted it live, now
        (`major`, `minor`: the numbers its remove event carries).

        A pass would do it too, but only after the pass in flight, which a hand-over can hold
        for its whole timeout; meanwhile the freed numbers can come back as another device
        (the stranger on ttyUSB0). A node that cannot be taken stays recorded, so the next
        pass, which the same remove event brings, tries again and says why it fails.
        """
        done: list[Revocation] = []
        with self._lock:
            for key, nodes in self._granted.items():
                service, name = self._who[key]
                for path, node in sorted(nodes.items()):
                    if node.udev != (major, minor):
                        continue
                    try:
                        revoke(key[1], path, node.major, node.minor)
                    except LiveGrantError as err:
                        done.append(Revocation(service, name, path, major, minor, str(err)))
                        continue
                    del nodes[path]
                    done.append(Revocation(service, name, path, major, minor))
        return done


def _caps_of(attrs: Mapping[str, Any]) -> set[str]:
    return caps_set((attrs.get("HostConfig") or {}).get("CapAdd"))
