"""A labgrid lab on 127.0.0.1 whose places are simulated boards on this machine, for the
README's test command and the lab-job demo (docs/hil.md).

    python -m lab.privatelab [--places N] [--board B] -- COMMAND ...

starts, in a private folder:

- an sshd of its own (Debian's binary, its own config, host key and authorized key, on a free
  high port of 127.0.0.1): the places' devices are this machine, reached as a lab reaches a
  board. Nothing under /etc/ssh or ~/.ssh is read or written: clients get the key and the
  options on their command line (labgrid's SSHDriver runs ssh with `-F none`);
- per place, the device's engine (a private dockerd) and a simulated board's control socket;
- per place, a switchable USB hub on the lab host whose ports power the board's USB units
  (lab/simhub.py): the exporter runs under umockdev-run, which shows it the hubs in udev, and
  the lab host's `uhubctl` switches the simulated board's units;
- a labgrid coordinator and one exporter (`lab-host-1`) publishing each place's
  NetworkService and one USBPowerPort per USB unit. labgrid reaches the exporter's host (for
  uhubctl) with `ssh lab-host-1`: an `ssh` first on the command's PATH adds the lab's own
  config (`-F`), which says where that is, with which key and host key;
- the places, `hwprov-1` ... `hwprov-N`, tagged `bench=hwprov board=B`;

then runs COMMAND with LG_COORDINATOR and HWPROV_LAB_ENV (the env file, hwprov-lab.yaml)
set, and stops everything it started, also when COMMAND fails or the lab is interrupted.
Its exit code is COMMAND's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from hwprov.sandbox.dockerd import PrivateEngine
from hwprov.sim.board import Board, load_board

from lab.composecli import compose_binary
from lab.simhub import Hub, describe, port_of, save

ROOT = Path(__file__).resolve().parents[1]
SSHD = Path("/usr/sbin/sshd")
EXPORTER_HOST = "lab-host-1"  # the exporter's name, and its host's in the lab's ssh config
READY_S = 30.0


class LabError(RuntimeError):
    """The private lab could not start."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + READY_S
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        if proc.poll() is not None or time.monotonic() > deadline:
            raise LabError(f"{what} did not come up:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)


@dataclass(frozen=True, slots=True)
class Place:
    name: str
    exported: str  # the exporter's group of its resources
    folder: Path  # its device's engine and simulated board live here


def sshd_config(folder: Path, port: int) -> str:
    return "\n".join([
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {folder}/host_key",
        f"AuthorizedKeysFile {folder}/authorized_keys",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",  # the folder is a temp dir, not a home with its modes checked
        "PidFile none",
        "AllowTcpForwarding yes",
        "AllowStreamLocalForwarding yes",  # the device's engine socket, forwarded
        "Subsystem sftp internal-sftp",
        "",
    ])  # fmt: skip


def usb_units(board: Board) -> dict[str, int]:
    """The board's USB units, by the hub port each hangs on."""
    ports: dict[str, int] = {}
    for unit in board.units:
        top = board.unit_devices(unit)[0]
        if top.subsystem == "usb":
            ports[unit] = port_of(top.path, len(ports) + 1)
    return ports


def ssh_config(folder: Path, port: int) -> str:
    """Only for labgrid's connection to the exporter's host (its SSHDriver says -F none)."""
    return "\n".join([
        f"Host {EXPORTER_HOST}",
        "  HostName 127.0.0.1",
        f"  Port {port}",
        "  User root",
        f"  IdentityFile {folder}/client_key",
        "  IdentitiesOnly yes",
        f"  HostKeyAlias {EXPORTER_HOST}",
        f"  UserKnownHostsFile {folder}/known_hosts",
        "  StrictHostKeyChecking yes",
        "",
    ])  # fmt: skip


def env_file(folder: Path, key: Path, board: str, usb: dict[str, int]) -> dict[str, object]:
    """The env file of a place of this lab: the place from $LG_PLACE (the lab-job script sets
    it to the place its reservation got), its device's folder from the same name; a
    USBPowerDriver per USB unit, bound to the place's USBPowerPort of that unit."""
    place = f"{folder}/places/$LG_PLACE"
    venv = Path(sys.executable).parent
    power = [{"USBPowerDriver": {"name": unit, "bindings": {"hub": f"{unit}-port"}}}
             for unit in usb]  # fmt: skip
    return {
        # By module name: the bench imports the same module, and a class registers once.
        "imports": ["lab.lgdrivers"],
        "tools": {"uhubctl": str(folder / "bin" / "uhubctl")},
        "targets": {
            "main": {
                "resources": [
                    {"RemotePlace": {"name": "!template:$LG_PLACE"}},
                    {
                        "HwprovDevice": {
                            "bin": str(venv),
                            "engine": f"!template:unix://{place}/engine/docker.sock",
                            "workdir": f"!template:{place}/hil",
                            "compose": str(compose_binary() or "docker compose"),
                        }
                    },
                    {"HwprovSimBoard": {"board": board, "control": f"!template:{place}/sim.sock"}},
                ],
                "drivers": [
                    {"SSHDriver": {"keyfile": str(key)}},
                    {"HwprovSimBoardDriver": {"hwprov": str(venv / "hwprov")}},
                    *power,
                ],
            }
        },
    }


def dump_env(doc: dict[str, object]) -> str:
    """YAML with labgrid's `!template` tag where a value asks for one."""
    text = yaml.safe_dump(doc, sort_keys=False, width=1000)
    return text.replace("'!template:", "!template '")


class PrivateLab:
    def __init__(self, folder: Path, places: int, board: str) -> None:
        self.folder = folder
        self.board = board
        self.usb = usb_units(load_board(board))
        self.places = [
            Place(f"hwprov-{i}", f"hwprov-bench-{i}", folder / "places" / f"hwprov-{i}")
            for i in range(1, places + 1)
        ]
        self.coordinator = f"127.0.0.1:{free_port()}"
        self.ssh_port = free_port()
        self.env = folder / "hwprov-lab.yaml"
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._engines: list[PrivateEngine] = []

    def _start(self, what: str, argv: Sequence[str], **kw: object) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{what}.log").open("wb")
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, **kw,  # type: ignore[call-overload]
        )  # fmt: skip
        log.close()
        self._procs.append((what, proc))
        return proc

    def client(self, *args: str, place: str | None = None) -> str:
        argv = [str(Path(sys.executable).with_name("labgrid-client")), "-x", self.coordinator]
        if place:
            argv += ["-p", place]
        done = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise LabError(f"labgrid-client {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def start(self) -> None:
        if not SSHD.exists():
            raise LabError(f"no {SSHD}: apt-get install openssh-server (scripts/bootstrap.sh)")
        ssh = self.folder / "ssh"
        ssh.mkdir(parents=True)
        for key in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh / key)],
                           check=True)  # fmt: skip
        shutil.copy(ssh / "client_key.pub", ssh / "authorized_keys")
        host_key = (ssh / "host_key.pub").read_text().split()
        (ssh / "known_hosts").write_text(f"{EXPORTER_HOST} {host_key[0]} {host_key[1]}\n")
        (ssh / "sshd_config").write_text(sshd_config(ssh, self.ssh_port))
        (ssh / "ssh_config").write_text(ssh_config(ssh, self.ssh_port))
        self._tools(ssh)
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation folder
        sshd = self._start("sshd", [str(SSHD), "-D", "-e", "-f", str(ssh / "sshd_config")])
        wait_for_port(self.ssh_port, sshd, "sshd", self.folder / "sshd.log")
        for place in self.places:
            place.folder.mkdir(parents=True)
            engine = PrivateEngine(place.folder / "engine")
            engine.start()
            self._engines.append(engine)
        bin_ = Path(sys.executable).parent
        port = self.coordinator.rpartition(":")[2]
        coordinator = self._start(
            "coordinator", [str(bin_ / "labgrid-coordinator"), "-l", self.coordinator],
            cwd=self.folder,
        )  # fmt: skip
        log = self.folder / "coordinator.log"
        wait_for_port(int(port), coordinator, "labgrid-coordinator", log)
        hubs = [
            Hub(i, str(p.folder / "sim.sock"), {port: unit for unit, port in self.usb.items()})
            for i, p in enumerate(self.places, start=1)
        ]
        save(self.folder / "hubs.json", hubs)
        (self.folder / "hubs.umockdev").write_text(describe(hubs))
        exported: dict[str, dict[str, object]] = {}
        for place, hub in zip(self.places, hubs, strict=True):
            group: dict[str, object] = {
                "NetworkService": {"address": "127.0.0.1", "port": self.ssh_port,
                                   "username": "root"},
            }  # fmt: skip
            for unit, index in self.usb.items():
                group[f"{unit}-port"] = {"cls": "USBPowerPort", "index": index,
                                         "match": {"ID_PATH": hub.id_path}}  # fmt: skip
            exported[place.exported] = group
        (self.folder / "exporter.yaml").write_text(yaml.safe_dump(exported))
        self._start(
            "exporter",
            ["umockdev-run", "-d", str(self.folder / "hubs.umockdev"), "--",
             str(bin_ / "labgrid-exporter"), "-c", self.coordinator, "-n", EXPORTER_HOST,
             "--hostname", EXPORTER_HOST, str(self.folder / "exporter.yaml")],
        )  # fmt: skip
        self._wait_for_resources()
        for place in self.places:
            self.client("create", place=place.name)
            self.client("add-match", f"{EXPORTER_HOST}/{place.exported}/*", place=place.name)
            self.client("set-tags", "bench=hwprov", f"board={self.board}", place=place.name)
        doc = env_file(self.folder, ssh / "client_key", self.board, self.usb)
        self.env.write_text(dump_env(doc))

    def _tools(self, ssh: Path) -> None:
        """`ssh` with the lab's config, for labgrid's connections to the exporter's host, and
        the lab host's `uhubctl` (lab/simhub.py)."""
        bin_ = self.folder / "bin"
        bin_.mkdir()
        scripts = {
            "ssh": f'#!/bin/sh\nexec /usr/bin/ssh -F {ssh}/ssh_config "$@"\n',
            "uhubctl": f"#!/bin/sh\ncd {ROOT} && exec {sys.executable} -m lab.simhub "
            f'{self.folder}/hubs.json "$@"\n',
        }
        for name, text in scripts.items():
            (bin_ / name).write_text(text)
            (bin_ / name).chmod(0o755)

    def _wait_for_resources(self) -> None:
        deadline = time.monotonic() + READY_S
        want = {p.exported for p in self.places}
        while True:
            listed = self.client("resources")
            if all(f"/{group}/" in listed for group in want):
                return
            if time.monotonic() > deadline:
                log = (self.folder / "exporter.log").read_text(errors="replace")[-2000:]
                raise LabError(f"the exporter's resources did not appear:\n{log}")
            time.sleep(0.2)

    def stop(self) -> None:
        for what, proc in reversed(self._procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    print(f"privatelab: {what} did not stop: killed", file=sys.stderr)
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=5)
        self._procs.clear()
        for engine in self._engines:
            engine.stop()
        self._engines.clear()


