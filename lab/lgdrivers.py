"""hwprov's own labgrid resources and drivers: what a HIL bench attaches that labgrid has no
driver for. A lab's env file names them like any other resource once it imports this module
(`imports: [lab.lgdrivers]`, or the file's path); docs/hil.md shows one.

Each attach driver is a labgrid `PowerProtocol` (on = attached, off = detached) bound to one
resource that says what to attach and to the place's `CommandProtocol` (its SSHDriver): every
action is a shell command on the device, the same sysfs and configfs writes
lab/realbench.py makes on a board it runs on. USB units need nothing of hwprov's: labgrid's
`USBPowerDriver` switches a `USBPowerPort` with uhubctl.

- `HwprovI2CChip` + `HwprovI2CDriver`: a wired chip instantiated with `new_device`, removed
  with `delete_device`;
- `HwprovGpioSimBank` + `HwprovGpioSimDriver`: a gpio-sim chip made live in configfs;
- `HwprovRfkill` + `HwprovRfkillDriver`: a Bluetooth adapter soft-blocked and unblocked;
- `HwprovVhci` + `HwprovVhciDriver`: a virtual Bluetooth controller (hci_vhci) that lives while
  a process on the device holds /dev/vhci open;
- `HwprovUnit`: what the HIL suite knows of a unit (its kind and nodes); the attach driver of
  the same name attaches it;
- `HwprovSimBoard` + `HwprovSimBoardDriver`: a simulated board (`hwprov sim`) on the device,
  for a place without hardware (the README's test command runs the suite on one).
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory
from labgrid.protocol import CommandProtocol, PowerProtocol
from labgrid.resource.common import Resource
from labgrid.step import step

KINDS = ("serial", "i2c", "gpio", "bluetooth")


def _number(value: Any) -> int:
    """YAML gives 0x77 as an int, "0x77" as a string: both mean the same address."""
    return value if isinstance(value, int) else int(str(value), 0)


def _nodes(value: Any) -> tuple[str, ...]:
    return tuple(str(n) for n in value or ())


@target_factory.reg_resource
@attr.s(eq=False)
class HwprovUnit(Resource):
    """A unit of the bench: `name` is the unit's id, and the PowerProtocol driver of the same
    name attaches it."""

    kind: str = attr.ib(validator=attr.validators.in_(KINDS))
    nodes: tuple[str, ...] = attr.ib(default=(), converter=_nodes)
    at_boot: bool = attr.ib(default=False, converter=bool)


@target_factory.reg_resource
@attr.s(eq=False)
class HwprovDevice(Resource):
    """How commands on the device find hwprov and its engine."""

    bin: str = attr.ib(default="")  # put first on PATH (hwprov, python3); empty: as it is
    engine: str = attr.ib(default="unix:///var/run/docker.sock")
    workdir: str = attr.ib(default="/tmp/hwprov-hil")  # where scenario files are copied
    image: str = attr.ib(default="")  # on the engine already, with sh and stat; empty: busybox
    compose: str = attr.ib(default="docker compose")  # the compose v2 CLI on the device


def run_check(command: CommandProtocol, script: str) -> list[str]:
    """Run a shell script on the device; its stdout lines, or labgrid's ExecutionError."""
    lines: list[str] = command.run_check(f"sh -c {shlex.quote(script)}")
    return lines


@target_factory.reg_resource
@attr.s(eq=False)
class HwprovI2CChip(Resource):
    bus: int = attr.ib(converter=_number)
    address: int = attr.ib(converter=_number)
    model: str = attr.ib(validator=attr.validators.instance_of(str))
    sysfs: str = attr.ib(default="/sys")  # another root only to try the commands out


def i2c_script(chip: HwprovI2CChip, on: bool) -> str:
    bus = f"{chip.sysfs}/bus/i2c/devices/i2c-{chip.bus}"
    client = f"{chip.sysfs}/bus/i2c/devices/{chip.bus}-{chip.address:04x}"
    address = f"0x{chip.address:02x}"
    if on:  # instantiated twice is EBUSY: only when it is not there
        return f"[ -e {client} ] || echo '{chip.model} {address}' > {bus}/new_device"
    return f"[ ! -e {client} ] || echo {address} > {bus}/delete_device"


