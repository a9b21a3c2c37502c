"""Forged uevents on the kernel's real netlink, in the private network namespace the test runs
this in (`unshare -n python uevent_forge.py CASE`): prints what the monitor made of them, as
JSON. Nothing outside the namespace hears these messages, and no udevd inside it sends any."""

from __future__ import annotations

import json
import os
import queue
import socket
import struct
import sys
import time

from hwprov.hardware import senders
from hwprov.hardware.udev import UdevMonitor
from hwprov.records import UdevEvent, UntrustedUevent

NETLINK_KOBJECT_UEVENT = 15


def libudev_message(**props: str) -> bytes:
    """udevd's wire format (systemd's monitor_netlink_header), with no filter hashes."""
    body = b"".join(f"{k}={v}".encode() + b"\0" for k, v in props.items())
    sizes = struct.pack("=IIIIIII", 40, 40, len(body), 0, 0, 0, 0)
    return b"libudev\0" + struct.pack(">I", 0xFEEDCAFE) + sizes + body


def kernel_message(**props: str) -> bytes:
    head = f"{props['ACTION']}@{props['DEVPATH']}".encode() + b"\0"
    return head + b"".join(f"{k}={v}".encode() + b"\0" for k, v in props.items())


def send(message: bytes, group: int) -> None:
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_KOBJECT_UEVENT) as sock:
        sock.bind((0, 0))
        sock.sendto(message, (0, group))


TTY = dict(
    ACTION="add",
    DEVPATH="/devices/virtual/tty/ttyX9",
    SUBSYSTEM="tty",
    DEVNAME="/tmp/x/zero",
    MAJOR="1",
    MINOR="5",
    SEQNUM="7",
)


def heard(source: str, udevd_paths: tuple[str, ...], message: bytes, group: int) -> list[object]:
    events: queue.SimpleQueue[object] = queue.SimpleQueue()
    monitor = UdevMonitor(
        [], [], source=source, events=events, check_senders=True, udevd_paths=udevd_paths
    )
    monitor.start()
    send(message, group)
    send(message, group)  # twice: an untrusted sender is said once
    out: list[object] = []
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        try:
            item = events.get(timeout=0.1)
        except queue.Empty:
            continue
        if isinstance(item, UdevEvent):
            out.append(["event", item.action, item.device.sys_name, item.device.node])
        elif isinstance(item, UntrustedUevent):
            out.append(["untrusted", item.reason, item.resync])
        else:
            out.append(["other", repr(item)])
    monitor.stop()
    return out


def gone() -> list[object]:
    """A sender that exits before its message is looked at."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_KOBJECT_UEVENT) as sock:
        sock.bind((0, senders.UDEV_GROUP))
        pid = os.fork()
        if pid == 0:
            send(libudev_message(**TTY), senders.UDEV_GROUP)
            os._exit(0)
        os.waitpid(pid, 0)
        check = senders.SenderCheck(sock.fileno(), senders.udevd_binaries(("/bin/true",)))
        sender = check.peek()
        assert sender is not None
        result = [sender.pid == pid, check.problem(sender)]
        check.drop()
        result.append(check.peek())  # dropped: nothing is waiting any more
        check.close()
        return result


def main(case: str) -> list[object]:
    udev_message = libudev_message(**TTY)
    if case == "udev-forged":  # udevd's binary is known here, and python is not it
        return heard("udev", ("/bin/true",), udev_message, senders.UDEV_GROUP)
    if case == "udev-from-udevd":  # this very binary stands for udevd's
        return heard("udev", (sys.executable,), udev_message, senders.UDEV_GROUP)
    if case == "kernel-forged":
        return heard("kernel", ("/bin/true",), kernel_message(**TTY), senders.KERNEL_GROUP)
    if case == "gone":
        return gone()
    raise SystemExit(f"unknown case {case}")


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
