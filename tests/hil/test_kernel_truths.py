"""What only a real kernel can show, on the kernel bench: data through the nodes hwprov maps, the
order of a USB enumeration's uevents, udevd applying udev/'s rules, and a netlink overrun.

The simulated bench cannot show any of these (its nodes are stand-ins, its uevents and udev
properties come from a board file, its "netlink" is umockdev's unix socket), so each test skips
there with that reason. None depends on the cgroup version, so each runs once, on the first
guest of the session.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from conftest import Hil
from hilkit import LOOP, name, view, wait_for

from lab.kernelbench import KernelBench

GADGETS = "/sys/kernel/config/usb_gadget"
FTDI_SERIAL, FTDI2_SERIAL = "A5XK3RJT", "A6YL4SKU"  # hw-fixtures/benches/kernel-q35.yaml
GPS = (
    f"  gps:\n    image: {{image}}\n    command: {LOOP}\n    init: true\n"
    "    network_mode: none\n    labels:\n"
    '      io.hwprov.device.gps: "kind=serial, by-id=usb-FTDI_FT232R*, optional, path=/dev/gps"\n'
)
# The gadget side of a CDC-ACM link: open it raw (cdc_acm's open on the host side waits for
# this one's carrier), answer one line, and say so on stderr.
ECHO = r"""
import os, sys, tty
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
tty.setraw(fd)
print("open", file=sys.stderr, flush=True)
line = b""
while not line.endswith(b"\n"):
    line += os.read(fd, 64)
os.write(fd, b"echo:" + line)
print("echoed", line.decode().strip(), file=sys.stderr, flush=True)
"""
READ_REGISTER = (
    "import sys, smbus2; bus = smbus2.SMBus(int(sys.argv[1])); "
    "print(hex(bus.read_byte_data(int(sys.argv[2], 0), int(sys.argv[3], 0))))"
)


@pytest.fixture
def kernel(hil: Hil, request: pytest.FixtureRequest) -> KernelBench:
    bench = hil.bench
    if not isinstance(bench, KernelBench):
        pytest.skip(f"needs the kernel bench: {bench.name} has no real kernel under it")
    first = request.config.getoption("--cgroup") or ["v2", "v1"]
    if bench.guest.cgroup != first[0]:
        pytest.skip(f"nothing here depends on the cgroup version: run on {first[0]} only")
    return bench


def in_guest(hil: Hil, *argv: str) -> str:
    done = hil.bench.run(list(argv))
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr}"
    return done.stdout.strip()


def in_container(hil: Hil, service: str, script: str) -> str:
    api = hil.client.api
    exec_id = api.exec_create(name(service), ["sh", "-c", script])
    out = api.exec_start(exec_id).decode().strip()
    code = api.exec_inspect(exec_id)["ExitCode"]
    assert code == 0, f"{service}: {script}: exit {code}: {out}"
    return out


def nodes(hil: Hil, service: str) -> dict[str, str]:
    """The service's mapped nodes as seen inside it, {} while it is swapped or stopped."""
    seen = view(hil.client, name(service))
    return seen.nodes if seen is not None and seen.running else {}


def running_without(hil: Hil, service: str, path: str) -> bool:
    """The service's container runs (its swap is over) and does not map `path`."""
    seen = view(hil.client, name(service))
    return seen is not None and seen.running and path not in seen.nodes


def maps(hil: Hil, service: str, path: str, numbers: str) -> bool:
    return nodes(hil, service).get(path) == numbers