class _AttachDriver(Driver, PowerProtocol):
    """on/off as one shell script each on the device, then udev settled: hwprov reacts to
    udev's events, and the bench reads the nodes right after."""

    command: CommandProtocol

    def script(self, on: bool) -> str:
        raise NotImplementedError

    def _switch(self, on: bool) -> None:
        # The action's own exit code decides; settle is best effort (no udevd in a container).
        run_check(self.command, f"({self.script(on)}) && (udevadm settle --timeout=10 || true)")

    @Driver.check_active
    @step()
    def on(self) -> None:
        self._switch(True)

    @Driver.check_active
    @step()
    def off(self) -> None:
        self._switch(False)

    @Driver.check_active
    def cycle(self) -> None:
        self.off()
        self.on()


@target_factory.reg_driver
@attr.s(eq=False)
class HwprovI2CDriver(_AttachDriver):
    bindings = {"chip": "HwprovI2CChip", "command": CommandProtocol}  # noqa: RUF012

    def script(self, on: bool) -> str:
        return i2c_script(self.chip, on)


@target_factory.reg_resource
@attr.s(eq=False)
class HwprovGpioSimBank(Resource):
    chip: str = attr.ib(validator=attr.validators.instance_of(str))  # the configfs folder
    lines: int = attr.ib(default=8, converter=_number)
    configfs: str = attr.ib(default="/sys/kernel/config")


def gpio_sim_script(bank: HwprovGpioSimBank, on: bool) -> str:
    d = shlex.quote(f"{bank.configfs}/gpio-sim/{bank.chip}")
    live = f'[ "$(cat {d}/live 2>/dev/null)" = 1 ]'
    if on:
        return (
            f"{live} || {{ mkdir -p {d}/bank0 && echo {bank.lines} > {d}/bank0/num_lines"
            f" && echo 1 > {d}/live; }}"
        )
    return f"[ ! -d {d} ] || {{ ! {live} || echo 0 > {d}/live; rmdir {d}/bank0 {d}; }}"


@target_factory.reg_driver
@attr.s(eq=False)
class HwprovGpioSimDriver(_AttachDriver):
    bindings = {"bank": "HwprovGpioSimBank", "command": CommandProtocol}  # noqa: RUF012

    def script(self, on: bool) -> str:
        return gpio_sim_script(self.bank, on)

    @Driver.check_active
    def node(self) -> str:
        """The chip's /dev node: gpio-sim numbers it when it goes live."""
        d = f"{self.bank.configfs}/gpio-sim/{self.bank.chip}"
        return "/dev/" + run_check(self.command, f"cat {shlex.quote(d)}/bank0/chip_name")[0]


@target_factory.reg_resource
@attr.s(eq=False)
class HwprovRfkill(Resource):
    switch: str = attr.ib(validator=attr.validators.instance_of(str))  # its name, e.g. hci1
    sysfs: str = attr.ib(default="/sys")


def rfkill_script(rfkill: HwprovRfkill, on: bool) -> str:
    # sysfs's soft-block file rather than the rfkill tool: one less package on the device
    return (
        f"for r in {rfkill.sysfs}/class/rfkill/rfkill*; do "
        f'[ "$(cat $r/name)" = {shlex.quote(rfkill.switch)} ] && echo {0 if on else 1} > $r/soft'
        f" && exit 0; done; echo 'no rfkill switch {rfkill.switch}' >&2; exit 1"
    )


@target_factory.reg_driver
@attr.s(eq=False)
class HwprovRfkillDriver(_AttachDriver):
    bindings = {"rfkill": "HwprovRfkill", "command": CommandProtocol}  # noqa: RUF012

    def script(self, on: bool) -> str:
        return rfkill_script(self.rfkill, on)


@target_factory.reg_resource
@attr.s(eq=False)
class HwprovVhci(Resource):
    device: str = attr.ib(default="/dev/vhci")
    pidfile: str = attr.ib(default="/run/hwprov-vhci.pid")


