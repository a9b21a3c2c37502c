"""The simulated bench: a fixture board under `hwprov sim`, the private engine beside it.

The board runs a placeholder command; everything under test is started next to it in its
network namespace with its environment (the umockdev preload and folder), so it sees the
board's udev, sysfs, /dev and emulated I2C exactly as a child of `hwprov sim run` would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from hwprov.errors import SimulatorError
from hwprov.sim.board import Board, load_board
from hwprov.sim.control import request
from hwprov.sim.sensors import MODELS

from lab.bench import I2CSlot, SharedFiles, Unit

# Kinds by the subsystem of the unit's nodes, as the built-in plugins classify them.
KIND_OF_SUBSYSTEM = {"tty": "serial", "i2c-dev": "i2c", "gpio": "gpio", "bluetooth": "bluetooth"}
# Models to add at a free address, by address range (what the sensors library can emulate).
ADDABLE = ((0x77, "bmp280"), (0x76, "bmp280"), (0x18, "mcp9808"), (0x48, "ads1115"))


def unit_of(board: Board, unit: str) -> Unit:
    devices = board.unit_devices(unit)
    kinds = [KIND_OF_SUBSYSTEM[d.subsystem] for d in devices if d.subsystem in KIND_OF_SUBSYSTEM]
    if not kinds:
        raise SimulatorError(f"{board.board}: unit {unit} brings nothing hwprov classifies")
    nodes = tuple(f"/dev/{d.node}" for d in devices if d.node and d.subsystem in KIND_OF_SUBSYSTEM)
    return Unit(unit, kinds[0], nodes, devices[0].plugged)


def free_i2c_slot(board: Board) -> I2CSlot | None:
    """A free address on a bus with a model the simulator can add there, if any."""
    for bus in board.i2c:
        taken = {address for address, _ in bus.chips}
        # a model already on the bus would satisfy the scenario's service before the add
        present = {model for _, model in bus.chips}
        for address, model in ADDABLE:
            if address not in taken and model not in present and model in MODELS:
                return I2CSlot(bus.bus, address, model)
    return None


class SimBench(SharedFiles):
    def __init__(self, board: str, engine_url: str, workdir: Path) -> None:
        self.board = load_board(board)
        self.name = f"sim:{self.board.board}"
        self.engine_url = engine_url
        self.compose_argv: tuple[str, ...] = ()
        self.networked = True
        self.workdir = workdir
        self.control = workdir / "control.sock"
        self._proc: subprocess.Popen[bytes] | None = None
        self._env: dict[str, str] = {}
        self._pid = 0
        self._nodes = Path()

    def units(self) -> Mapping[str, Unit]:
        return {u: unit_of(self.board, u) for u in self.board.units}

    def i2c_slot(self) -> I2CSlot | None:
        return free_i2c_slot(self.board)

    def boot(self, all_attached: bool = False) -> None:
        board = self.board.source
        if all_attached:
            board = str(self._all_attached())
        self.control.unlink(missing_ok=True)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "hwprov", "sim", "run", "--board", board,
             "--control", str(self.control), "--",
             sys.executable, "-c", "import signal; signal.pause()"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                status = request(self.control, "status")
                break
            except SimulatorError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise SimulatorError(f"{self.name} did not boot") from None
                time.sleep(0.05)
        self._env = {str(k): str(v) for k, v in status["env"].items()}
        self._env["DOCKER_HOST"] = self.engine_url
        self._pid = int(status["pid"])
        self._nodes = Path(status["nodes"])

    def _all_attached(self) -> Path:
        doc: dict[str, Any] = yaml.safe_load(Path(self.board.source).read_text())
        for device in doc["devices"]:
            if device.get("id"):
                device["plugged"] = True
        path = self.workdir / f"{self.board.board}-all.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def shutdown(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
            self._proc.wait(timeout=30)
            self._proc = None

    def plug(self, unit: str) -> list[str]:
        nodes = request(self.control, "plug", id=unit)["nodes"]
        return [n for n in nodes if not n.startswith("/dev/bus/")]

    def unplug(self, unit: str) -> None:
        request(self.control, "unplug", id=unit)

    def i2c_add(self, slot: I2CSlot) -> None:
        request(self.control, "i2c-add", bus=slot.bus, address=hex(slot.address), model=slot.model)

    def i2c_remove(self, slot: I2CSlot) -> None:
        request(self.control, "i2c-remove", bus=slot.bus, address=hex(slot.address))

    def _argv(self, argv: Sequence[str]) -> list[str]:
        # The board's network namespace: its uevent sockets are sized for bursts there.
        return ["nsenter", f"--net=/proc/{self._pid}/ns/net", "--", *argv]

    def spawn(self, argv: Sequence[str], stderr: int | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self._argv(argv), env=self._env, stdout=subprocess.DEVNULL, stderr=stderr, text=True
        )

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._argv(argv), env=self._env, capture_output=True, text=True, timeout=120
        )

    def engine_numbers(self, node: str) -> str:
        entries = json.loads((self._nodes / "nodes.json").read_text())
        return str(entries[node]["host_dev"])
