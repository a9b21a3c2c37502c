"""The live grant on a real kernel's cgroups, v2 (hwprov's BPF program in front of runc's) and
v1 (devices.allow): a running container gets a node without a restart, another container does
not, and the grant survives `docker update` and pause but not a restart (runc attaches a fresh
program, /dev is a fresh tmpfs), checked on the kernel bench; and a service asking for live
grants through `hwprov run`, on every bench."""

from __future__ import annotations

import pytest
from conftest import Hil
from hilkit import LOOP, name, node_numbers, wait_for

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
    for container in names:
        hil.client.api.start(
            hil.client.api.create_container(
                hil.image, ["sleep", "3600"], name=container,
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
        # dockerd answers the unpause before it has handled containerd's "resumed" event: until
        # then an exec is refused as paused (seen under TCG on cgroup v1).
        assert (
            wait_for(lambda: not hil.client.api.inspect_container(a)["State"]["Paused"]) is not None
        )
        assert opens(hil, a, node, nums) == "ok"
        live(hil, "revoke", a, node, nums)
        assert DENIED in opens(hil, a, node, nums)  # denied first, then unlinked: made again here
        live(hil, "grant", a, node, nums)
        hil.client.api.restart(a, timeout=2)
        assert DENIED in opens(hil, a, node, nums)  # a fresh cgroup: granted again on start
    finally:
        for container in names:
            hil.client.api.remove_container(container, force=True)
        hil.bench.unplug("ftdi")


def test_a_live_service_keeps_running_while_its_adapter_comes_and_goes(hil: Hil) -> None:
    """io.hwprov.grant: live through `hwprov run`: the same container process sees the node
    appear, go and come back, never restarted (a logger reopening /dev/gps is the use)."""
    serial = [u for u in hil.bench.units().values() if u.kind == "serial" and not u.at_boot]
    if not serial or not serial[0].nodes:
        pytest.skip(f"{hil.bench.name} has no hot-pluggable serial adapter")
    extra = (
        f"  logger:\n    image: {hil.image}\n    command: {LOOP}\n    init: true\n"
        "    network_mode: none\n"
        "    labels:\n      io.hwprov.grant: live\n"
        '      io.hwprov.device.gps: "kind=serial, by-id=usb-*, optional, path=/dev/gps"\n'
    )
    agent = hil.up(extra=extra, kinds=())  # the logger alone: nothing else is watched
    assert wait_for(lambda: agent.count("reconciled") >= 1) is not None
    logger = name("logger")
    first = hil.client.api.inspect_container(logger)
    started_at = (first["Id"], first["State"]["StartedAt"])

    def numbers() -> str:
        return node_numbers(hil.client, logger, "/dev/gps")

    nodes = hil.bench.plug(serial[0].id)
    want = hil.bench.engine_numbers(nodes[0])
    took = wait_for(lambda: numbers() == want)
    assert took is not None, (numbers(), want, agent.log.read_text()[-3000:])
    hil.record(f"live plug {serial[0].id} -> /dev/gps in the running container", took)
    hil.bench.unplug(serial[0].id)
    gone = wait_for(lambda: numbers() != want)
    assert gone is not None, agent.log.read_text()[-2000:]
    hil.record(f"live unplug {serial[0].id} -> /dev/gps gone", gone)
    hil.bench.plug(serial[0].id)
    assert wait_for(lambda: numbers() == want) is not None
    now = hil.client.api.inspect_container(logger)
    assert (now["Id"], now["State"]["StartedAt"]) == started_at  # never recreated, never restarted
    assert agent.count("granted", service="logger") >= 2
    assert agent.count("recreated", service="logger") == 0