def vhci_script(vhci: HwprovVhci, on: bool) -> str:
    pid = shlex.quote(vhci.pidfile)
    if on:
        # A shell keeps the fd: 0xff 0x00 asks hci_vhci for a primary controller, which lives
        # as long as the fd is open, so the holder outlives this SSH session.
        hold = f"exec 3<>{shlex.quote(vhci.device)}; printf '\\377\\000' >&3; exec sleep infinity"
        return (
            f"[ -s {pid} ] && kill -0 $(cat {pid}) 2>/dev/null || {{ setsid sh -c "
            f"{shlex.quote(hold)} </dev/null >/dev/null 2>&1 & echo $! > {pid}; sleep 0.5; }}"
        )
    return f"[ ! -s {pid} ] || {{ kill $(cat {pid}) 2>/dev/null; rm -f {pid}; sleep 0.5; }}"


@target_factory.reg_driver
@attr.s(eq=False)
class HwprovVhciDriver(_AttachDriver):
    bindings = {"vhci": "HwprovVhci", "command": CommandProtocol}  # noqa: RUF012

    def script(self, on: bool) -> str:
        return vhci_script(self.vhci, on)


@target_factory.reg_resource
@attr.s(eq=False)
class HwprovSimBoard(Resource):
    """A fixture board (hwprov's hw-fixtures) simulated on the device by `hwprov sim run`."""

    board: str = attr.ib(validator=attr.validators.instance_of(str))
    control: str = attr.ib(default="/tmp/hwprov-sim.sock")  # its control socket on the device


@target_factory.reg_driver
@attr.s(eq=False)
class HwprovSimBoardDriver(Driver):
    """Boots the simulated board on the device and plugs its units, by `hwprov sim` there."""

    bindings = {"sim": "HwprovSimBoard", "command": CommandProtocol}  # noqa: RUF012
    hwprov: str = attr.ib(default="hwprov")  # the device's hwprov

    def _sim(self, *args: str) -> list[str]:
        argv = [self.hwprov, "sim", *args, "--control", self.sim.control]
        return run_check(self.command, shlex.join(argv))

    @Driver.check_active
    @step()
    def boot(self) -> dict[str, Any]:
        """Start the board (the previous one stopped first); its status once it answers."""
        self.shutdown()
        ctl = shlex.quote(self.sim.control)
        inner = shlex.join([self.hwprov, "sim", "run", "--board", self.sim.board,
                            "--control", self.sim.control, "--", "sleep", "infinity"])  # fmt: skip
        status = shlex.join([self.hwprov, "sim", "status", "--control", self.sim.control])
        run_check(
            self.command,
            f"rm -f {ctl}; setsid {inner} </dev/null >{ctl}.log 2>&1 & echo $! > {ctl}.pid; "
            f"i=0; until {status} >/dev/null 2>&1; do i=$((i+1)); "
            f"[ $i -lt 300 ] || {{ cat {ctl}.log >&2; exit 1; }}; sleep 0.1; done",
        )
        return self.status()

    @Driver.check_active
    def status(self) -> dict[str, Any]:
        """The sim's status, with `env`: what its command runs with (`hwprov sim status`
        leaves that out), read from the command's /proc entry."""
        status: dict[str, Any] = json.loads("\n".join(self._sim("status")))
        pid = int(status["pid"])
        lines = run_check(
            self.command,
            f"for c in $(cat /proc/{pid}/task/{pid}/children); do "
            f"tr '\\0' '\\n' < /proc/$c/environ; done",
        )
        status["env"] = dict(line.split("=", 1) for line in lines if "=" in line)
        return status

    @Driver.check_active
    @step()
    def shutdown(self) -> None:
        pid = shlex.quote(f"{self.sim.control}.pid")
        run_check(
            self.command,
            f"[ -s {pid} ] || exit 0; p=$(cat {pid}); kill $p 2>/dev/null; "
            f"while kill -0 $p 2>/dev/null; do sleep 0.05; done; rm -f {pid}",
        )

    @Driver.check_active
    @step(args=["unit"])
    def plug(self, unit: str) -> list[str]:
        nodes = json.loads("\n".join(self._sim("plug", unit)))["nodes"]
        return [str(n) for n in nodes]

    @Driver.check_active
    @step(args=["unit"])
    def unplug(self, unit: str) -> None:
        self._sim("unplug", unit)

    @Driver.check_active
    def i2c_add(self, bus: int, address: int, model: str) -> None:
        self._sim("i2c-add", str(bus), hex(address), model)

    @Driver.check_active
    def i2c_remove(self, bus: int, address: int) -> None:
        self._sim("i2c-remove", str(bus), hex(address))
