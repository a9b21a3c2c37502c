"""A board whose uevents lie about their nodes (tests/sim/boards/hostile.yaml): DEVNAME out of
/dev, outside it, a udev link, another node's path with /dev/mem's numbers. hwprov maps none of
them, says so in the plan and in `hwprov run`, and the simulator still runs such a board."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import HWPROV, sim

BOARD = str(Path(__file__).parent / "boards" / "hostile.yaml")
LIARS = {
    "ttyS10": "'/dev/../../tmp/x/zero' is not a normalised path below /dev",
    "ttyS11": "'/tmp/x/zero' is not a normalised path below /dev",
    "ttyS12": "/dev/serial1 is a link to ",  # umockdev's testbed path follows
    "ttyS13": "udev said 1:1 but /dev/ttyS1 is 4:65",
}
COMPOSE = """services:
  logger:
    image: busybox
    labels:
      io.hwprov.device.port: "kind=serial"
"""


def test_sim_check_warns_that_the_board_is_not_realistic() -> None:
    done = subprocess.run([*HWPROV, "sim", "check", BOARD], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    assert [w.split(": ", 2)[1].rsplit("/", 1)[-1] for w in warnings] == sorted(LIARS)
    assert all(w.endswith("hwprov must refuse it (not a realistic board)") for w in warnings)


def test_only_the_honest_node_is_planned_and_each_lie_is_said(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    done = sim(*HWPROV, "plan", "--json", "-f", str(compose), board=BOARD)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["schema"] == "hwprov.plan/v1"
    [logger] = plan["services"]
    assert [(d["host"], d["major"], d["minor"]) for d in logger["devices"]] == [
        ("/dev/ttyS1", 4, 65)
    ]
    refused = {w.split(" ", 2)[1]: w for w in plan["warnings"] if "is never mapped" in w}
    assert sorted(refused) == sorted(LIARS)
    for name, why in LIARS.items():
        assert f"is never mapped: {why}" in refused[name]
