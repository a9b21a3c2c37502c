"""hwprov's labgrid drivers (lab/lgdrivers.py), each bound the labgrid way to its resource and
a CommandProtocol, with their shell scripts run for real by sh on a folder laid out like sysfs
and configfs: what the kernel does with the writes is the kernel bench's to show."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("labgrid", reason="the lab extra: pip install -e '.[lab]'")

import attr
from labgrid import Target
from labgrid.driver.commandmixin import CommandMixin
from labgrid.driver.common import Driver
from labgrid.protocol import CommandProtocol

from lab import lgdrivers


@attr.s(eq=False)
class LocalShell(CommandMixin, Driver, CommandProtocol):  # type: ignore[misc]
    """The place's CommandProtocol, here: sh on this machine, with every command kept."""

    ran: list[str] = attr.ib(factory=list)

    def _run(self, cmd: str, **_: Any) -> tuple[list[str], list[str], int]:
        self.ran.append(cmd)
        done = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30)
        return done.stdout.splitlines(), done.stderr.splitlines(), done.returncode

    def run(self, cmd: str, **kw: Any) -> tuple[list[str], list[str], int]:
        return self._run(cmd, **kw)

    def get_status(self) -> int:
        return 1


def target_with(*resources: Any) -> tuple[Target, LocalShell]:
    target = Target("bench")
    for make in resources:
        make(target)
    shell = LocalShell(target, "shell")
    target.activate(shell)
    return target, shell


def test_i2c_chip_is_instantiated_once_and_deleted(tmp_path: Path) -> None:
    bus = tmp_path / "bus/i2c/devices/i2c-1"
    bus.mkdir(parents=True)
    target, shell = target_with(
        lambda t: lgdrivers.HwprovI2CChip(
            t, "bmp280", bus="1", address=0x77, model="bmp280", sysfs=str(tmp_path)
        )
    )
    driver = lgdrivers.HwprovI2CDriver(target, "i2c-slot")
    target.activate(driver)
    driver.on()
    assert (bus / "new_device").read_text() == "bmp280 0x77\n"
    (tmp_path / "bus/i2c/devices/1-0077").mkdir()  # what the kernel makes of it
    (bus / "new_device").unlink()
    driver.on()  # there already: a second new_device would be EBUSY
    assert not (bus / "new_device").exists()
    driver.off()
    assert (bus / "delete_device").read_text() == "0x77\n"
    assert all("udevadm settle" in cmd for cmd in shell.ran)


def test_gpio_sim_bank_goes_live_and_away(tmp_path: Path) -> None:
    target, _ = target_with(
        lambda t: lgdrivers.HwprovGpioSimBank(
            t, "bank", chip="hil-bank", lines=4, configfs=str(tmp_path)
        )
    )
    driver = lgdrivers.HwprovGpioSimDriver(target, "gpio-sim")
    target.activate(driver)
    chip = tmp_path / "gpio-sim/hil-bank"
    driver.on()
    assert (chip / "bank0/num_lines").read_text() == "4\n"
    assert (chip / "live").read_text() == "1\n"
    (chip / "bank0/chip_name").write_text("gpiochip2\n")  # gpio-sim names it when live
    assert driver.node() == "/dev/gpiochip2"
    # configfs removes a group's attribute files with the group; a plain folder cannot
    for attribute in ("bank0/chip_name", "bank0/num_lines", "live"):
        (chip / attribute).unlink()
    driver.off()
    assert not chip.exists()
    (chip / "bank0").mkdir(parents=True)
    (chip / "bank0" / "stuck").write_text("")  # a group that will not go: the driver says so
    with pytest.raises(Exception, match="rmdir"):
        driver.off()


def test_rfkill_switch_found_by_name(tmp_path: Path) -> None:
    for index, name in ((0, "phy0"), (3, "hci1")):
        switch = tmp_path / f"class/rfkill/rfkill{index}"
        switch.mkdir(parents=True)
        (switch / "name").write_text(f"{name}\n")
    target, _ = target_with(
        lambda t: lgdrivers.HwprovRfkill(t, "bt", switch="hci1", sysfs=str(tmp_path))
    )
    driver = lgdrivers.HwprovRfkillDriver(target, "bt-dongle")
    target.activate(driver)
    driver.off()
    assert (tmp_path / "class/rfkill/rfkill3/soft").read_text() == "1\n"
    driver.on()
    assert (tmp_path / "class/rfkill/rfkill3/soft").read_text() == "0\n"
    assert not (tmp_path / "class/rfkill/rfkill0/soft").exists()


def test_rfkill_switch_missing_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "class/rfkill").mkdir(parents=True)
    target, _ = target_with(
        lambda t: lgdrivers.HwprovRfkill(t, "bt", switch="hci9", sysfs=str(tmp_path))
    )
    driver = lgdrivers.HwprovRfkillDriver(target, "bt-dongle")
    target.activate(driver)
    with pytest.raises(Exception, match="no rfkill switch hci9"):
        driver.on()


def test_vhci_holder_keeps_the_file_open_until_off(tmp_path: Path) -> None:
    device = tmp_path / "vhci"  # a FIFO stands in: its reader sees what the holder writes
    subprocess.run(["mkfifo", str(device)], check=True)
    reader = subprocess.Popen(["head", "-c", "2", str(device)], stdout=subprocess.PIPE)
    target, _ = target_with(
        lambda t: lgdrivers.HwprovVhci(
            t, "vhci", device=str(device), pidfile=str(tmp_path / "vhci.pid")
        )
    )
    driver = lgdrivers.HwprovVhciDriver(target, "bt-vhci")
    target.activate(driver)
    driver.on()
    out, _ = reader.communicate(timeout=10)
    assert out == b"\xff\x00"  # hci_vhci's "create a primary controller"
    pid = int((tmp_path / "vhci.pid").read_text())
    assert alive(pid)
    driver.off()
    assert not (tmp_path / "vhci.pid").exists()
    assert not alive(pid)


def alive(pid: int) -> bool:
    """Running, not a zombie: PID 1 here reaps orphans late."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_the_example_env_names_registered_classes_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from labgrid.config import Config
    from labgrid.factory import target_factory

    monkeypatch.setenv("LG_PLACE", "pi4-bench-1")
    example = Path(__file__).parents[1] / "hil/benches/rpi4-labgrid.yaml"
    config = Config(str(example))
    assert config.get_imports() == ["lab.lgdrivers"]
    main = config.get_targets()["main"]
    named = [next(iter(entry)) for entry in main["resources"] + main["drivers"]]
    unknown = [n for n in named if n not in target_factory.all_classes]
    assert not unknown, unknown
    assert main["resources"][0] == {"RemotePlace": {"name": "pi4-bench-1"}}
