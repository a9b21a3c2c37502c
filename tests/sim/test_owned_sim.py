"""On the simulated Pi 4 (console=serial0 on ttyS0, Bluetooth on the PL011 through serdev), a
bare `kind=serial` takes neither the console nor the Bluetooth UART; naming them still does."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import HWPROV, sim

COMPOSE = """services:
  bare:
    image: busybox
    labels:
      io.hwprov.device.port: "kind=serial"
  named:
    image: busybox
    labels:
      io.hwprov.device.console: "name=ttyS0"
  declared:
    image: busybox
    devices: ["/dev/ttyAMA0"]
"""


def test_kind_alone_leaves_the_console_and_the_bluetooth_uart_and_names_still_work(
    tmp_path: Path,
) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    plugs = "hwprov sim plug ftdi >/dev/null"
    done = sim("sh", "-c", f"{plugs}; {' '.join(HWPROV)} plan --json -f {compose}")
    assert done.returncode == 0, done.stderr
    plan = {s["service"]: s for s in json.loads(done.stdout)["services"]}
    assert [d["host"] for d in plan["bare"]["devices"]] == ["/dev/ttyUSB0"]
    assert [n.split(": ", 1)[1] for n in plan["bare"]["notes"]] == [
        "serial ttyAMA0 left out: the serdev driver hci_uart_bcm (on serial0-0) drives this "
        "UART; name it (name=ttyAMA0) to map it",
        "serial ttyS0 left out: the kernel console is on ttyS0; name it (name=ttyS0) to map it",
    ]
    assert [d["host"] for d in plan["named"]["devices"]] == ["/dev/ttyS0"]
    [declared] = plan["declared"]["devices"]
    assert (
        declared["host"] == "/dev/ttyAMA0"
        and "given although the serdev driver" in (declared["reason"])
    )
