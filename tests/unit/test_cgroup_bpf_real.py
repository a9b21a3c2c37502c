"""Live grants on this machine's kernel: a real cgroup v2 hierarchy, real device programs.

The host here is hybrid (cgroup v1 controllers), but device programs apply to a task's cgroup
in the v2 hierarchy on any host, so each scenario mounts cgroup2 on a temp dir, makes a child
cgroup, puts a probe process in it, attaches a runc-like program built by
containers/devicefilter.py (`c 1:3` = /dev/null allowed, `c 1:5` = /dev/zero not) and then
grants and revokes through containers/bpf.py (and containers/livegrant.py), asking the probe
to open the nodes after each step.

Each scenario runs as `unshare --mount` of this file, so its mounts live and die with a
private mount namespace; it kills its processes and removes its cgroup itself, and the test
checks the cgroup is gone. No Docker is involved.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hwprov.containers import bpf, cgroups, livegrant
from hwprov.containers import devicefilter as df
from hwprov.containers.cgroups import CgroupHost, CgroupMount, CgroupVersion, Mechanism
from hwprov.containers.devicefilter import DevType, Node, Rule

NULL, ZERO, FULL = "/dev/null", "/dev/zero", "/dev/full"  # c 1:3, c 1:5, c 1:7
RW = df.ACC_READ | df.ACC_WRITE
PREFIX = "hwprov-test-"

PROBE = """\
import errno, os, sys
for line in sys.stdin:
    cmd, *args = line.split()
    try:
        if cmd == "open":
            os.close(os.open(args[0], os.O_RDWR))
            out = "OK"
        elif cmd == "mknod":
            os.mknod(args[0], 0o20600, os.makedev(int(args[1]), int(args[2])))
            out = "OK"
        else:
            st = os.stat(args[0])
            out = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    except OSError as e:
        out = errno.errorcode[e.errno]
    print(out, flush=True)
