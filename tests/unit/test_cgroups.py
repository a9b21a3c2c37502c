"""Which live-grant mechanism a host gets, from mountinfo and /proc/<pid>/cgroup samples."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hwprov.containers import cgroups, livegrant
from hwprov.containers.bpf import BpfFeatures, syscall_number
from hwprov.containers.cgroups import CgroupHost, CgroupMount, CgroupVersion, Mechanism

# cgroup v1 only, no unified mount (balenaOS-like)
V1 = """\
24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 24 0:24 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
27 26 0:25 / /sys/fs/cgroup/systemd rw,nosuid shared:10 - cgroup cgroup rw,xattr,name=systemd
31 26 0:29 / /sys/fs/cgroup/devices rw,nosuid,relatime shared:14 - cgroup cgroup rw,devices
32 26 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:15 - cgroup cgroup rw,cpu,cpuacct
"""
# this development VM: v1 controllers plus cgroup2 at /sys/fs/cgroup/unified
HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
# unified only (Debian 12)
V2 = """\
22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 22 0:23 / /sys/fs/cgroup rw,nosuid,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
"""
# hybrid without a v1 devices controller, cgroup2 also mounted twice, one with spaces
HYBRID_NO_DEVICES = """\
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
50 31 0:38 /sub /tmp/other rw,relatime - cgroup2 cgroup2 rw
51 31 0:38 / /tmp/my\\040mount rw,relatime - cgroup2 cgroup2 rw
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

REPLACE = BpfFeatures(True, True, "BPF_F_REPLACE supported")
NO_REPLACE = BpfFeatures(True, False, "no BPF_F_REPLACE (bpf(BPF_PROG_ATTACH): Invalid argument)")
NO_BPF = BpfFeatures(False, False, "the kernel refuses BPF_PROG_TYPE_CGROUP_DEVICE programs: x")


def never() -> BpfFeatures:
    raise AssertionError("a v1 host needs no BPF probe")


def test_mountinfo_gives_the_cgroup_mounts_and_their_controllers() -> None:
    mounts = cgroups.parse_mountinfo(V1)
    assert [m.mount_point for m in mounts] == [
        "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/devices", "/sys/fs/cgroup/cpu,cpuacct",
    ]  # fmt: skip
    assert mounts[0].controllers == {"xattr", "name=systemd"}
    assert mounts[1].controllers == {"devices"} and mounts[2].controllers == {"cpu", "cpuacct"}
    [v2] = cgroups.parse_mountinfo(V2)
    assert v2 == CgroupMount("cgroup2", "/", "/sys/fs/cgroup", frozenset())
    assert "/tmp/my mount" in [m.mount_point for m in cgroups.parse_mountinfo(HYBRID_NO_DEVICES)]
    assert cgroups.parse_mountinfo("garbage\n\n1 2 3\n") == ()


@pytest.mark.parametrize(
    ("sample", "version"),
    [(V1, "v1"), (HYBRID, "hybrid"), (V2, "v2"), (HYBRID_NO_DEVICES, "hybrid"), ("", "none")],
)
def test_the_version(sample: str, version: str) -> None:
    assert cgroups.version_of(cgroups.parse_mountinfo(sample)) == version


def test_v1_and_hybrid_hosts_use_devices_allow_without_probing_bpf() -> None:
    for sample in (V1, HYBRID):
        found = cgroups.detect(sample, never)
        assert found.mechanism is Mechanism.DEVICES_FILES
        assert found.devices is not None and found.devices.mount_point == "/sys/fs/cgroup/devices"
        assert found.describe() == "live grants: cgroup v1 devices.allow"


def test_v2_hosts_use_bpf_with_the_swap_the_kernel_has() -> None:
    found = cgroups.detect(V2, lambda: REPLACE)
    assert (found.version, found.mechanism) == (CgroupVersion.V2, Mechanism.BPF_REPLACE)
    assert found.unified is not None and found.unified.mount_point == "/sys/fs/cgroup"
    assert found.describe() == "live grants: cgroup v2 BPF, atomic replace"
    older = cgroups.detect(V2, lambda: NO_REPLACE)
    assert older.describe() == (
        "live grants: cgroup v2 BPF, attach then detach (kernel without BPF_F_REPLACE)"
    )
    none = cgroups.detect(V2, lambda: NO_BPF)
    assert none.mechanism is Mechanism.NONE and not none.bpf
    assert none.describe() == f"live grants: none: {NO_BPF.reason}"


