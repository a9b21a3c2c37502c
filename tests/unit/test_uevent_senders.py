"""Only the kernel and udevd are believed: the sender of each uevent is checked before libudev
reads it. The verdict is pure; the peek and the drop are shown on the kernel's real netlink, in a
private network namespace, with messages forged the way a container with CAP_NET_ADMIN on the
host network could send them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hwprov.hardware.senders import SENDER_GONE, Sender, sender_problem

FORGE = Path(__file__).with_name("uevent_forge.py")
UDEVD = frozenset({(1, 100)})
NOT_UDEVD = "a udev message from a process that does not run udevd"


@pytest.mark.parametrize(
    ("sender", "exe", "udevd", "problem"),
    [
        (Sender(port=0, group=1, pid=0, uid=0), None, UDEVD, None),
        (Sender(port=4242, group=1, pid=4242, uid=0), (1, 100), UDEVD,
         "a kernel uevent that the kernel did not send"),
        (Sender(port=77, group=2, pid=300, uid=0), (1, 100), UDEVD, None),
        (Sender(port=77, group=2, pid=300, uid=0), (1, 101), UDEVD, NOT_UDEVD),
        (Sender(port=77, group=2, pid=300, uid=0), (2, 100), UDEVD, NOT_UDEVD),
        (Sender(port=77, group=2, pid=300, uid=1000), (1, 100), UDEVD,
         "a udev message from a sender that is not root"),
        (Sender(port=77, group=2, pid=300, uid=None), (1, 100), UDEVD,
         "a udev message from a sender that is not root"),
        (Sender(port=77, group=2, pid=300, uid=0), None, UDEVD, SENDER_GONE),
        # Not visible (another pid namespace), or no udevd binary here: root is all one can tell.
        (Sender(port=77, group=2, pid=0, uid=0), None, UDEVD, None),
        (Sender(port=77, group=2, pid=300, uid=0), (1, 101), None, None),
        (Sender(port=77, group=4, pid=300, uid=0), (1, 100), UDEVD,
         "a message to netlink group 4"),
        (Sender(port=77, group=0, pid=300, uid=0), (1, 100), UDEVD,
         "a message to netlink group 0"),
    ],
)  # fmt: skip
def test_who_is_believed(
    sender: Sender, exe: tuple[int, int] | None, udevd: frozenset[tuple[int, int]] | None,
    problem: str | None,
) -> None:  # fmt: skip
    assert sender_problem(sender, exe, udevd) == problem


def forged(case: str) -> list[object]:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a private network namespace")
    done = subprocess.run(
        ["unshare", "-n", sys.executable, str(FORGE), case],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: list[object] = json.loads(done.stdout)
    return result


def test_a_forged_udev_message_from_a_root_process_is_dropped_and_said_once() -> None:
    assert forged("udev-forged") == [["untrusted", NOT_UDEVD, False]]


def test_a_message_from_udevds_binary_is_believed() -> None:
    # DEVNAME outside /dev is the inventory's to refuse (test_node_checks); here it only shows
    # that the message got through, twice.
    event = ["event", "add", "ttyX9", "/tmp/x/zero"]
    assert forged("udev-from-udevd") == [event, event]


def test_a_kernel_message_from_userspace_is_dropped() -> None:
    reason = "a kernel uevent that the kernel did not send"
    assert forged("kernel-forged") == [["untrusted", reason, False]]


def test_a_sender_gone_before_the_look_is_not_believed_and_the_drop_reads_the_message() -> None:
    assert forged("gone") == [True, SENDER_GONE, None]


def test_udevds_binary_is_looked_for_as_the_host_sees_it_too(tmp_path: Path) -> None:
    """In a container with the host's pid namespace the host's udevd is at /proc/1/root/..."""
    from hwprov.hardware.senders import UDEVD_BINARIES, file_id, udevd_binaries

    assert "/proc/1/root/lib/systemd/systemd-udevd" in UDEVD_BINARIES
    assert "/usr/lib/systemd/systemd-udevd" in UDEVD_BINARIES
    binary = tmp_path / "systemd-udevd"
    binary.write_bytes(b"")
    link = tmp_path / "udevadm"
    link.symlink_to(binary)  # one binary under two names: one identity
    found = udevd_binaries([str(link), str(binary), str(tmp_path / "none")])
    assert found == {file_id(str(binary))}
    assert udevd_binaries([str(tmp_path / "none")]) is None
