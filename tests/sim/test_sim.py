"""`hwprov sim` on the Raspberry Pi 4B fixture: I2C at the ioctl level, hotplug, real nodes."""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import stat
import time
from pathlib import Path
from typing import Any

from conftest import sim
from hwprov.plugins.i2cprobe import crc8_sensirion

SYS_TGKILL = 234  # x86-64; the simulator runs on the CI machine kind only

I2C = """
import errno, smbus2
bus = smbus2.SMBus(1)
print(hex(bus.read_byte_data(0x76, 0xD0)))
try:
    bus.read_byte_data(0x77, 0xD0)
except OSError as e:
    print(errno.errorcode[e.errno])
w, r = smbus2.i2c_msg.write(0x44, [0xF3, 0x2D]), smbus2.i2c_msg.read(0x44, 3)
bus.i2c_rdwr(w, r)
print(bytes(r).hex())
"""


def test_bme280_chip_id_and_absent_address_through_smbus2() -> None:
    out = sim("python3", "-c", I2C)
    assert out.returncode == 0, out.stderr
    chip_id, absent, status = out.stdout.split()
    assert chip_id == "0x60"  # BME280's 0xD0
    assert absent == "EREMOTEIO"  # what i2c-bcm2835 says for a NACK
    raw = bytes.fromhex(status)  # SHT3x status 0x8010 after reset, then its Sensirion CRC-8
    assert raw[:2] == b"\x80\x10" and raw[2] == crc8_sensirion(raw[:2])


def test_scan_json_on_the_pi() -> None:
    out = sim("hwprov", "scan", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["schema"] == "hwprov.scan/v1"
    hw = {h["name"]: h for h in doc["hardware"]}
    assert sorted(hw) == [
        "gpiochip0",
        "gpiochip1",
        "gpiomem",
        "hci0",
        "i2c-1",
        "mem",
        "ttyAMA0",
        "ttyS0",
    ]
    assert {(p["address"], p["model"]) for p in hw["i2c-1"]["probed"]} == {
        ("0x44", "sht3x"),
        ("0x76", "bme280"),
    }
    assert hw["mem"]["explicit_only"] and hw["hci0"]["kind"] == "bluetooth"
    assert not [n for n in hw if n.startswith("tty") and n[3:].isdigit()]  # no console ttys


WATCH = """
import pyudev, sys
mon = pyudev.Monitor.from_netlink(pyudev.Context(), source="udev")
mon.filter_by(subsystem="tty")
mon.start()
print("ready")
for _ in range(6):
    d = mon.poll(timeout=20)
    print(d.action, d.device_node, d.properties.get("ID_VENDOR_ID", "-"))
"""


def test_hotplug_reaches_a_pyudev_monitor_and_replug_works(running_sim, tmp_path: Path) -> None:
    s = running_sim(WATCH)
    assert s.line() == "ready"
    status = json.loads(s.ctl("status").stdout)
    assert status["schema"] == "hwprov.sim/v1" and status["units"]["ftdi"] is False
    nodes = Path(status["nodes"])
    for _ in range(3):
        assert s.ctl("plug", "ftdi").returncode == 0
        assert s.line() == "add /dev/ttyUSB0 0403"
        real = nodes / "ttyUSB0"
        assert stat.S_ISCHR(real.stat().st_mode)
        assert (os.major(real.stat().st_rdev), os.minor(real.stat().st_rdev)) == (188, 0)
        assert s.ctl("unplug", "ftdi").returncode == 0
        assert s.line() == "remove /dev/ttyUSB0 0403"
        assert not real.exists()
    assert s.proc.wait(timeout=20) == 0


def test_real_nodes_never_alias_host_devices() -> None:
    out = sim("sh", "-c", 'cat "$HWPROV_SIM_NODES/nodes.json"')
    entries = json.loads(out.stdout)
    assert entries["/dev/i2c-1"]["host_dev"] == "89:1"
    host_majors = {
        int(line.split()[0])
        for line in Path("/proc/devices").read_text().split("Block")[0].splitlines()
        if line.strip()[:1].isdigit()
    }
    for node, entry in entries.items():
        major = int(entry["host_dev"].split(":")[0])
        assert major not in host_majors, f"{node} would alias a host device"
    assert entries["/dev/mem"]["host_dev"] != "1:1" and entries["/dev/mem"]["remapped"] == "yes"


def test_kernel_only_drops_udev_database_properties(running_sim) -> None:
    script = WATCH.replace("range(6)", "range(1)")
    s = running_sim(script, extra=("--kernel-only",))
    assert s.line() == "ready"
    s.ctl("plug", "ftdi")
    assert s.line() == "add /dev/ttyUSB0 -"


def test_a_sensor_appears_on_a_mapped_bus() -> None:
    code = (
        "import smbus2, subprocess;"
        "subprocess.run(['hwprov', 'sim', 'i2c-add', '1', '0x77', 'bmp280'], check=True,"
        " capture_output=True);"
        "print(hex(smbus2.SMBus(1).read_byte_data(0x77, 0xD0)))"
    )
    out = sim("python3", "-c", code)
    assert out.stdout.strip() == "0x58", out.stderr


def test_broken_board_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "board: b\nname: B\nprovenance: p\ndevices:\n  - path: /devices/x\n"
        "    subsystem: i2c-dev\n    node: i2c-1\n    dev: '89'\n"
    )
    out = sim("true", board=str(bad))
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"hwprov: error: {bad}: devices[0]: 'dev' must be MAJOR:MINOR, got '89'"
    )


