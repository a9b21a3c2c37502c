"""The machine the numbers were taken on, as printed above the tables and kept in the JSON."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import docker
from hwprov import __version__


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _version(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else "?"


def _cgroup() -> str:
    if Path("/sys/fs/cgroup/devices").is_dir():
        return "v1 (devices controller)"
    return "v2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "?"


def machine_info(client: docker.DockerClient | None, compose_bin: Path | None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_mb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20,
        "kernel": platform.release(),
        "cgroup": _cgroup(),
        "python": platform.python_version(),
        "hwprov": __version__,
        "dockerd": _version(["dockerd", "--version"]),
        "umockdev": _version(["dpkg-query", "-W", "-f", "${Version}", "umockdev"]),
    }
    if client is not None:
        version = client.version()
        info["engine"] = (
            f"{version.get('Version')} (API {version.get('ApiVersion')}), "
            f"{client.info().get('Driver')}"
        )
    if compose_bin is not None:
        info["compose"] = _version([str(compose_bin), "version", "--short"])
    return info