def test_without_a_devices_controller_a_hybrid_host_uses_the_unified_hierarchy() -> None:
    found = cgroups.detect(HYBRID_NO_DEVICES, lambda: REPLACE)
    assert found.mechanism is Mechanism.BPF_REPLACE
    assert found.unified is not None and found.unified.mount_point == "/sys/fs/cgroup/unified"
    assert cgroups.detect("", never).describe() == "live grants: none: no cgroup mounted"
    systemd_only = V1.splitlines()[2]
    found = cgroups.detect(systemd_only, never)
    assert found.describe() == "live grants: none: no devices controller and no cgroup2 mount"


def test_a_process_cgroup_v1_devices_path_and_v2_unified_path() -> None:
    docker_v1 = "12:devices:/docker/abc\n11:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n"
    assert cgroups.parse_proc_cgroup(docker_v1) == cgroups.ProcCgroup("/docker/abc", None)
    systemd_v2 = "0::/system.slice/docker-abc.scope\n"
    assert cgroups.parse_proc_cgroup(systemd_v2).unified == "/system.slice/docker-abc.scope"
    hybrid = "5:devices:/docker/abc\n0::/docker/abc\n"
    assert cgroups.parse_proc_cgroup(hybrid) == cgroups.ProcCgroup("/docker/abc", "/docker/abc")


def test_a_cgroup_path_below_its_mount() -> None:
    whole = CgroupMount("cgroup2", "/", "/sys/fs/cgroup", frozenset())
    assert cgroups.under_mount(whole, "/docker/abc") == "/sys/fs/cgroup/docker/abc"
    assert cgroups.under_mount(whole, "/") == "/sys/fs/cgroup"
    part = CgroupMount("cgroup2", "/docker", "/mnt/cg", frozenset())
    assert cgroups.under_mount(part, "/docker/abc") == "/mnt/cg/abc"
    with pytest.raises(cgroups.CgroupError, match="not below /mnt/cg"):
        cgroups.under_mount(part, "/system.slice/x.scope")
    with pytest.raises(cgroups.CgroupError, match="cgroup: host"):
        cgroups.under_mount(whole, "/../../docker/abc")


def v2_host() -> CgroupHost:
    return cgroups.detect(V2, lambda: REPLACE)


def test_live_grants_say_why_when_the_host_has_no_mechanism() -> None:
    none = cgroups.detect(V2, lambda: NO_BPF)
    with pytest.raises(livegrant.LiveGrantError, match="no devices cgroup: live grants: none"):
        livegrant.grant(os.getpid(), "/dev/x", 1, 5, host=none)


def test_a_gone_process_is_a_clear_error_on_v2_too() -> None:
    with pytest.raises(livegrant.LiveGrantError, match="gone"):
        livegrant.grant(999_999_999, "/dev/x", 1, 1, host=v2_host())
    with pytest.raises(livegrant.LiveGrantError, match="gone"):
        livegrant.revoke(999_999_999, "/dev/x", 1, 1, host=v2_host())


def test_the_bpf_syscall_number_follows_the_userland_not_the_kernel() -> None:
    assert syscall_number("x86_64", 64) == 321 and syscall_number("x86_64", 32) == 357
    assert syscall_number("aarch64", 64) == 280
    assert syscall_number("aarch64", 32) == 386  # 32-bit Raspberry Pi OS on a 64-bit kernel
    assert syscall_number("armv7l", 32) == 386
    assert syscall_number("mips", 32) is None


def test_a_namespace_hwprov_may_not_open_fails_the_grant_not_the_agent(tmp_path: Path) -> None:
    # A process without CAP_SYS_PTRACE may not open the mount namespace of one with more
    # capabilities than its own (this test's, as a container's init has): EACCES, which must
    # come out as the grant's error, as any other reason a grant cannot be made.
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv (util-linux)")
    helper = tmp_path / "grant.py"
    helper.write_text(
        "import sys\n"
        "from hwprov.containers import livegrant\n"
        "try:\n"
        "    livegrant.revoke(int(sys.argv[1]), '/dev/hwprov-none', 1, 3)\n"
        "except livegrant.LiveGrantError as err:\n"
        "    print(err)\n"
    )
    out = subprocess.run(
        ["setpriv", "--bounding-set=-sys_ptrace", sys.executable, str(helper), str(os.getpid())],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"unlink /dev/hwprov-none in container process {os.getpid()}:")
    assert "Permission denied" in out.stdout, out.stdout
