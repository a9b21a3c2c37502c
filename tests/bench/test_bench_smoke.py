"""The benchmarks run end to end on tiny sizes and clean up after themselves.

No timing is asserted here (issue 7): the numbers come from `python -m bench` at full size.
What is asserted is that every figure is produced, that the correctness checks the figures
carry hold, and that nothing is left behind, also when the run is interrupted.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(900)

if os.geteuid() != 0 or not (shutil.which("dockerd") and shutil.which("umockdev-wrapper")):
    pytest.skip(
        "needs root, docker.io and umockdev (scripts/bootstrap.sh)", allow_module_level=True
    )


def lab_folders() -> set[Path]:
    return set(Path("/tmp").glob("hwprov-b.*"))


def bench(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.Popen(
        [sys.executable, "-m", "bench", *args], cwd=REPO, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs,  # type: ignore[call-overload]
    )  # fmt: skip


def test_every_figure_runs_on_tiny_sizes(tmp_path: Path) -> None:
    before = lab_folders()
    proc = bench("--smoke", "--out", str(tmp_path))
    output, _ = proc.communicate(timeout=840)
    assert proc.returncode == 0, output[-4000:]

    (path,) = tmp_path.glob("*.json")
    doc = json.loads(path.read_text())
    figures = {f["figure"]: f for f in doc["figures"]}
    assert sorted(figures) == [1, 2, 3, 4, 5, 6]
    for number, fig in figures.items():
        assert fig["error"] is None, (number, fig["error"])
        assert fig["rows"], f"figure {number} has no rows"
        # every ratio with a target is measured (a tiny storm may need no recreate at all)
        assert all(r["value"] is not None for r in fig["ratios"] if r["target"]), fig["ratios"]
        assert f"figure {number}:" in output
    # Sample counts follow the smoke sizes: 3 plugs per mode, 1 compose recreate, 3 live plugs.
    counts = {r["label"]: r["n"] for r in figures[1]["rows"]}
    assert counts["hwprov, from tty uevent (host)"] == 3
    assert counts["bare SDK recreate (bridge)"] == 3
    assert {r["label"]: r["n"] for r in figures[2]["rows"]}["compose force-recreate (host)"] == 1
    assert figures[5]["rows"][0]["n"] == 3
    # The figures' own correctness checks: the storm ends exactly right, the scale run
    # found every simulated port and planned every service.
    assert figures[3]["checks"] and all(figures[3]["checks"].values()), figures[3]["checks"]
    assert figures[4]["checks"] and all(figures[4]["checks"].values()), figures[4]["checks"]
    assert doc["machine"]["engine"] and doc["machine"]["compose"]
    assert lab_folders() == before, "the lab's folder was left in /tmp"


def test_an_interrupted_run_stops_everything_it_started(tmp_path: Path) -> None:
    before = lab_folders()
    proc = bench("--smoke", "--only", "6", "--idle-seconds", "60", "--out", str(tmp_path))
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "running idle footprint" in line:
            break
    time.sleep(3)  # hwprov run is up on its simulated board by now
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(seen) + rest
    assert "everything it started is stopped" in rest
    assert lab_folders() == before, "the lab's folder was left in /tmp"
    assert not list(tmp_path.glob("*.json")), "an interrupted run wrote results"