@contextlib.contextmanager
def running(places: int, board: str) -> Iterator[PrivateLab]:
    # Short: the engines' containerd sockets must fit in 104 bytes.
    folder = Path(tempfile.mkdtemp(prefix="hwprov-lab.", dir="/tmp"))
    lab = PrivateLab(folder, places, board)
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.privatelab", description=__doc__)
    parser.add_argument("--places", type=int, default=1)
    parser.add_argument("--board", default="rpi4b", help="the simulated board of every place")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command: python -m lab.privatelab -- COMMAND ...")
    # SIGTERM as SIGINT: either way the command is stopped and the lab comes down.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    start = time.monotonic()
    with running(args.places, args.board) as lab:
        print(f"privatelab: up in {time.monotonic() - start:.1f} s", flush=True)
        env = {
            **os.environ,
            "LG_COORDINATOR": lab.coordinator,
            "HWPROV_LAB_ENV": str(lab.env),
            "PATH": f"{lab.folder / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        }
        print(f"privatelab: {len(lab.places)} place(s) on {lab.coordinator}", flush=True)
        child = subprocess.Popen(command, env=env)
        try:
            code = child.wait()
        except KeyboardInterrupt:
            child.send_signal(signal.SIGINT)
            child.wait()
            code = 130
    print(f"privatelab: {time.monotonic() - start:.1f} s from start to stopped", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
