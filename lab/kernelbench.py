"""The kernel bench: Debian's own kernel under QEMU (virtme-ng), a device the tests do not run on.

The board is a q35 machine booted with the host's root filesystem read-only over 9p, real
systemd-udevd, real dockerd, and the kernel's test drivers standing in for the hardware
(hw-fixtures/benches/kernel-q35.yaml says which). It is driven by the real bench's own code
(lab/realbench.py) through a `GuestRunner`: the same configfs, sysfs and udevadm actions a lab
host would do, done inside the guest over a forwarded port (lab/guestrpc.py).

One guest per cgroup mode per test session: booting costs about 35 s under TCG (KVM does not
work on these machines: ../shared/notes/kernel-bench/REPORT.md), a test about 10.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from hwprov.errors import HwprovError

from lab import guestrpc, guestruntime
from lab.kernelguest import COMPOSE, ENGINE_PORT
from lab.realbench import BenchConfig, RealBench, parse_config

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "hw-fixtures" / "benches" / "kernel-q35.yaml"
AGENT_PORT = 7000
MODULE_CACHE = ROOT / ".kbench"  # scripts/kernel-bench-setup.sh builds the module here
BOOT_TIMEOUT_S = 300.0
# virtme-ng-init mounts the v1 hierarchies instead of cgroup2 when asked like systemd is.
CGROUP_ARGS = {"v2": [], "v1": ["--append", "SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1"]}


class KernelBenchError(HwprovError):
    """The kernel bench cannot run here, or its guest failed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kernel_version() -> str:
    """What scripts/kernel-bench-setup.sh prepared: a Debian kernel with its gpio-sim module."""
    for folder in sorted(MODULE_CACHE.glob("*"), reverse=True):
        kernel = Path(f"/boot/vmlinuz-{folder.name}")
        if (folder / "gpio-sim-oot.ko").is_file() and kernel.is_file():
            return folder.name
    raise KernelBenchError("no prepared kernel: run scripts/kernel-bench-setup.sh")


def missing() -> str | None:
    """Why the kernel bench cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    vng = Path(sys.executable).with_name("vng")
    if not vng.exists() or shutil.which("qemu-system-x86_64") is None:
        return "needs virtme-ng and qemu-system-x86 (scripts/kernel-bench-setup.sh)"
    try:
        kernel_version()
    except KernelBenchError as err:
        return str(err)
    return None


class Guest:
    """One booted guest: started by `boot`, powered off by `stop`."""

    def __init__(self, cgroup: str) -> None:
        self.cgroup = cgroup
        self.kernel = kernel_version()
        # The folder guest and host share read-write (9p): the scenarios' compose files and
        # the agent's log live here, at the same path on both sides.
        self.share = Path(tempfile.mkdtemp(prefix="hwprov-kbench.", dir="/tmp"))
        self.agent_port = free_port()
        self.engine_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = guestrpc.Client(self.agent_port)
        self.boot_s = 0.0
        self.runtime = self.share / "hwprov-runtime.tar"

    @property
    def engine_url(self) -> str:
        return f"tcp://127.0.0.1:{self.engine_port}"

    def command(self) -> list[str]:
        module = MODULE_CACHE / self.kernel / "gpio-sim-oot.ko"
        net = (
            f"-netdev user,id=hwprov,hostfwd=tcp:127.0.0.1:{self.agent_port}-:{AGENT_PORT},"
            f"hostfwd=tcp:127.0.0.1:{self.engine_port}-:{ENGINE_PORT} "
            "-device virtio-net-pci,netdev=hwprov"
        )
        return [
            str(Path(sys.executable).with_name("vng")), "--run", f"/boot/vmlinuz-{self.kernel}",
            "--disable-kvm", "--cpus", "2", "--memory", "2G",
            # Debian's kernel enables AppArmor, and without apparmor_parser dockerd's first
            # container fails to load the docker-default profile.
            "--append", "apparmor=0", *CGROUP_ARGS[self.cgroup],
            "--rwdir", str(self.share), "--cwd", str(ROOT), f"--qemu-opts={net}",
            "--exec", f"{sys.executable} -m lab.kernelguest {AGENT_PORT} {module} {self.runtime}",
        ]  # fmt: skip

    def boot(self) -> None:
        start = time.monotonic()
        guestruntime.build(self.runtime)
        out = (self.share / "guest.out").open("wb")
        err = (self.share / "guest.err").open("wb")  # vng's two ports clobber one file
        # vng runs virtme-run, its sibling in the venv, by name.
        path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        self.proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=ROOT,
            env={**os.environ, "PATH": path}, start_new_session=True,
        )  # fmt: skip
        out.close()
        err.close()
        while not self.client.ping():
            if self.proc.poll() is not None or time.monotonic() - start > BOOT_TIMEOUT_S:
                log = self.log_tail()
                self.stop()
                raise KernelBenchError(f"the {self.cgroup} guest did not come up:\n{log}")
            time.sleep(0.5)
        self.boot_s = time.monotonic() - start

    def log_tail(self, lines: int = 40) -> str:
        text = ""
        for name in ("guest.err", "guest.out"):
            path = self.share / name
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                with contextlib.suppress(OSError, guestrpc.GuestError):
                    self.client.call("stop", timeout=10)
                try:
                    self.proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=30)
            self.proc = None
        shutil.rmtree(self.share, ignore_errors=True)


class KeptGuest(Guest):
    """A guest booted by `python -m lab.kernelbench up` and left running, for iterating on
    scenarios without a boot each time (`pytest tests/hil --bench kernel --kernel-guest F`)."""

    def __init__(self, state: Path) -> None:
        doc = json.loads(state.read_text())
        self.cgroup = str(doc["cgroup"])
        self.kernel = str(doc["kernel"])
        self.share = Path(doc["share"])
        self.agent_port = int(doc["agent_port"])
        self.engine_port = int(doc["engine_port"])
        self.proc = None
        self.client = guestrpc.Client(self.agent_port)
        self.boot_s = 0.0

    def boot(self) -> None:
        """Check it answers, and give it the checkout's hwprov as it is now."""
        if not self.client.ping():
            raise KernelBenchError(f"the kept {self.cgroup} guest does not answer")
        runtime = guestruntime.build(self.share / "hwprov-runtime.tar")
        done = self.client.call("run", argv=["tar", "-C", guestruntime.PREFIX, "-xf", str(runtime)])
        if done["rc"] != 0:
            raise KernelBenchError(f"cannot update the kept guest's hwprov: {done['stderr']}")

    def stop(self) -> None:
        pass  # its owner stops it


