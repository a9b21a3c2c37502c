"""`hwprov run` on a simulated Pi 4 and the private engine, watched as an operator watches it:
`hwprov status --json` (a separate process reading the agent's status file) and the real
Prometheus endpoint scraped over HTTP, through a plug, a clean stop and a kill.

The endpoint is on a unix socket: the simulator runs hwprov in a network namespace of its
own, where no localhost port is reachable from here (tests/unit/test_metrics.py scrapes one
on a TCP port)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from conftest import SimDaemon, devices, wait_for
from hwprov.containers import livegrant
from hwprov.sandbox.demo import COMPOSE, PROJECT, up
from prometheus_client.parser import text_string_to_metric_families

ENV, GPS = f"{PROJECT}-env-sensor-1", f"{PROJECT}-gps-1"


def status(file: Path) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "hwprov", "status", "--json", "--status-file", str(file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, json.loads(done.stdout)


def standing(doc: dict[str, Any]) -> dict[str, str]:
    return {s["service"]: s["standing"] for s in doc.get("services", ())}


def status_when(file: Path, ok: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first status document `ok` accepts (the agent renews it at every wake)."""
    found: list[dict[str, Any]] = []

    def check() -> bool:
        found[:] = [status(file)[1]]
        return ok(found[0])

    assert wait_for(check), found
    return found[0]


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def scrape(where: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample the endpoint at `where` (`unix:PATH`, as the status file says) serves,
    parsed by prometheus_client's own parser."""
    conn = UnixHTTP(where.removeprefix("unix:"))
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        assert response.status == 200, response.reason
        text = response.read().decode()
    finally:
        conn.close()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def one(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str):
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
def demo(
    sim_daemon, docker_client: docker.DockerClient, busybox_image: str, tmp_path: Path
) -> Iterator[Callable[..., tuple[SimDaemon, Path]]]:
    """The demo project and `hwprov run` on the simulated Pi, with a status file and metrics;
    containers removed after."""

    def start(*args: str) -> tuple[SimDaemon, Path]:
        compose = tmp_path / "docker-compose.yml"
        compose.write_text(COMPOSE)
        up(docker_client, compose)
        file = tmp_path / "run" / "status.json"
        metrics = f"unix:{tmp_path / 'run' / 'metrics.sock'}"
        options = ("--status-file", str(file), "--metrics-listen", metrics)
        return sim_daemon(compose, "rpi4b", "-p", PROJECT, *options, *args), file

    yield start
    for c in docker_client.api.containers(all=True):
        docker_client.api.remove_container(c["Id"], force=True)


@pytest.mark.timeout(120)
def test_status_and_metrics_follow_a_plug_then_a_clean_stop(
    demo, docker_client: docker.DockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HWPROV_LOG_LEVEL", "info")  # inherited by hwprov run
    daemon, file = demo()
    assert wait_for(lambda: devices(docker_client, ENV) == ["/dev/i2c-1"]), daemon.tail()
    doc = status_when(file, lambda d: standing(d) == {"env-sensor": "granted", "gps": "waiting"})
    assert doc["schema"] == "hwprov.status/v1" and doc["health"] == "up"
    assert doc["pid"] == daemon.hwprov_pid() and doc["project"] == PROJECT
    assert "/dev/i2c-1" in [h["node"] for h in doc["hardware"]]
    gps = next(s for s in doc["services"] if s["service"] == "gps")
    [what] = gps["missing"]  # the planner's name for the unmet match, with the label's values
    assert "io.hwprov.device.gps" in what and "vendor=0403" in what
    assert gps["reason"].startswith(f"missing {what}: ")

    daemon.sim("plug", id="ftdi")
    assert wait_for(lambda: devices(docker_client, GPS) == ["/dev/gps"]), daemon.tail()
    doc = status_when(file, lambda d: standing(d).get("gps") == "granted")
    gps = next(s for s in doc["services"] if s["service"] == "gps")
    assert gps["action"] == "recreated" and gps["containers"] == [GPS] and gps["hardware"]
    assert gps["missing"] == [] and doc["last_pass"] >= doc["started"]

    samples = scrape(doc["metrics"])
    assert one(samples, "hwprov_decisions_total", outcome="recreated") >= 2  # env, then gps
    assert one(samples, "hwprov_decisions_total", outcome="rolled-back") == 0
    assert one(samples, "hwprov_uevents_received_total") >= 1  # the adapter's
    assert one(samples, "hwprov_plug_to_ready_seconds_count", grant="recreate") >= 1
    assert one(samples, "hwprov_resyncs_total") == 0
    assert one(samples, "hwprov_engine_errors_total", error="engine-down") == 0
    assert one(samples, "process_resident_memory_bytes") > 0
    # the info record of the recreate, shown because of HWPROV_LOG_LEVEL=info
    infos = [e for e in daemon.events() if e["event"] == "log" and e["level"] == "info"]
    assert any(e["message"].startswith(f"recreated {GPS} ") for e in infos), infos

    assert daemon.stop() == 0
    assert not Path(doc["metrics"].removeprefix("unix:")).exists()  # its socket went with it
    code, doc = status(file)
    assert code == 1 and doc["health"] == "down" and "no status file" in doc["reason"]


@pytest.mark.timeout(120)
@pytest.mark.skipif(not livegrant.CGROUP_ROOT.is_dir(), reason="needs cgroup v1 devices")
def test_live_grants_are_timed_and_a_killed_agent_is_down(
    demo, docker_client: docker.DockerClient
) -> None:
    daemon, file = demo("--grant", "live")
    doc = status_when(file, lambda d: standing(d).get("env-sensor") == "granted")
    daemon.sim("plug", id="ftdi")
    doc = status_when(file, lambda d: standing(d).get("gps") == "granted")
    gps = next(s for s in doc["services"] if s["service"] == "gps")
    assert gps["action"] == "granted" and gps["reason"].startswith("live, no restart")
    assert docker_client.api.inspect_container(GPS)["RestartCount"] == 0

    samples = scrape(doc["metrics"])
    assert one(samples, "hwprov_decisions_total", outcome="granted") >= 2  # env, then gps
    assert one(samples, "hwprov_live_grant_seconds_count") >= 2
    assert one(samples, "hwprov_live_grant_seconds_sum") > 0
    assert one(samples, "hwprov_plug_to_ready_seconds_count", grant="live") >= 1
    assert one(samples, "hwprov_plug_to_ready_seconds_count", grant="recreate") == 0

    # Killed: no clean stop, so its last status stays, and the reader sees the pid is gone.
    pid = daemon.hwprov_pid()
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: status(file)[0] == 1)
    code, doc = status(file)
    assert code == 1 and doc["health"] == "down"
    assert doc["reason"] == f"hwprov run (pid {pid}) is not running"
    assert standing(doc) == {"env-sensor": "granted", "gps": "granted"}  # its last words
