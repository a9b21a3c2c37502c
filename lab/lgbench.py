"""The HIL bench on a labgrid place (`pytest tests/hil --bench labgrid`): the same `Bench`
interface, with everything reached through the place's own drivers.

- commands (the agent, the compose CLI, `hwprov scan`) run on the device over the place's
  SSHDriver, with the device's engine in DOCKER_HOST; a spawned one is stopped by closing its
  session (lab/sshspawn.py);
- the engine the tests inspect is the device's, its unix socket forwarded to a local one over
  the SSHDriver's connection;
- scenario files are copied to the device and back (`put` / `get`);
- units are attached by the PowerProtocol driver named after them: labgrid's USBPowerDriver
  (uhubctl) for USB units, hwprov's own (lab/lgdrivers.py) for I2C chips, gpio-sim banks and
  Bluetooth; on a place whose device is a simulated board, USB units the same way (the lab
  host's hub ports power them, lab/simhub.py) and the rest by `hwprov sim` there.

What the env file holds is in docs/hil.md; lab/privatelab.py writes one for a simulated place.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hwprov.sim.board import load_board
from labgrid.exceptions import NoDriverFoundError
from labgrid.protocol import PowerProtocol

from lab import sshspawn
from lab.bench import I2CSlot, Unit
from lab.lgdrivers import (
    HwprovDevice,
    HwprovGpioSimDriver,
    HwprovI2CDriver,
    HwprovSimBoardDriver,
    HwprovUnit,
)
from lab.simbench import free_i2c_slot, unit_of

I2C_SLOT = "i2c-slot"  # the name of the HwprovI2CDriver that makes the "sensor appears" chip


def hex_numbers(stat: str) -> str:
    """`stat -c %t:%T` (hex) as MAJOR:MINOR."""
    major, _, minor = stat.strip().partition(":")
    return f"{int(major, 16)}:{int(minor, 16)}"


class LabgridBench:
    def __init__(self, target: Any, place: str, local_workdir: Path) -> None:
        self.target = target
        self.name = f"labgrid:{place}"
        self.ssh = target.get_driver("SSHDriver")
        found = [r for r in target.resources if isinstance(r, HwprovDevice)]
        self.device = found[0] if found else HwprovDevice(target, "device")
        self.sim: HwprovSimBoardDriver | None = self._optional(HwprovSimBoardDriver)
        self.compose_argv = tuple(shlex.split(self.device.compose))  # the device's, not ours
        self.networked = True
        # The scenario's folder on the device: its own, never this machine's path (the device
        # may be this machine, where a copy onto itself would empty the file).
        self.remote_dir = f"{self.device.workdir}/{local_workdir.name}"
        self._forward_spec = ""
        self._local: Path | None = None
        # labgrid's drivers are not thread-safe (their steps are one stack per process), and
        # a storm scenario plugs from threads: one driver call at a time.
        self._drivers = threading.Lock()
        self.engine_url = ""
        self._env: dict[str, str] = {}
        self._netns = ""
        self._nodes_json = ""
        if self.sim is not None:
            board = load_board(self.sim.sim.board)
            self._units = {u: unit_of(board, u) for u in board.units}
            self._slot = free_i2c_slot(board)
        else:
            self._units = {
                r.name: Unit(r.name, r.kind, r.nodes, r.at_boot)
                for r in target.resources
                if isinstance(r, HwprovUnit)
            }
            chip = self._optional(HwprovI2CDriver, I2C_SLOT)
            self._slot = chip and I2CSlot(chip.chip.bus, chip.chip.address, chip.chip.model)

    def _optional(self, cls: type, name: str | None = None) -> Any:
        try:
            return self.target.get_driver(cls, name=name)
        except NoDriverFoundError:
            return None

    # -- the place's session ------------------------------------------------------------------

    def open(self) -> None:
        """Forward the device's engine and make the scenario's folder there."""
        self._local = Path(tempfile.mkdtemp(prefix="hwprov-lg.", dir="/tmp"))
        local = self._local / "engine.sock"
        # To a local unix socket over the SSHDriver's own connection, as its
        # forward_unix_socket does to a TCP port: docker-py over TCP sometimes loses an exec's
        # output (read past the HTTP upgrade), over a unix socket it does not.
        self._forward_spec = f"-L{local}:{self.device.engine.removeprefix('unix://')}"
        self._mux("forward")
        self.engine_url = f"unix://{local}"
        self.ssh.run_check(f"mkdir -p {shlex.quote(self.remote_dir)}")

    def _mux(self, op: str) -> None:
        argv = ["ssh", *self.ssh.ssh_prefix, "-O", op, self._forward_spec,
                self.ssh.networkservice.address]  # fmt: skip
        subprocess.run(argv, check=op == "forward", capture_output=True, timeout=30)

    def close(self) -> None:
        try:
            self.ssh.run(f"rm -rf {shlex.quote(self.remote_dir)}")
        finally:
            if self._forward_spec:
                self._mux("cancel")
                self._forward_spec = ""
            if self._local is not None:
                shutil.rmtree(self._local, ignore_errors=True)
                self._local = None

    # -- the Bench interface ------------------------------------------------------------------

    def units(self) -> Mapping[str, Unit]:
        return self._units

    def i2c_slot(self) -> I2CSlot | None:
        return self._slot

    def boot(self, all_attached: bool = False) -> None:
        if self.sim is not None:
            status = self.sim.boot()
            self._env = {str(k): str(v) for k, v in status["env"].items()}
            self._netns = f"/proc/{int(status['pid'])}/ns/net"
            self._nodes_json = f"{status['nodes']}/nodes.json"
            # Attached before the agent starts is what it finds at boot (coldplug).
            for unit in self._units.values():
                if all_attached and not unit.at_boot:
                    self.plug(unit.id)
            return
        for unit in self._units.values():
            driver = self._power(unit.id)
            if driver is None:
                raise LookupError(f"{self.name}: no PowerProtocol driver named {unit.id}")
            if all_attached or unit.at_boot:
                driver.on()
            else:
                driver.off()
        chip = self._optional(HwprovI2CDriver, I2C_SLOT)
        if chip is not None:
            chip.off()  # a chip a scenario added is gone at boot

    def shutdown(self) -> None:
        if self.sim is not None:
            self.sim.shutdown()
        else:
            self.boot()

    def _power(self, unit: str) -> Any:
        """The unit's PowerProtocol driver (USBPowerDriver, hwprov's), or None."""
        return self._optional(PowerProtocol, unit)

    def plug(self, unit: str) -> list[str]:
        with self._drivers:
            return self._plug(unit)

    def _plug(self, unit: str) -> list[str]:
        driver = self._power(unit)
        if driver is None and self.sim is not None:  # no power switch: the board plugs it
            return [n for n in self.sim.plug(unit) if not n.startswith("/dev/bus/")]
        if driver is None:
            raise LookupError(f"{self.name}: no PowerProtocol driver named {unit} in the env")
        driver.on()
        if self.sim is not None:
            nodes = self.sim.status()["nodes_of"].get(unit, [])
            return [str(n) for n in nodes if not str(n).startswith("/dev/bus/")]
        if isinstance(driver, HwprovGpioSimDriver):
            return [driver.node()]  # gpio-sim numbers the chip when it goes live
        declared = self._units[unit].nodes
        script = " ".join(f"[ -e {shlex.quote(n)} ] && echo {shlex.quote(n)};" for n in declared)
        present = self.ssh.run(f"sh -c {shlex.quote(script + ' true')}")[0]
        return present or list(declared)

    def unplug(self, unit: str) -> None:
        with self._drivers:
            driver = self._power(unit)
            if driver is None and self.sim is not None:
                self.sim.unplug(unit)
            elif driver is None:
                raise LookupError(f"{self.name}: no PowerProtocol driver named {unit} in the env")
            else:
                driver.off()

    def i2c_add(self, slot: I2CSlot) -> None:
        if self.sim is not None:
            self.sim.i2c_add(slot.bus, slot.address, slot.model)
        else:
            self.target.get_driver(HwprovI2CDriver, name=I2C_SLOT).on()

    def i2c_remove(self, slot: I2CSlot) -> None:
        if self.sim is not None:
            self.sim.i2c_remove(slot.bus, slot.address)
        else:
            self.target.get_driver(HwprovI2CDriver, name=I2C_SLOT).off()

    def put(self, local: Path) -> str:
        remote = f"{self.remote_dir}/{local.name}"
        self.ssh.put(str(local), remote)
        return remote

    def get(self, remote: str, local: Path) -> None:
        self.ssh.get(remote, str(local))

    def command_line(self, argv: Sequence[str]) -> str:
        """`argv` as the device runs it: the device's PATH first, its engine, and on a
        simulated board the board's environment and network namespace."""
        env = {**self._env, "DOCKER_HOST": self.device.engine}
        if self.device.bin and "PATH" in env:  # the board's own PATH would hide the device's
            env["PATH"] = f"{self.device.bin}:{env['PATH']}"
        words = ["env", *(f"{k}={v}" for k, v in sorted(env.items()))]
        if self._netns:
            # The board's network namespace: its uevent sockets are sized for bursts there.
            words += ["nsenter", f"--net={self._netns}", "--"]
        line = shlex.join([*words, *argv])
        if self.device.bin:
            line = f"PATH={shlex.quote(self.device.bin)}:$PATH {line}"
        return line

    def ssh_argv(self, remote: str) -> list[str]:
        ns = self.ssh.networkservice
        user = self.ssh.username or ns.username
        return ["ssh", "-x", *self.ssh.ssh_prefix, "-p", str(ns.port), "-l", user, ns.address,
                remote]  # fmt: skip

    def spawn(self, argv: Sequence[str], stderr: int | None = None) -> subprocess.Popen[str]:
        remote = sshspawn.remote_argv(self.command_line(argv))
        return subprocess.Popen(
            [sys.executable, "-m", "lab.sshspawn", *self.ssh_argv(remote)],
            stdout=subprocess.DEVNULL, stderr=stderr, text=True,
            cwd=Path(__file__).resolve().parents[1],
        )  # fmt: skip

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.ssh_argv(self.command_line(argv)),
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    def engine_numbers(self, node: str) -> str:
        if self._nodes_json:
            # A simulated node stands for a real one: the engine maps the stand-in.
            text = "\n".join(self.ssh.run_check(f"cat {shlex.quote(self._nodes_json)}"))
            return str(json.loads(text)[node]["host_dev"])
        return hex_numbers(self.ssh.run_check(f"stat -L -c %t:%T {shlex.quote(node)}")[0])
