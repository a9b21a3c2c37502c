"""The Prometheus metrics: what the daemon's report counts, and the endpoint serving them on
a TCP port and on a unix socket, scraped over real HTTP."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from hwprov.containers.outcome import Outcome, OutcomeAction
from hwprov.daemon.config import ConfigError, resolve
from hwprov.daemon.listen import Listen, parse_listen
from hwprov.daemon.metrics import Metrics
from hwprov.daemon.metricsserver import MetricsError, MetricsServer
from hwprov.daemon.report import Report
from hwprov.errors import EngineUnreachable
from hwprov.planning.plan import Plan, ServicePlan
from hwprov.records import Action, UdevDevice, UdevEvent, UntrustedUevent

PLAN = Plan("compose.yml", (ServicePlan("gps"), ServicePlan("env")))


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_every_outcome_and_engine_error_is_a_series_from_the_start() -> None:
    m = Metrics()
    assert value(m, "hwprov_decisions_total", outcome="rolled-back") == 0.0
    assert value(m, "hwprov_engine_errors_total", error="engine-down") == 0.0
    assert value(m, "hwprov_plug_to_ready_seconds_count", grant="live") == 0.0


def test_the_report_counts_decisions_latencies_uevents_resyncs_and_engine_errors() -> None:
    m = Metrics()
    report = Report(metrics=m)
    device = UdevDevice("/sys/devices/x/ttyUSB0", "tty", "ttyUSB0")
    report.received(
        [
            UdevEvent(Action.ADD, device, 5),
            UdevEvent(Action.ADD, device, 6),
            UntrustedUevent("s", "r"),
        ]
    )
    outcomes = [
        Outcome("gps", "p-gps-1", OutcomeAction.RECREATED),
        Outcome("env", "p-env-1", OutcomeAction.GRANTED, grant_ns=3_000_000),
        Outcome("env", "p-env-2", OutcomeAction.UNCHANGED),
    ]
    report.passed(PLAN, PLAN, outcomes, {}, since_ns=1_000_000_000, ended_ns=1_750_000_000)
    report.passed(PLAN, PLAN, outcomes[2:], {})  # no burst behind it: no plug-to-ready
    report.resynced()
    report.engine_broke("engine-down", EngineUnreachable("no engine at x"))
    assert value(m, "hwprov_uevents_received_total") == 2.0
    assert value(m, "hwprov_uevents_refused_total") == 1.0
    assert value(m, "hwprov_decisions_total", outcome="recreated") == 1.0
    assert value(m, "hwprov_decisions_total", outcome="unchanged") == 2.0
    assert value(m, "hwprov_plug_to_ready_seconds_count", grant="recreate") == 1.0
    assert value(m, "hwprov_plug_to_ready_seconds_sum", grant="recreate") == 0.75
    assert value(m, "hwprov_plug_to_ready_seconds_sum", grant="live") == 0.75
    assert value(m, "hwprov_plug_to_ready_seconds_bucket", grant="live", le="0.5") == 0.0
    assert value(m, "hwprov_plug_to_ready_seconds_bucket", grant="live", le="1.0") == 1.0
    assert value(m, "hwprov_live_grant_seconds_sum") == 0.003
    assert value(m, "hwprov_resyncs_total") == 1.0
    assert value(m, "hwprov_engine_errors_total", error="engine-down") == 1.0
    assert report.state([]).engine_error == "no engine at x"
    report.passed(PLAN, PLAN, [], {})
    assert report.state([]).engine_error is None  # the engine answered again


@pytest.mark.parametrize(
    ("text", "listen"),
    [
        ("9108", Listen("127.0.0.1", 9108)),
        ("127.0.0.1:0", Listen("127.0.0.1", 0)),
        ("127.0.0.1:9108", Listen("127.0.0.1", 9108)),
        ("[::1]:9108", Listen("::1", 9108)),
        ("unix:/run/hwprov/metrics.sock", Listen(path=Path("/run/hwprov/metrics.sock"))),
        ("/run/m.sock", Listen(path=Path("/run/m.sock"))),
    ],
)
def test_where_to_listen(text: str, listen: Listen) -> None:
    assert parse_listen(text) == listen
    assert parse_listen(str(listen)) == listen


@pytest.mark.parametrize("text", ["localhost", "x:99999", "unix:run/m.sock", ":"])
def test_a_bad_address_is_refused_with_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected unix:PATH|absolute path"):
        parse_listen(text)


def test_the_setting_comes_from_the_environment_and_is_checked() -> None:
    assert resolve(None, {}, {"HWPROV_METRICS_LISTEN": "9108"}).metrics_listen == "127.0.0.1:9108"
    assert resolve(None, {}, {}).metrics_listen is None
    with pytest.raises(ConfigError, match="command line: metrics_listen: expected unix:PATH"):
        resolve(None, {"metrics_listen": "here"}, {})


def test_an_agent_without_metrics_never_loads_the_client_library() -> None:
    # 1.5 MB of RSS and 50 ms of start-up on a device that did not ask for them
    code = (
        "import sys; from hwprov.commands.main import main; "
        "main(['run', '-f', '/nonexistent/docker-compose.yml']); "
        "print(sorted(m for m in sys.modules if m.startswith('prometheus')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr
    assert '"event": "error"' in done.stderr  # it got as far as running, and said why it stopped


def _counted() -> Metrics:
    m = Metrics()
    m.decision(OutcomeAction.RECREATED)
    return m


def test_the_endpoint_on_a_localhost_port() -> None:
    m = _counted()
    server = MetricsServer(Listen("127.0.0.1", 0), m.registry)
    try:
        assert server.listen.port > 0  # the one the kernel chose
        with urllib.request.urlopen(f"http://{server.listen}/metrics", timeout=10) as r:
            body = r.read().decode()
            assert r.headers["Content-Type"].startswith("text/plain")
    finally:
        server.close()
    assert 'hwprov_decisions_total{outcome="recreated"} 1.0' in body
    assert "process_cpu_seconds_total" in body  # the process collector, on Linux
    with pytest.raises(OSError):  # closed: nothing listens there any more
        socket.create_connection(("127.0.0.1", server.listen.port), timeout=5).close()


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(self.path))


def test_the_endpoint_on_a_unix_socket_replaces_a_stale_one(tmp_path: Path) -> None:
    path = tmp_path / "run" / "metrics.sock"
    path.parent.mkdir()
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))  # what a killed hwprov leaves
    stale.close()
    server = MetricsServer(parse_listen(f"unix:{path}"), _counted().registry)
    try:
        conn = UnixHTTP(path)
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        body = response.read().decode()
        conn.close()
    finally:
        server.close()
    assert response.status == 200
    assert 'hwprov_decisions_total{outcome="recreated"} 1.0' in body
    assert not path.exists()


def test_anything_but_a_socket_in_the_way_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "metrics.sock").write_text("keep me")
    with pytest.raises(MetricsError, match="exists and is not a socket"):
        MetricsServer(Listen(path=tmp_path / "metrics.sock"), Metrics().registry)
    assert (tmp_path / "metrics.sock").read_text() == "keep me"


def test_run_stops_with_an_error_line_when_it_cannot_listen(tmp_path: Path) -> None:
    (tmp_path / "metrics.sock").write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "hwprov", "run", "-f", str(tmp_path / "docker-compose.yml"),
         "--metrics-listen", f"unix:{tmp_path / 'metrics.sock'}",
         "--status-file", str(tmp_path / "status.json")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    [line] = [json.loads(x) for x in done.stderr.splitlines()]
    assert line["event"] == "error"
    assert line["error"] == f"metrics: {tmp_path / 'metrics.sock'} exists and is not a socket"
    assert not (tmp_path / "status.json").exists()  # it never ran