def test_data_flows_through_the_nodes_hwprov_maps(hil: Hil, kernel: KernelBench) -> None:
    """Not only listed: a container opens its tty and its I2C bus and talks through them."""
    agent = hil.up(kinds=("i2c", "serial"))
    assert wait_for(lambda: agent.count("reconciled") >= 1) is not None
    # I2C: i2c-stub's chip at 0x76 answers smbus transfers made in the container with
    # busybox's i2c tools through the mapped /dev/i2c-1, and the guest reads back the same.
    bus = kernel.i2c_slot()
    assert bus is not None
    address = f"0x{bus.address:02x}"
    assert wait_for(lambda: "/dev/i2c-1" in nodes(hil, "i2c")) is not None
    try:
        out = in_container(
            hil, "i2c", f"i2cset -y 1 {address} 0xf4 0x27 && i2cget -y 1 {address} 0xf4"
        )
        assert out == "0x27"
        assert in_guest(hil, "python3", "-c", READ_REGISTER, "1", address, "0xf4") == "0x27"
    finally:
        in_guest(hil, "i2cset", "-y", "1", address, "0xf4", "0")
    # Serial: the Arduino's CDC-ACM tty, both ways through the emulated USB link.
    node = kernel.plug("arduino")[0]
    numbers = kernel.engine_numbers(node)
    took = wait_for(lambda: maps(hil, "serial", node, numbers))
    assert took is not None, agent.log.read_text()[-3000:]
    port = in_guest(hil, "cat", f"{GADGETS}/arduino/functions/acm.arduino/port_num")
    echo = kernel.spawn(["python3", "-c", ECHO, f"/dev/ttyGS{port}"], stderr=subprocess.PIPE)
    try:
        assert echo.stderr is not None
        assert echo.stderr.readline().strip() == "open"
        script = (
            f"exec 3<>{node}; stty raw -echo <&3; echo hello-from-the-container >&3; "
            'read -t 60 line <&3; echo "$line"'
        )
        assert in_container(hil, "serial", script) == "echo:hello-from-the-container"
        assert echo.wait(timeout=60) == 0
    finally:
        if echo.poll() is None:
            echo.terminate()
            echo.wait(timeout=30)
        if echo.stderr is not None:
            echo.stderr.close()
        kernel.unplug("arduino")


def test_hwprov_decides_on_udevds_event_not_the_kernels(hil: Hil, kernel: KernelBench) -> None:
    """A USB serial adapter's enumeration: the kernel announces the tty before udevd has made
    its by-id link. A service asking by that link gets the adapter from the first event hwprov
    acts on (udevd's), with one add and one remove, whatever else the USB core says."""
    agent = hil.up(extra=GPS.format(image=hil.image), kinds=())
    assert wait_for(lambda: agent.count("reconciled") >= 1) is not None
    log = hil.workdir / "uevents.log"  # in the folder the guest shares
    monitor = kernel.spawn(
        ["sh", "-c", f"exec udevadm monitor --kernel --udev --subsystem-match=tty >{log}"]
    )
    try:
        assert wait_for(lambda: log.exists()) is not None
        node = kernel.plug("ftdi")[0]
        numbers = kernel.engine_numbers(node)
        took = wait_for(lambda: maps(hil, "gps", "/dev/gps", numbers))
        assert took is not None, agent.log.read_text()[-3000:]
        hil.record("plug ftdi -> /dev/gps by its by-id link", took)
        kernel.unplug("ftdi")
        gone = wait_for(lambda: running_without(hil, "gps", "/dev/gps"))
        assert gone is not None, agent.log.read_text()[-3000:]
    finally:
        monitor.terminate()
        monitor.wait(timeout=30)
    ftdi = [
        d for d in agent.decisions()
        if d["event"] in ("add", "remove") and FTDI_SERIAL in d["hardware"]
    ]  # fmt: skip
    assert [d["event"] for d in ftdi] == ["add", "remove"], ftdi
    # The line comes after the replacement has settled and the original is gone: wait for it.
    assert wait_for(lambda: agent.count("recreated", service="gps") >= 2) is not None
    assert agent.count("recreated", service="gps") == 2  # with it, then without it
    assert agent.count("rolled-back") == agent.count("abandoned") == 0
    # What the kernel and udevd said meanwhile: the kernel's add of the tty came first, udevd's
    # (the one hwprov heard) after it.
    line = r"^(KERNEL|UDEV)\s*\[[\d.]+\]\s+(\w+)\s+(\S+ttyUSB\d+)"
    said = re.findall(line, log.read_text(), re.M)
    adds = [source for source, action, _ in said if action == "add"]
    assert adds == ["KERNEL", "UDEV"], said