def test_exit_code_of_the_command_is_the_sims() -> None:
    assert sim("sh", "-c", "exit 7").returncode == 7


def test_replug_while_the_first_number_is_held_re_enumerates(tmp_path: Path) -> None:
    script = (
        "(hwprov sim plug cp2102 && hwprov sim plug ftdi) >/dev/null && "
        f"hwprov scan --json --no-probe > {tmp_path}/a.json && "
        "(hwprov sim unplug cp2102 && hwprov sim unplug ftdi && hwprov sim plug ftdi) >/dev/null"
        f" && hwprov scan --json --no-probe > {tmp_path}/b.json && "
        "cat $HWPROV_SIM_NODES/nodes.json"
    )
    out = sim("sh", "-c", script, board="x86-gateway")
    assert out.returncode == 0, out.stderr
    ids = {}
    for name in ("a", "b"):
        hardware = json.loads((tmp_path / f"{name}.json").read_text())["hardware"]
        ids[name] = {h["name"]: (h["id"], h["details"].get("by_id")) for h in hardware}
    # The FTDI came second, so the kernel gave it ttyUSB1; alone again, it is ttyUSB0. Its
    # identity and by-id name are the same both times: that is what hwprov matches on.
    assert ids["a"]["ttyUSB1"] == ids["b"]["ttyUSB0"]
    assert ids["a"]["ttyUSB0"] != ids["a"]["ttyUSB1"]
    assert "ttyUSB1" not in ids["b"]
    nodes = json.loads(out.stdout)
    assert nodes["/dev/ttyUSB0"]["board_dev"] == "188:0" and "/dev/ttyUSB1" not in nodes


def test_a_chip_added_on_a_known_bus_is_probed_again(running_sim) -> None:
    s = running_sim("import os; os.execvp('hwprov', ['hwprov', 'watch', '--json'])")
    assert s.proc.stderr is not None
    assert s.proc.stderr.readline().strip() == "# watching"
    assert s.ctl("i2c-add", "1", "0x77", "bmp280").returncode == 0
    change = json.loads(s.line())
    assert change["schema"] == "hwprov.watch/v1"
    assert change["action"] == "change" and change["hardware"]["name"] == "i2c-1"
    models = {p["address"]: p["model"] for p in change["hardware"]["probed"]}
    assert models == {"0x44": "sht3x", "0x76": "bme280", "0x77": "bmp280"}
    assert s.ctl("i2c-remove", "1", "0x77").returncode == 0
    gone = json.loads(s.line())
    assert "0x77" not in {p["address"] for p in gone["hardware"]["probed"]}


def _tgkill(pid: int, tid: int, sig: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(SYS_TGKILL, pid, tid, sig) != 0:
        raise OSError(ctypes.get_errno(), "tgkill")


def _sigterm_unblocked(pid: int, tid: int) -> bool:
    status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
    [mask] = re.findall(r"^SigBlk:\s*(\w+)", status, re.M)
    return not int(mask, 16) >> (signal.SIGTERM - 1) & 1


def test_sigterm_that_lands_on_a_helper_thread_of_the_simulator_still_stops_the_command(
    running_sim: Any,
) -> None:
    # The kernel may hand a process-wide SIGTERM to any thread that does not block it: under
    # umockdev before 0.18.4 the main thread can be left blocking it (threads.take_signals),
    # and then a thread of umockdev's or the control server gets it while the main thread waits
    # for the command. The command must get it all the same, at once, not at its own exit.
    s = running_sim("import time; print('up'); time.sleep(60)")
    assert s.line() == "up"
    inner = next(
        int(p) for p in os.listdir("/proc")
        if p.isdigit() and _parent(int(p)) == s.proc.pid
    )  # fmt: skip
    helpers = [int(t) for t in os.listdir(f"/proc/{inner}/task") if int(t) != inner]
    helper = next(t for t in helpers if _sigterm_unblocked(inner, t))
    started = time.monotonic()
    _tgkill(inner, helper, signal.SIGTERM)
    s.proc.stdout.close()
    assert s.proc.wait(timeout=20) == 128 + signal.SIGTERM  # the command's end, as a shell says
    assert time.monotonic() - started < 5


def _parent(pid: int) -> int | None:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat_line.rpartition(")")[2].split()[1])
