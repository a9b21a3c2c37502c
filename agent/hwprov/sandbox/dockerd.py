"""A private Docker engine for tests and the demo: Debian's dockerd, touching nothing else.

Own socket, data-root, exec-root and pidfile under one folder, its own network namespace
(docker0 and its iptables rules live and die there), stopped by its pid, never by name.
Pitfalls measured on this machine kind are in shared/notes/docker-engine.md; each one
handled here says so where it is handled.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import docker

from hwprov.errors import EngineError

BINARIES = {
    "dockerd": "docker.io",
    "containerd": "containerd (docker.io)",
    "runc": "runc (docker.io)",
    "ip": "iproute2",
    "nsenter": "util-linux",
}


def check_binaries() -> None:
    for binary, package in BINARIES.items():
        if shutil.which(binary) is None:
            raise EngineError(f"'{binary}' is not installed (Debian package {package})")


def alive(pid: int) -> bool:
    """Running and not a zombie: PID 1 here reaps orphans ~1.3 s late, and kill -0 succeeds
    on a zombie, so read the state field of /proc/PID/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class PrivateEngine:
    def __init__(self, root: Path, *, own_netns: bool = True, log_level: str = "warn") -> None:
        self.root = Path(root).resolve()
        # containerd refuses socket paths over 104 bytes, and its longest one is
        # <root>/exec/containerd/containerd-debug.sock; failing later only says "timeout".
        longest = len(str(self.root / "exec/containerd/containerd-debug.sock"))
        if longest > 104:
            raise EngineError(
                f"{self.root} is too long for the engine's unix sockets ({longest} > 104 "
                "bytes under it): use a shorter folder"
            )
        self.own_netns = own_netns
        self.log_level = log_level
        self.netns: str | None = None
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def base_url(self) -> str:
        return f"unix://{self.socket}"

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.base_url, version="auto", timeout=60)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.root / "dockerd.log").read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def _ping(self) -> bool:
        try:
            client = docker.APIClient(base_url=self.base_url, version="1.41", timeout=2)
        except docker.errors.DockerException:
            return False
        try:
            return bool(client.ping())
        except Exception:  # not up yet: any transport error means "not yet"
            return False
        finally:
            client.close()

    def _clear_stale_pidfiles(self) -> None:
        """No pidfile may name a process when a new dockerd starts on this root.

        dockerd trusts kill(pid, 0), which succeeds on a zombie too: a pidfile naming one makes
        it wait for that containerd and time out. After a kill -9 of dockerd, its containerd
        dies by its parent-death signal a moment later, or is still running when we get here
        (the flake in test_stop_leaves_nothing_and_restart_after_kill_9_is_fast); one still
        running on this root is killed and waited for, then every pidfile is removed.
        """
        for pidfile in (self.root / "dockerd.pid", self.root / "exec/containerd/containerd.pid"):
            pid = _read_pid(pidfile)
            if pid is None:
                continue
            if alive(pid) and self._holds_root(pid):
                os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 5
                while alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.02)
            pidfile.unlink(missing_ok=True)

    def _holds_root(self, pid: int) -> bool:
        """The process runs on this engine's folder (a reused pid would not)."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        root = str(self.root).encode()
        return any(arg == root or arg.startswith(root + b"/") for arg in cmdline)

    def start(self, timeout: float = 30) -> None:
        running = _read_pid(self.root / "dockerd.pid")
        if running is not None and alive(running) and self._ping():
            self.pid = running
            return
        check_binaries()
        for sub in ("data", "exec"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._clear_stale_pidfiles()
        command = [
            "dockerd", "--host", self.base_url, "--data-root", str(self.root / "data"),
            "--exec-root", str(self.root / "exec"), "--pidfile", str(self.root / "dockerd.pid"),
            "--storage-driver", "overlay2", "--iptables=false", "--ip-masq=false",
            "--ip-forward=false", "--userland-proxy=false", "--log-level", self.log_level,
        ]  # fmt: skip
        if self.own_netns and self.netns is None:
            # Never --bridge=none: dockerd then deletes any docker0 in its namespace.
            self.netns = f"hwprov-{secrets.token_hex(4)}"
            subprocess.run(["ip", "netns", "add", self.netns], check=True, capture_output=True)
            # Written down, so a later process (`hwprov engine stop`) can delete it.
            (self.root / "netns").write_text(self.netns)
            subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True)
        if self.netns:
            # nsenter --net only: `ip netns exec` would remount /sys and hide the cgroups.
            command = ["nsenter", f"--net=/run/netns/{self.netns}", "--", *command]
        with open(self.root / "dockerd.log", "ab") as log:
            # A new session, no stdin, no inherited fds: an inherited lock fd once hung a
            # second run for ever.
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True, close_fds=True,
            )  # fmt: skip
        self._proc, self.pid = proc, proc.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ping():
                return
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        tail = self.log_tail()
        self.stop()
        raise EngineError(f"dockerd did not come up under {self.root}:\n{tail}")

    def stop(self, grace: float = 15, keep_containers: bool = False) -> None:
        """Stop dockerd; `keep_containers` stops it as a reboot would, containers kept."""
        pid = self.pid or _read_pid(self.root / "dockerd.pid")
        if pid is not None and alive(pid):
            # Without live-restore dockerd stops every container on shutdown, and a PID 1
            # that ignores SIGTERM holds it for 10 s: remove them first.
            if self._ping() and not keep_containers:
                api = docker.APIClient(base_url=self.base_url, version="1.41", timeout=30)
                try:
                    for c in api.containers(all=True):
                        api.remove_container(c["Id"], force=True)
                finally:
                    api.close()
            containerd = _read_pid(self.root / "exec/containerd/containerd.pid")
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
            for child in (pid, containerd):
                while child is not None and alive(child) and time.monotonic() < deadline + 5:
                    time.sleep(0.05)
        if self._proc is not None:
            self._proc.wait(timeout=5)  # reap our own child; it is a zombie until then
            self._proc = None
        self.pid = None
        self._unmount_leftovers()
        if self.netns is None and (self.root / "netns").is_file():
            self.netns = (self.root / "netns").read_text().strip()
        if self.netns:
            subprocess.run(["ip", "netns", "delete", self.netns], capture_output=True)
            (self.root / "netns").unlink(missing_ok=True)
            self.netns = None

    def _unmount_leftovers(self) -> None:
        # dockerd sometimes leaves nsfs mounted on exec/netns/default (rm then fails, EBUSY).
        try:
            mounts = Path("/proc/self/mounts").read_text().splitlines()
        except OSError:
            return
        targets = [line.split()[1] for line in mounts if len(line.split()) > 1]
        for target in sorted(targets, key=len, reverse=True):
            decoded = target.replace("\\040", " ")
            if decoded.startswith(str(self.root) + "/"):
                subprocess.run(["umount", "-l", decoded], capture_output=True)

    def __enter__(self) -> PrivateEngine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