def keep(cgroup: str, state: Path) -> int:
    """Boot a guest and keep it until interrupted; its ports go to `state`."""
    guest = Guest(cgroup)
    guest.boot()
    state.write_text(json.dumps({
        "cgroup": cgroup, "kernel": guest.kernel, "share": str(guest.share),
        "agent_port": guest.agent_port, "engine_port": guest.engine_port,
    }))  # fmt: skip
    print(f"guest up in {guest.boot_s:.1f} s: {state}", flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        guest.stop()
        state.unlink(missing_ok=True)
    return 0


class GuestRunner:
    """lab.realbench.Runner, inside the guest."""

    def __init__(self, guest: Guest) -> None:
        self.guest = guest
        self.client = guest.client

    def run(self, argv: Sequence[str]) -> None:
        done = self.capture(argv, {})
        if done.returncode != 0:
            raise HwprovError(f"{' '.join(argv)} failed in the guest: {done.stderr.strip()}")

    def write(self, path: Path, text: str) -> None:
        self.client.call("write", path=str(path), text=text)

    def mkdir(self, path: Path) -> None:
        self.client.call("mkdir", path=str(path))

    def rmdir(self, path: Path) -> None:
        self.client.call("rmdir", path=str(path))

    def symlink(self, path: Path, target: Path) -> None:
        self.client.call("symlink", path=str(path), target=str(target))

    def read(self, path: Path) -> str:
        return str(self.client.call("read", path=str(path))["text"])

    def exists(self, path: Path) -> bool:
        return bool(self.client.call("exists", path=str(path))["exists"])

    def hold(self, path: Path, first: bytes) -> None:
        self.client.call("hold", path=str(path), hex=first.hex())

    def release(self, path: Path) -> None:
        self.client.call("release", path=str(path))

    def nodes_under(self, root: Path, subsystems: tuple[str, ...], wait_s: float) -> list[str]:
        answer = self.client.call(
            "nodes_under", path=str(root), subsystems=list(subsystems), wait_s=wait_s
        )
        return [str(n) for n in answer["nodes"]]

    def rdev(self, node: str) -> str:
        return str(self.client.call("rdev", path=node)["rdev"])

    def capture(
        self, argv: Sequence[str], env: Mapping[str, str]
    ) -> subprocess.CompletedProcess[str]:
        answer: dict[str, Any] = self.client.call("run", argv=list(argv), env=dict(env))
        return subprocess.CompletedProcess(
            list(argv), int(answer["rc"]), str(answer["stdout"]), str(answer["stderr"])
        )

    def spawn(
        self, argv: Sequence[str], env: Mapping[str, str], stderr: int | None
    ) -> subprocess.Popen[str]:
        relay = [sys.executable, "-m", "lab.guestrpc", str(self.guest.agent_port), "--", *argv]
        env_json = json.dumps(dict(env))
        return subprocess.Popen(
            relay, cwd=ROOT, env={**os.environ, "HWPROV_GUEST_ENV": env_json},
            stdout=subprocess.DEVNULL, stderr=stderr, text=True,
        )  # fmt: skip


def bench_config(guest: Guest) -> BenchConfig:
    config = parse_config(CONFIG.read_text(), str(CONFIG))
    return replace(
        config,
        bench=f"{config.bench} (cgroup {guest.cgroup})",
        engine=guest.engine_url,
        device_engine="unix:///var/run/docker.sock",
    )


class KernelBench(RealBench):
    """The real bench's code on the guest's kernel."""

    def __init__(self, guest: Guest) -> None:
        super().__init__(bench_config(guest), GuestRunner(guest))
        self.name = f"kernel:{guest.cgroup}"
        self.guest = guest
        self.compose_argv = (str(COMPOSE),)
        # No bridge network for the services: each start on one costs 2.5 s more under TCG.
        self.networked = False


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "up":
        sys.exit("usage: python -m lab.kernelbench up v2|v1 STATE.json")
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(keep(sys.argv[2], Path(sys.argv[3])))