"""


# -- the scenarios, run in a private mount namespace ------------------------------------------


class Probe:
    """A process in the test cgroup that opens what it is told to and says how it went."""

    def __init__(self, cgroup: Path, dev_dir: str | None = None) -> None:
        argv = [sys.executable, "-c", PROBE]
        if dev_dir:  # its own mount namespace with a /dev-like tmpfs, as a container has
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                    'mount -t tmpfs hwprov-dev "$0" && exec "$@"', dev_dir, *argv]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        (cgroup / "cgroup.procs").write_text(str(self.proc.pid))
        self.pid = self.proc.pid

    def ask(self, *words: str) -> str:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(" ".join(words) + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def opens(self, *paths: str) -> list[str]:
        return [self.ask("open", p) for p in paths]

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f:
                f.close()


class Bench:
    def __init__(self) -> None:
        self.mount = Path(tempfile.mkdtemp(prefix="hwprov-cg2-"))
        self.cgroup = self.mount / f"{PREFIX}{os.getpid()}"
        self.probes: list[Probe] = []
        self.result: dict[str, Any] = {"cgroup": self.cgroup.name}

    @contextlib.contextmanager
    def up(self) -> Iterator[Bench]:
        subprocess.run(["mount", "-t", "cgroup2", "hwprov-test", str(self.mount)], check=True)
        try:
            self.cgroup.mkdir()
            try:
                yield self
            finally:
                for p in self.probes:
                    p.stop()
                self._rmdir()
        finally:
            subprocess.run(["umount", str(self.mount)], check=True)
            self.mount.rmdir()

    def _rmdir(self) -> None:
        # a killed process leaves the cgroup a moment after wait() returns
        deadline = time.monotonic() + 5
        while True:
            try:
                self.cgroup.rmdir()
                return
            except OSError as err:
                if err.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def probe(self, dev_dir: str | None = None) -> Probe:
        self.probes.append(Probe(self.cgroup, dev_dir))
        return self.probes[-1]

    def fd(self) -> int:
        return os.open(self.cgroup, os.O_RDONLY | os.O_DIRECTORY)

    def attach_runtime_program(self, rules: list[str], flags: int = bpf.F_ALLOW_MULTI) -> int:
        """What runc would have attached at container start."""
        program = df.allowlist([Rule.parse(r) for r in rules])
        return self.attach_raw(program, flags)

    def attach_raw(self, program: tuple[df.Insn, ...], flags: int = bpf.F_ALLOW_MULTI) -> int:
        cg, fd = self.fd(), bpf.load(program, "runtime")
        try:
            bpf.attach(cg, fd, flags)
            return bpf.prog_info(fd, dump=False).id
        finally:
            os.close(fd)
            os.close(cg)

    def programs(self) -> list[str]:
        cg = self.fd()
        try:
            names = []
            for prog_id in bpf.query(cg).ids:
                fd = bpf.prog_fd(prog_id)
                names.append(f"{prog_id}:{bpf.prog_info(fd, dump=False).name}")
                os.close(fd)
            return names
        finally:
            os.close(cg)

    def flags(self) -> int:
        cg = self.fd()
        try:
            return bpf.query(cg).flags
        finally:
            os.close(cg)


def timed(result: dict[str, Any], name: str, fn: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    got = fn()
    result.setdefault("ms", {})[name] = round((time.perf_counter() - start) * 1000, 2)
    return got


def applied(got: bpf.Applied) -> list[int]:
    return list(dataclasses.astuple(got))


def c(minor: int) -> Node:
    return Node(DevType.CHAR, 1, minor)


def swap_scenario(b: Bench, replace: bool) -> None:
    r, probe = b.result, b.probe()
    r["empty"] = bpf.allow(b.cgroup, c(5), RW, replace) == bpf.Applied(0, 0, 0)
    r["empty_programs"] = b.programs()
    r["before"] = probe.opens(NULL, ZERO, FULL)
    b.attach_runtime_program(["c 1:3 rwm", "c *:* m"])
    r["runtime"] = probe.opens(NULL, ZERO, FULL)
    r["first"] = applied(timed(r, "first_grant", lambda: bpf.allow(b.cgroup, c(5), RW, replace)))
    r["granted"] = probe.opens(NULL, ZERO, FULL)
    r["programs"] = b.programs()
    r["second"] = applied(timed(r, "second_grant", lambda: bpf.allow(b.cgroup, c(7), RW, replace)))
    r["both"] = probe.opens(NULL, ZERO, FULL)
    r["state"] = {f"{n.major}:{n.minor}": m for n, m in bpf.granted(b.cgroup).items()}
    timed(r, "revoke", lambda: bpf.deny(b.cgroup, c(5)))
    r["revoked"] = probe.opens(NULL, ZERO, FULL)
    bpf.deny(b.cgroup, c(7))
    r["all_revoked"] = probe.opens(NULL, ZERO, FULL)
    r["programs_after"] = b.programs()


def scenario_replace(b: Bench) -> None:
    swap_scenario(b, replace=True)


def scenario_attach_detach(b: Bench) -> None:
    swap_scenario(b, replace=False)


def scenario_exclusive(b: Bench) -> None:
    """Programs attached without BPF_F_ALLOW_MULTI: one at most, replaced in place."""
    r, probe = b.result, b.probe()
    b.attach_runtime_program(["c 1:3 rwm"], flags=0)
    bpf.allow(b.cgroup, c(5), RW, replace=True)
    r["granted"] = probe.opens(NULL, ZERO)
    r["programs"], r["flags"] = b.programs(), b.flags()
    bpf.deny(b.cgroup, c(5))
    r["revoked"] = probe.opens(NULL, ZERO)


def scenario_two_programs(b: Bench) -> None:
    """As with the systemd cgroup driver: systemd's program next to runc's."""
    r, probe = b.result, b.probe()
    b.attach_runtime_program(["c 1:3 rwm", "c 1:5 rwm"])
    b.attach_runtime_program(["c 1:3 rwm", "c 1:7 rwm"])
    r["runtime"] = probe.opens(NULL, ZERO, FULL)
    r["applied"] = applied(bpf.allow(b.cgroup, c(5), RW, replace=True))
    r["granted"] = probe.opens(NULL, ZERO, FULL)
    r["programs"] = b.programs()
    bpf.deny(b.cgroup, c(5))
    r["revoked"] = probe.opens(NULL, ZERO, FULL)


def scenario_failures(b: Bench) -> None:
    """Whatever fails half-way, the device stays denied and the runtime's program attached."""
    r, probe = b.result, b.probe()
    runtime = b.attach_runtime_program(["c 1:3 rwm"])
    real_detach, real_update = bpf.detach, bpf.map_update
    calls: list[int] = []

    def detach_fails_once(cg: int, fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            raise bpf.BpfError("bpf(BPF_PROG_DETACH): injected", errno.EIO)
        real_detach(cg, fd)

    def update_fails(fd: int, key: bytes, value: bytes) -> None:
        raise bpf.BpfError("bpf(BPF_MAP_UPDATE_ELEM): injected", errno.ENOMEM)

    bpf.detach = detach_fails_once  # type: ignore[assignment]
    try:
        bpf.allow(b.cgroup, c(5), RW, replace=False)
    except bpf.BpfError as err:
        r["detach_error"] = str(err)
    finally:
        bpf.detach = real_detach
    r["after_detach_failure"] = probe.opens(NULL, ZERO)
    r["programs_after_detach_failure"] = b.programs()
    r["runtime_id"] = runtime

    bpf.map_update = update_fails  # type: ignore[assignment]
    try:
        bpf.allow(b.cgroup, c(5), RW, replace=True)
    except bpf.BpfError as err:
        r["update_error"] = str(err)
    finally:
        bpf.map_update = real_update
    r["after_update_failure"] = probe.opens(NULL, ZERO)
    r["programs_after_update_failure"] = b.programs()
    bpf.allow(b.cgroup, c(5), RW, replace=True)  # the next pass finds hwprov's program
    r["retried"] = probe.opens(NULL, ZERO)
    r["programs_after_retry"] = b.programs()


def scenario_window(b: Bench) -> None:
    """A program attached after the first grant (systemd applying its unit again) is wrapped
    at the next grant; while old and new are both attached, the node stays denied."""
    r, probe = b.result, b.probe()
    b.attach_runtime_program(["c 1:3 rwm"])
    bpf.allow(b.cgroup, c(5), RW, replace=False)
    r["granted"] = probe.opens(NULL, ZERO)
    b.attach_runtime_program(["c 1:3 rwm"])
    r["new_program"] = probe.opens(NULL, ZERO)
    real_detach = bpf.detach

    def look_then_detach(cg: int, fd: int) -> None:
        r["window_programs"] = b.programs()
        r["window"] = probe.opens(NULL, ZERO)  # the wrapped copy allows, the original not
        real_detach(cg, fd)

    bpf.detach = look_then_detach  # type: ignore[assignment]
    try:
        r["applied"] = applied(bpf.allow(b.cgroup, c(5), RW, replace=False))
    finally:
        bpf.detach = real_detach
    r["after"] = probe.opens(NULL, ZERO)
    r["programs"] = b.programs()


def scenario_unreadable(b: Bench) -> None:
    """A runtime program hwprov cannot carry over (it calls a helper) is left alone."""
    r, probe = b.result, b.probe()
    uid_gid = 15  # bpf_get_current_uid_gid
    keep_ctx = (df.mov64_reg(df.R6, df.R1), df.call(uid_gid), df.mov64_reg(df.R1, df.R6))
    b.attach_raw((*keep_ctx, *df.allowlist([Rule.parse("c 1:3 rwm")])))
    before = b.programs()
    try:
        bpf.allow(b.cgroup, c(5), RW, replace=True)
    except bpf.BpfError as err:
        r["error"] = str(err)
    r["opens"] = probe.opens(NULL, ZERO)
    r["unchanged"] = b.programs() == before


def livegrant_scenario(b: Bench, mechanism: Mechanism) -> None:
    """livegrant.grant/revoke on v2: the map, then the node in the process's mount namespace."""
    r, dev = b.result, tempfile.mkdtemp(prefix="hwprov-dev-")
    try:
        probe, node = b.probe(dev), f"{dev}/zero"
        b.attach_runtime_program(["c 1:3 rwm", "c *:* m"])
        mount = CgroupMount("cgroup2", "/", str(b.mount), frozenset())
        host = CgroupHost(CgroupVersion.HYBRID, mechanism, "test", mount)
        r["before"] = probe.opens(node)
        timed(r, "grant", functools.partial(livegrant.grant, probe.pid, node, 1, 5, host=host))
        r["granted"] = [*probe.opens(node), probe.ask("stat", node)]
        r["programs"] = b.programs()
        timed(r, "revoke", functools.partial(livegrant.revoke, probe.pid, node, 1, 5, host=host))
        r["revoked"] = probe.opens(node)
        r["remade"] = [probe.ask("mknod", node, "1", "5"), *probe.opens(node)]
        r["host_sees_no_node"] = not os.path.lexists(node)
    finally:
        os.rmdir(dev)  # the tmpfs is mounted in the probe's namespace only


def scenario_livegrant_replace(b: Bench) -> None:
    livegrant_scenario(b, Mechanism.BPF_REPLACE)


def scenario_livegrant_attach_detach(b: Bench) -> None:
    livegrant_scenario(b, Mechanism.BPF_ATTACH_DETACH)


SCENARIOS: dict[str, Callable[[Bench], None]] = {
    name.removeprefix("scenario_"): fn
    for name, fn in list(globals().items())
    if name.startswith("scenario_") and callable(fn)
}


def main(name: str) -> None:
    bench = Bench()
    with bench.up():
        SCENARIOS[name](bench)
    bench.result["probes"] = [p.pid for p in bench.probes]
    print(json.dumps(bench.result))


# -- the tests ----------------------------------------------------------------------------------


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root: mounts cgroup2 and loads BPF programs"
    if not shutil.which("unshare") or not shutil.which("nsenter"):
        return "needs unshare and nsenter (util-linux)"
    if "cgroup2" not in Path("/proc/filesystems").read_text():
        return "the kernel has no cgroup2"
    found = bpf.features()
    if not found.device_programs:
        return found.reason
    return None


WHY_NOT = _why_not()
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")


def scenario(name: str) -> dict[str, Any]:
    run = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, __file__, name],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    result: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])
    # the cgroup is in the machine's one cgroup2 hierarchy: check it went, wherever it shows
    here = cgroups.unified_mount(cgroups.parse_mountinfo(Path("/proc/self/mountinfo").read_text()))
    if here is not None:
        assert not (Path(here.mount_point) / result["cgroup"]).exists(), "cgroup left behind"
    for pid in result.get("probes", []):
        assert not Path(f"/proc/{pid}").exists(), f"probe {pid} left running"
    print(name, result.get("ms", {}))
    return result


