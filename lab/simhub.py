"""The private lab's USB hubs (lab/privatelab.py): switchable hubs on the lab host, one per
place, whose ports power the simulated boards' USB units, so that labgrid's own USBPowerDriver
plugs and unplugs them as it does a real lab's.

- `describe(hubs)`: the hubs as udev shows them (a umockdev description): the exporter runs
  under `umockdev-run` with it, so its udev matching finds a `USBPowerPort` per unit;
- `python -m lab.simhub MAP uhubctl-args`: what the lab host runs as `uhubctl` (the env file's
  `tools: uhubctl:`). `-a on|off` on hub LOC port N plugs or unplugs the unit MAP gives for
  that port, on the place's simulated board, through its control socket; without `-a` it
  prints the port's state as uhubctl does (USBPowerDriver.get parses it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hwprov.errors import SimulatorError
from hwprov.sim.control import request

CONTROLLER = "/devices/pci0000:00/0000:00:14.0"


@dataclass(frozen=True, slots=True)
class Hub:
    bus: int  # hub N-1 sits on root hub usbN: its location is "N-1"
    control: str  # the simulated board's control socket
    ports: dict[int, str]  # port -> unit id

    @property
    def location(self) -> str:
        return f"{self.bus}-1"

    @property
    def id_path(self) -> str:
        return f"pci-0000:00:14.0-usb-0:1:1.0-bus{self.bus}"


def port_of(top_path: str, fallback: int) -> int:
    """A unit's hub port from its USB device's name (1-1.3 is port 3 of hub 1-1)."""
    name = top_path.rstrip("/").rsplit("/", 1)[-1]
    tail = name.rsplit(".", 1)[-1] if "." in name else ""
    return int(tail) if tail.isdigit() else fallback


def describe(hubs: Sequence[Hub]) -> str:
    """A umockdev description: per hub its root hub, the hub device and its hub interface."""
    out = []
    for hub in hubs:
        root = f"{CONTROLLER}/usb{hub.bus}"
        device = f"{root}/{hub.location}"
        for path, props, node in (
            (root, {"DEVTYPE": "usb_device", "DRIVER": "usb", "BUSNUM": f"{hub.bus:03d}",
                    "DEVNUM": "001", "ID_VENDOR_ID": "1d6b", "ID_MODEL_ID": "0002"}, 1),
            (device, {"DEVTYPE": "usb_device", "DRIVER": "usb", "BUSNUM": f"{hub.bus:03d}",
                      "DEVNUM": "002", "ID_VENDOR_ID": "2109", "ID_MODEL_ID": "2817"}, 2),
            (f"{device}/{hub.location}:1.0", {"DEVTYPE": "usb_interface", "DRIVER": "hub",
                                              "ID_PATH": hub.id_path}, 0),
        ):  # fmt: skip
            lines = [f"P: {path}"]
            if node:
                lines.append(f"N: bus/usb/{hub.bus:03d}/{node:03d}")
                props = {**props, "DEVNAME": f"/dev/bus/usb/{hub.bus:03d}/{node:03d}"}
            lines += [f"E: {k}={v}" for k, v in {**props, "SUBSYSTEM": "usb"}.items()]
            if node:
                lines += [f"A: busnum={hub.bus}", f"A: devnum={node}"]
            out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def load(path: Path) -> list[Hub]:
    doc = json.loads(path.read_text())
    return [Hub(int(h["bus"]), str(h["control"]), {int(p): str(u) for p, u in h["ports"].items()})
            for h in doc]  # fmt: skip


def save(path: Path, hubs: Sequence[Hub]) -> None:
    path.write_text(json.dumps([{"bus": h.bus, "control": h.control, "ports": h.ports}
                                for h in hubs], indent=1))  # fmt: skip


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="uhubctl (hwprov's simulated hubs)")
    parser.add_argument("map", type=Path)
    parser.add_argument("-l", "--location", required=True)
    parser.add_argument("-p", "--ports", type=int, required=True)
    parser.add_argument("-r", "--repeat", type=int, default=1)  # real hubs need retries
    parser.add_argument("-a", "--action", choices=("on", "off", "1", "0"))
    args = parser.parse_args(argv)
    hub = next((h for h in load(args.map) if h.location == args.location), None)
    if hub is None or args.ports not in hub.ports:
        print(f"No compatible devices detected at location {args.location}!", file=sys.stderr)
        return 1
    unit = hub.ports[args.ports]
    if args.action is not None:
        op = "plug" if args.action in ("on", "1") else "unplug"
        # What the lab's hubs were asked, beside their map: the lab's record that the units
        # were switched by uhubctl (scripts/lab-demo.sh counts it).
        with args.map.with_suffix(".log").open("a") as log:
            log.write(f"{hub.location} port {args.ports} {op} {unit}\n")
        try:
            request(hub.control, op, id=unit)
        except SimulatorError as err:
            # Switching a port to the state it is in is no error for uhubctl.
            if "already plugged" not in str(err) and "not plugged" not in str(err):
                raise
    live = bool(request(hub.control, "status")["units"][unit])
    state = "0503 power highspeed enable connect" if live else "0000 off"
    print(f"Current status for hub {hub.location} [2109:2817 hwprov simulated hub]")
    print(f"  Port {args.ports}: {state} [{unit}]")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