def test_udevd_applies_the_rules_in_udev(hil: Hil, kernel: KernelBench) -> None:
    """udev/99-hwprov.rules in the guest's real udevd (installed as docs/deploy.md says, with
    the groups from udev/hwprov.sysusers.conf): the groups, modes, tags and links it promises."""
    kernel.boot()
    node = kernel.plug("arduino")[0]
    chip = kernel.plug("gpio-sim")[0]
    try:
        wanted = {"/dev/i2c-1": "i2c 660", node: "dialout 660", chip: "gpio 660"}

        def applied() -> dict[str, str]:
            return {n: in_guest(hil, "stat", "-L", "-c", "%G %a", n) for n in wanted}

        assert wait_for(lambda: applied() == wanted) is not None, applied()
        for n in wanted:
            tags = in_guest(hil, "udevadm", "info", "--query=property", f"--name={n}")
            assert re.search(r"^TAGS=.*:hwprov:", tags, re.M), (n, tags)
        # i2c-0 is the q35's ICH9 SMBus: a PCI device, so path_id names it and the rule links it.
        links = in_guest(hil, "sh", "-c", "for l in /dev/i2c/by-path/*; do readlink -f $l; done")
        assert "/dev/i2c-0" in links.split(), links
        # udevd took every line: no group it does not know, no key it ignored.
        sys_path = in_guest(hil, "udevadm", "info", "--query=path", f"--name={chip}")
        test = hil.bench.run(["udevadm", "test", "--action=add", sys_path])
        complaints = [
            line for line in (test.stdout + test.stderr).splitlines()
            if "99-hwprov.rules" in line and re.search(r"unknown|invalid|ignoring", line, re.I)
        ]  # fmt: skip
        assert complaints == []
    finally:
        kernel.unplug("arduino")
        kernel.unplug("gpio-sim")


def test_a_netlink_overrun_ends_in_a_resync_not_a_deaf_agent(hil: Hil, kernel: KernelBench) -> None:
    """The agent is stopped while adapters come and go: its small receive buffer overflows, the
    kernel drops the rest (ENOBUFS), and the agent, continued, enumerates again and ends with
    exactly what is plugged, the stranger that took the lost adapter's ttyUSB0 included."""
    config = hil.workdir / "hwprov.yaml"
    # The smallest buffer: the kernel makes it its minimum (about 2 KiB), so one message
    # queued unread fills it and the next is dropped (ENOBUFS on the next receive).
    config.write_text("udev-buffer-kib: 1\n")
    agent = hil.up(kinds=("serial",), agent_args=("--config", str(config)))
    assert wait_for(lambda: agent.count("reconciled") >= 1) is not None
    first = kernel.plug("ftdi")[0]
    assert wait_for(lambda: maps(hil, "serial", first, kernel.engine_numbers(first))) is not None
    in_guest(hil, "pkill", "-STOP", "-f", "hwprov run -f")
    try:
        kernel.unplug("ftdi")
        stranger = kernel.plug("ftdi2")[0]  # the lowest free number: ttyUSB0 again
        acm = kernel.plug("arduino")[0]
    finally:
        in_guest(hil, "pkill", "-CONT", "-f", "hwprov run -f")
    assert stranger == first
    want = {stranger: kernel.engine_numbers(stranger), acm: kernel.engine_numbers(acm)}

    took = wait_for(lambda: nodes(hil, "serial") == want)
    assert took is not None, agent.log.read_text()[-4000:]
    hil.record("overrun -> resync -> exactly what is plugged", took)
    resyncs = [d for d in agent.decisions() if d["event"] == "resync"]
    assert resyncs and "No buffer space available" in resyncs[0]["reason"], resyncs
    held = {d["hardware"] for d in agent.decisions() if d["event"] == "add"} - {
        d["hardware"] for d in agent.decisions() if d["event"] == "remove"
    }
    assert any(FTDI2_SERIAL in h for h in held) and not any(FTDI_SERIAL in h for h in held)
    # Not deaf: the monitor it opened again hears the next unplug.
    kernel.unplug("arduino")
    assert wait_for(lambda: running_without(hil, "serial", acm)) is not None
