"""The udev monitor's thread: a socket that fails ends it with a MonitorLost on the queue, never a
bare traceback and a deaf process; a monitor reopens on the same queue, until it keeps dying."""

from __future__ import annotations

import errno
import os
import queue
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from hwprov.errors import UdevError
from hwprov.hardware import udev
from hwprov.hardware.udev import UdevMonitor, quiet_tail
from hwprov.records import MonitorLost


class FailingNetlink:
    """A monitor socket with one event waiting, whose receive fails as libudev's does after the
    kernel dropped events for a full buffer."""

    def __init__(self) -> None:
        self.ours, self.theirs = socket.socketpair()
        self.theirs.send(b"x")  # readable: the thread will try to receive

    def fileno(self) -> int:
        return self.ours.fileno()

    def start(self) -> None:
        pass

    def poll(self, timeout: float | None = None) -> None:
        raise OSError(errno.ENOBUFS, os.strerror(errno.ENOBUFS))

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()


class RefusedSocket(FailingNetlink):
    """A socket the kernel flags with an error (POLLERR): a UDP send to a closed port."""

    def __init__(self) -> None:
        self.ours = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.ours.connect(("127.0.0.1", port))  # nobody listens there any more
        self.ours.send(b"x")  # -> ICMP port unreachable -> SO_ERROR ECONNREFUSED
        self.theirs = socket.socket()


@pytest.fixture
def opened() -> Iterator[list[FailingNetlink]]:
    made: list[FailingNetlink] = []
    yield made
    for fake in made:
        fake.close()


def monitor(kind: type[FailingNetlink], made: list[FailingNetlink]) -> UdevMonitor:
    def opener(source: str, subsystems: tuple[str, ...]) -> FailingNetlink:
        made.append(kind())
        return made[-1]

    return UdevMonitor(["tty"], [], source="udev", events=queue.SimpleQueue(), opener=opener)


def test_a_receive_that_fails_puts_monitor_lost_on_the_queue_and_ends_the_thread(
    opened: list[FailingNetlink],
) -> None:
    mon = monitor(FailingNetlink, opened)
    mon.start()
    lost = mon.events.get(timeout=5)
    assert lost == MonitorLost("the udev monitor stopped: [Errno 105] No buffer space available")
    mon._thread.join(timeout=5)
    assert not mon._thread.is_alive()
    mon.stop()


def test_an_error_the_socket_reports_is_named(opened: list[FailingNetlink]) -> None:
    mon = monitor(RefusedSocket, opened)
    mon.start()
    lost = mon.events.get(timeout=5)
    assert isinstance(lost, MonitorLost) and "Connection refused" in lost.reason, lost
    mon.stop()


def test_a_reopened_monitor_shares_the_queue_and_knows_the_nodes(
    opened: list[FailingNetlink],
) -> None:
    first = monitor(FailingNetlink, opened)
    first.remember_path("/sys/devices/x/ttyUSB0", "/dev/ttyUSB0")
    first.start()
    assert isinstance(first.events.get(timeout=5), MonitorLost)
    second = first.reopen("lost")
    assert second.events is first.events and second.source == first.source
    assert second._nodes == {"/sys/devices/x/ttyUSB0": "/dev/ttyUSB0"}
    assert isinstance(second.events.get(timeout=5), MonitorLost)  # a new socket, a new thread
    second.stop()
    first.stop()  # stopping twice, or a monitor that ended on its own, is harmless


def test_a_monitor_that_keeps_dying_is_not_reopened_in_a_loop(
    opened: list[FailingNetlink],
) -> None:
    mon = monitor(FailingNetlink, opened)
    mon.start()
    for _ in range(udev.MAX_LOSSES):
        assert isinstance(mon.events.get(timeout=5), MonitorLost)
        mon = mon.reopen("ENOBUFS")
    assert isinstance(mon.events.get(timeout=5), MonitorLost)
    with pytest.raises(UdevError, match="lost 6 times in 60 s"):
        mon.reopen("ENOBUFS")
    assert len(opened) == udev.MAX_LOSSES + 1


def test_a_netlink_socket_that_does_not_open_is_a_udev_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    monkeypatch.setattr(udev.pyudev.Monitor, "from_netlink", refuse)
    with pytest.raises(UdevError, match=r"cannot open the udev netlink socket \(kernel\)"):
        UdevMonitor(["tty"], [], source="kernel")


def test_quiet_tail_gathers_until_the_queue_goes_quiet_or_something_urgent_comes() -> None:
    events: queue.SimpleQueue[object] = queue.SimpleQueue()
    feeder = threading.Thread(
        target=lambda: [(events.put(i), time.sleep(0.01)) for i in range(20)], name="feeder"
    )
    feeder.start()
    taken = quiet_tail(events, quiet_s=0.5, most_s=30.0)  # gaps of 10 ms: one burst
    feeder.join()
    assert taken == list(range(20))
    events.put("a")
    events.put("stop")
    events.put("b")
    assert quiet_tail(events, quiet_s=5.0, most_s=30.0, urgent=lambda i: i == "stop") == [
        "a",
        "stop",
    ]
    assert quiet_tail(events, quiet_s=0.05, most_s=30.0) == ["b"]
