"""The HIL suite's bench: every fixture board on the simulated bench (default), or the lab's
board with `--bench real --bench-config lab.yaml`. Each scenario's timings go to a summary a
lab can keep (.test-results/hil-summary.json and .md), beside pytest's JUnit XML."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest
from hilkit import Agent, compose, compose_text
from hwprov.sandbox.images import ensure_busybox
from hwprov.sim.paths import fixtures_dir

from lab.bench import Bench
from lab.realbench import RealBench, parse_config
from lab.simbench import SimBench

RESULTS = Path(__file__).resolve().parents[2] / ".test-results"
SUMMARY: list[dict[str, Any]] = []

if os.geteuid() != 0 or shutil.which("umockdev-wrapper") is None or not shutil.which("dockerd"):
    pytest.skip(
        "needs root, umockdev and docker.io (scripts/bootstrap.sh)", allow_module_level=True
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "bench_name" in metafunc.fixturenames:
        if metafunc.config.getoption("--bench") == "real":
            names = ["real"]
        else:
            boards = sorted(p.stem for p in fixtures_dir().glob("*.yaml"))
            names = metafunc.config.getoption("--board") or boards
        metafunc.parametrize("bench_name", names)


@pytest.fixture(scope="session", autouse=True)
def _sim_engine(request: pytest.FixtureRequest) -> None:
    # The simulated bench's engine is the session's: set up before any per-test check runs.
    if request.config.getoption("--bench") == "sim":
        request.getfixturevalue("engine")


@dataclass
class Hil:
    bench: Bench
    client: docker.DockerClient
    workdir: Path
    image: str
    test: str
    agent: Agent | None = None
    compose_file: Path | None = None
    records: list[dict[str, Any]] = field(default_factory=list)

    def up(self, *, all_attached: bool = False, extra: str = "", text: str | None = None,
           agent_args: tuple[str, ...] = ()) -> Agent:  # fmt: skip
        """Boot the bench, bring the project up with the compose CLI, start the agent."""
        self.bench.boot(all_attached=all_attached)
        self.compose_file = self.workdir / "docker-compose.yml"
        self.compose_file.write_text(text or compose_text(self.image, extra))
        compose(self.bench, self.compose_file, "up", "-d")
        self.agent = Agent.start(self.bench, self.compose_file, *agent_args)
        return self.agent

    def record(self, step: str, seconds: float | None, **extra: Any) -> None:
        self.records.append(
            {"scenario": self.test, "bench": self.bench.name, "step": step,
             "ms": None if seconds is None else round(seconds * 1000, 1), **extra}
        )  # fmt: skip

    def close(self) -> None:
        if self.agent is not None:
            self.agent.stop()
        try:
            if self.compose_file is not None:
                compose(self.bench, self.compose_file, "down", "-v", "--timeout", "2")
        finally:
            self.bench.shutdown()


@pytest.fixture
def hil(bench_name: str, request: pytest.FixtureRequest) -> Iterator[Hil]:
    # A short folder: the bench's control socket path must fit in 108 bytes.
    workdir = Path(tempfile.mkdtemp(prefix="hwprov-hil.", dir="/tmp"))
    bench: Bench
    if bench_name == "real":
        path = request.config.getoption("--bench-config")
        if not path:
            pytest.fail("--bench real needs --bench-config FILE (docs/hil.md)")
        config = parse_config(Path(path).read_text(), path)
        bench, image = RealBench(config), config.image
        client = docker.DockerClient(base_url=config.engine)
    else:
        engine = request.getfixturevalue("engine")
        client = request.getfixturevalue("docker_client")
        image = ensure_busybox(client)
        bench = SimBench(bench_name, engine.base_url, workdir)
    h = Hil(bench, client, workdir, image, request.node.originalname)
    try:
        yield h
    finally:
        try:
            h.close()
        finally:
            SUMMARY.extend(h.records)
            shutil.rmtree(workdir, ignore_errors=True)
            if bench_name == "real":
                client.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not SUMMARY:
        return
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hil-summary.json").write_text(json.dumps(SUMMARY, indent=1))
    rows = [("scenario", "bench", "step", "ms")]
    rows += [(r["scenario"], r["bench"], r["step"], str(r["ms"])) for r in SUMMARY]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    (RESULTS / "hil-summary.md").write_text(
        "| " + " | ".join(rows[0]) + " |\n|" + "---|" * 4 + "\n"
        + "".join("| " + " | ".join(r) + " |\n" for r in rows[1:])
    )  # fmt: skip
    terminalreporter.write_sep("-", "HIL timings (plug -> container ready)")
    for line in lines:
        terminalreporter.write_line(line)
