"""Who sent a uevent: only the kernel and udevd are believed.

libudev already drops a kernel-group message whose netlink sender is not the kernel (port id
0) and any message whose sender is not uid 0. That leaves the udev group open to any root
process that may send to it: a container with the host network and CAP_NET_ADMIN, which is
what hwprov itself gives Bluetooth services, can broadcast a "udev" message naming any DEVNAME.
So before libudev reads a message the monitor thread peeks at its credentials, and a udev-group
message counts only when its sender runs udevd's own binary (the same file, not the same name:
a container's process may be called anything and live at any path in its own mount namespace).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

KERNEL_GROUP, UDEV_GROUP = 1, 2
# Where distributions install udevd (systemd's, or eudev's); udevadm and systemd-udevd are one
# binary on recent systemd, and a stat follows the symlink between them.
_INSTALLED = (
    "/lib/systemd/systemd-udevd",
    "/usr/lib/systemd/systemd-udevd",
    "/usr/bin/udevadm",
    "/bin/udevadm",
    "/sbin/udevd",
    "/usr/sbin/udevd",
)
# Also as the host's init sees them: hwprov in a container with the host's pid namespace (as
# deploy/ runs it) reaches the host's files through /proc/1/root, where its own image has none.
UDEVD_BINARIES = _INSTALLED + tuple(f"/proc/1/root{path}" for path in _INSTALLED)
SENDER_GONE = "a udev message from a process that is gone or cannot be looked at"
_UCRED = struct.Struct("iII")  # struct ucred: pid, uid, gid
FileId = tuple[int, int]  # (st_dev, st_ino)
_said_blind = False


@dataclass(frozen=True, slots=True)
class Sender:
    """What the kernel says about a message's sender. `pid` is 0 when the sender lives in a pid
    namespace this process cannot see (hwprov in a container, udevd on the host); `uid` is None
    when the message came without credentials."""

    port: int  # netlink port id: 0 is the kernel
    group: int
    pid: int
    uid: int | None

    def describe(self) -> str:
        return f"pid {self.pid} uid {self.uid} netlink port {self.port} group {self.group}"


def sender_problem(
    sender: Sender, exe: FileId | None, udevd: frozenset[FileId] | None
) -> str | None:
    """Why a message from `sender` is not believed, or None. `exe`: the file the sender runs
    (None when it cannot be read); `udevd`: udevd's binaries, None when none is known here."""
    if sender.group == KERNEL_GROUP or (sender.group == 0 and sender.port == 0):
        return None if sender.port == 0 else "a kernel uevent that the kernel did not send"
    if sender.group != UDEV_GROUP:
        return f"a message to netlink group {sender.group}"
    if sender.uid != 0:
        return "a udev message from a sender that is not root"
    if sender.pid == 0 or udevd is None:
        return None  # nothing more can be told: see SenderCheck.blind
    if exe is None:
        return SENDER_GONE
    if exe not in udevd:
        return "a udev message from a process that does not run udevd"
    return None


def file_id(path: str) -> FileId | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def udevd_binaries(paths: Iterable[str] = UDEVD_BINARIES) -> frozenset[FileId] | None:
    found = frozenset(i for i in map(file_id, paths) if i is not None)
    return found or None


class SenderCheck:
    """Peeks at the next message on a netlink socket and says whether to believe it.

    Owned by the monitor thread: the peek and libudev's read that follows see the same message
    because no other thread reads the socket.
    """

    def __init__(self, fd: int, udevd: frozenset[FileId] | None) -> None:
        # Not a dup: umockdev's preload fakes the sender only on the fd it handed out.
        self._sock = socket.socket(fileno=fd)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.udevd = udevd

    def peek(self) -> Sender | None:
        """The next message's sender, or None when no message is waiting."""
        try:
            _, ancillary, _, address = self._sock.recvmsg(
                1, socket.CMSG_SPACE(_UCRED.size), socket.MSG_PEEK | socket.MSG_DONTWAIT
            )
        except BlockingIOError:
            return None
        except OSError as err:
            if err.errno == errno.EINTR:
                return self.peek()
            raise
        port, group = address if isinstance(address, tuple) else (0, 0)
        pid, uid = 0, None
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, uid, _ = _UCRED.unpack(data[: _UCRED.size])
        return Sender(port=port, group=group, pid=pid, uid=uid)

    def problem(self, sender: Sender) -> str | None:
        global _said_blind
        visible = sender.pid > 0  # 0 also under umockdev, whose fake sender has no pid
        if sender.group == UDEV_GROUP and visible and self.udevd is None and not _said_blind:
            _said_blind = True  # said when it matters, and once
            log.warning("udevd's binary is not found here: udev messages are checked by uid only")
        exe = file_id(f"/proc/{sender.pid}/exe") if sender.pid > 0 else None
        return sender_problem(sender, exe, self.udevd)

    def drop(self) -> None:
        """Read the peeked message and throw it away: a datagram is read whole or not at all."""
        with contextlib.suppress(BlockingIOError):
            self._sock.recv(1, socket.MSG_DONTWAIT)

    def close(self) -> None:
        self._sock.detach()  # the fd is libudev's to close