def ids(programs: list[str]) -> list[str]:
    return [p.split(":")[0] for p in programs]


def names(programs: list[str]) -> list[str]:
    return [p.split(":", 1)[1] for p in programs]


@pytest.mark.parametrize("mode", ["replace", "attach_detach"])
def test_grant_and_revoke_swap_in_the_grant_check_once(mode: str) -> None:
    r = scenario(mode)
    assert r["empty"] and r["empty_programs"] == []  # no program: nothing to allow, none added
    assert r["before"] == ["OK", "OK", "OK"]
    assert r["runtime"] == ["OK", "EPERM", "EPERM"]
    assert r["first"] == [1, 1, 1]  # wrapped one program, wrote one map
    assert r["granted"] == ["OK", "OK", "EPERM"]  # /dev/full: not granted, still denied
    assert names(r["programs"]) == [df.PROG_NAME]  # one program: the runtime's was replaced
    assert r["second"] == [0, 1, 1]  # a second grant is a map update only
    assert r["both"] == ["OK", "OK", "OK"]
    assert r["state"] == {"1:5": RW, "1:7": RW}
    assert r["revoked"] == ["OK", "EPERM", "OK"]
    assert r["all_revoked"] == ["OK", "EPERM", "EPERM"]
    assert r["programs_after"] == r["programs"]  # revoking swaps nothing


