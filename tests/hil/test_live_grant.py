"""The live grant on a real kernel's cgroups, v2 (hwprov's BPF program in front of runc's) and
v1 (devices.allow): a running container gets a node without a restart, another container does
not, and the grant survives `docker update` and pause but not a restart (runc attaches a fresh
program, /dev is a fresh tmpfs). Kernel bench only: the simulator's engine runs on the host's
own cgroups, where tests/engine covers v1."""

from __future__ import annotations

import pytest
from conftest import Hil

GRANT = (
    "import sys; from hwprov.containers import livegrant as g; "
    "pid, path, major, minor = int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]); "
    "(g.grant if sys.argv[1] == 'grant' else g.revoke)(pid, path, major, minor)"
)
DENIED = "Operation not permitted"  # EPERM: the device cgroup said no
HOST = "from hwprov.containers.cgroups import host; print(host().describe())"


def opens(hil: Hil, container: str, node: str, numbers: tuple[int, int]) -> str:
    """What opening `node` inside the container says: 'ok', or the error. The node is made
    first where it is missing (runc's rules allow mknod of any char node), so what is tested
    is the cgroup, not whether /dev has the file."""
    script = (
        f"[ -e {node} ] || mknod {node} c {numbers[0]} {numbers[1]}; "
        f"head -c 0 {node} 2>&1 && echo ok"
    )
    out = hil.client.api.exec_start(hil.client.api.exec_create(container, ["sh", "-c", script]))
    text = out.decode().strip()
    return "ok" if text.endswith("ok") else text


def live(hil: Hil, action: str, container: str, node: str, numbers: tuple[int, int]) -> None:
    pid = hil.client.api.inspect_container(container)["State"]["Pid"]
    done = hil.bench.run(["python3", "-c", GRANT, action, str(pid), node, *map(str, numbers)])
    assert done.returncode == 0, done.stderr


def test_a_live_grant_reaches_one_running_container_and_survives_update_and_pause(
    hil: Hil,
) -> None:
    if not hil.bench.name.startswith("kernel:"):
        pytest.skip("needs the kernel bench: a real kernel's cgroups under the engine")
    hil.bench.boot()
    mechanism = hil.bench.run(["python3", "-c", HOST])
    assert mechanism.returncode == 0, mechanism.stderr
    hil.record(mechanism.stdout.strip(), None)
    node = hil.bench.plug("ftdi")[0]
    numbers = tuple(int(n) for n in hil.bench.engine_numbers(node).split(":"))
    assert len(numbers) == 2
    nums = (numbers[0], numbers[1])
    names = ("hil-live-a", "hil-live-b")
    for name in names:
        hil.client.api.start(
            hil.client.api.create_container(
                hil.image, ["sleep", "3600"], name=name,
                host_config=hil.client.api.create_host_config(init=True),
            )
        )  # fmt: skip
    try:
        a, b = names
        assert DENIED in opens(hil, a, node, nums)  # runc's rules: no such device for it
        live(hil, "grant", a, node, nums)
        assert opens(hil, a, node, nums) == "ok"
        assert DENIED in opens(hil, b, node, nums)  # the other container's cgroup is untouched
        hil.client.api.update_container(a, mem_limit="64m", memswap_limit="128m")
        assert opens(hil, a, node, nums) == "ok"  # runc update never touches devices
        hil.client.api.pause(a)
        hil.client.api.unpause(a)
        assert opens(hil, a, node, nums) == "ok"
        live(hil, "revoke", a, node, nums)
        assert DENIED in opens(hil, a, node, nums)  # denied first, then unlinked: made again here
        live(hil, "grant", a, node, nums)
        hil.client.api.restart(a, timeout=2)
        assert DENIED in opens(hil, a, node, nums)  # a fresh cgroup: granted again on start
    finally:
        for name in names:
            hil.client.api.remove_container(name, force=True)
        hil.bench.unplug("ftdi")
