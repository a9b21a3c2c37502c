"""`hwprov demo`: the whole flow on the embedded default board, with real parts.

A private Docker engine, a simulated Raspberry Pi 4, a small compose project whose
containers are created without hardware, then `hwprov apply` gives the I2C service its bus,
an FTDI adapter is plugged in, and `hwprov apply` gives the GPS service /dev/gps.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from hwprov.compose.loader import load_project
from hwprov.containers.labels import COMPOSE_PROJECT, COMPOSE_SERVICE
from hwprov.sandbox.dockerd import PrivateEngine
from hwprov.sandbox.images import BUSYBOX_TAG, ensure_busybox
from hwprov.sim.runner import require_simulator

PROJECT = "demo"
COMPOSE = f"""\
services:
  env-sensor:
    image: {BUSYBOX_TAG}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    restart: always
    labels:
      io.hwprov.device.env: "kind=i2c, sensor=bme280"
  gps:
    image: {BUSYBOX_TAG}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    restart: always
    labels:
      io.hwprov.device.gps: "kind=serial, vendor=0403, model=6001, path=/dev/gps"
"""


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def up(client: object, compose_file: Path) -> None:
    """Create the project's containers with the labels docker compose gives them."""
    project = load_project(compose_file)
    for s in project.services:
        labels = {**s.labels, COMPOSE_PROJECT: PROJECT, COMPOSE_SERVICE: s.name}
        container = client.containers.create(  # type: ignore[attr-defined]
            s.image,
            s.command,
            name=f"{PROJECT}-{s.name}-1",
            labels=labels,
            restart_policy={"Name": s.restart or "no"},
            init=True,
        )
        container.start()
        print(f"   created {container.name} (no devices, not privileged)")


def run() -> int:
    require_simulator()  # before the engine starts: the board runs last
    with tempfile.TemporaryDirectory(prefix="hwprov-demo.") as tmp:
        root = Path(tmp)
        say("starting a private Docker engine (own socket, data-root and network namespace)")
        with PrivateEngine(root / "engine") as engine:
            client = engine.client()
            try:
                ensure_busybox(client)
                compose = root / "project" / "docker-compose.yml"
                compose.parent.mkdir()
                compose.write_text(COMPOSE)
                say(f"compose project {compose}:")
                print(textwrap.indent(COMPOSE, "   "))
                say("bringing the project up, the way docker compose labels containers")
                up(client, compose)
                script = f"""
                    set -e
                    echo; echo "== on the simulated Raspberry Pi 4: hwprov scan"; hwprov scan
                    echo; echo "== hwprov plan"; hwprov plan -f {compose} -p {PROJECT} || true
                    echo; echo "== hwprov apply"; hwprov apply -f {compose} -p {PROJECT} || true
                    echo; echo "== plugging an FTDI USB serial adapter (0403:6001)"
                    hwprov sim plug ftdi >/dev/null
                    echo; echo "== hwprov apply"; hwprov apply -f {compose} -p {PROJECT}
                """
                env = {**os.environ, "DOCKER_HOST": engine.base_url}
                env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
                code = subprocess.call(
                    [
                        sys.executable,
                        "-m",
                        "hwprov",
                        "sim",
                        "run",
                        "--board",
                        "rpi4b",
                        "--",
                        "sh",
                        "-c",
                        textwrap.dedent(script),
                    ],
                    env=env,
                )
                say("inside the containers now")
                for name, path in (("env-sensor", "/dev/i2c-1"), ("gps", "/dev/gps")):
                    c = client.containers.get(f"{PROJECT}-{name}-1")
                    out = c.exec_run(["ls", "-l", path]).output.decode().strip()
                    privileged = c.attrs["HostConfig"]["Privileged"]
                    print(f"   {c.name}: {out}  (privileged: {privileged})")
                print(
                    "\n   The nodes carry the simulated board's numbers (89:1 for i2c-1, 188:0 for"
                )
                print("   ttyUSB0); this machine has no drivers for them, so they open with ENXIO.")
                return code
            finally:
                client.close()