def test_a_single_exclusive_program_is_replaced_in_place() -> None:
    r = scenario("exclusive")
    assert r["granted"] == ["OK", "OK"] and r["revoked"] == ["OK", "EPERM"]
    assert names(r["programs"]) == [df.PROG_NAME] and r["flags"] == 0


def test_every_program_on_the_cgroup_is_wrapped_and_keeps_its_own_limits() -> None:
    r = scenario("two_programs")
    assert r["runtime"] == ["OK", "EPERM", "EPERM"]  # the AND of both
    assert r["applied"] == [2, 1, 2]  # both wrapped, one shared map
    assert r["granted"] == ["OK", "OK", "EPERM"]  # /dev/full is still refused by the first
    assert names(r["programs"]) == [df.PROG_NAME, df.PROG_NAME]
    assert r["revoked"] == ["OK", "EPERM", "EPERM"]


def test_a_failure_half_way_leaves_the_device_denied() -> None:
    r = scenario("failures")
    assert "injected" in r["detach_error"]
    assert r["after_detach_failure"] == ["OK", "EPERM"]
    # the new program was taken back: only the runtime's is attached
    assert ids(r["programs_after_detach_failure"]) == [str(r["runtime_id"])]
    assert "injected" in r["update_error"]
    assert r["after_update_failure"] == ["OK", "EPERM"]  # wrapped, but nothing in the map
    assert names(r["programs_after_update_failure"]) == [df.PROG_NAME]
    assert r["retried"] == ["OK", "OK"]
    assert r["programs_after_retry"] == r["programs_after_update_failure"]  # not wrapped twice


def test_the_attach_then_detach_window_only_denies() -> None:
    r = scenario("window")
    assert r["granted"] == ["OK", "OK"]
    assert r["new_program"] == ["OK", "EPERM"]  # a fresh program without the grant: the AND
    assert len(r["window_programs"]) == 3  # hwprov's, the new one and its wrapped copy
    assert r["window"] == ["OK", "EPERM"]
    assert r["applied"] == [1, 1, 2]  # only the new one wrapped, into the same map
    assert r["after"] == ["OK", "OK"]
    assert names(r["programs"]) == [df.PROG_NAME, df.PROG_NAME]


def test_a_runtime_program_that_cannot_be_carried_over_is_left_alone() -> None:
    r = scenario("unreadable")
    assert "calls a helper" in r["error"]
    assert r["opens"] == ["OK", "EPERM"] and r["unchanged"]


@pytest.mark.parametrize("mode", ["replace", "attach_detach"])
def test_livegrant_grants_and_revokes_on_cgroup_v2(mode: str) -> None:
    r = scenario(f"livegrant_{mode}")
    assert r["before"] == ["ENOENT"]
    assert r["granted"] == ["OK", "1:5"]
    assert names(r["programs"]) == [df.PROG_NAME]
    assert r["revoked"] == ["ENOENT"]  # denied, then unlinked
    assert r["remade"] == ["OK", "EPERM"]  # a node made again (c *:* m) cannot be opened
    assert r["host_sees_no_node"]  # made in the probe's mount namespace only


if __name__ == "__main__":
    main(sys.argv[1])
