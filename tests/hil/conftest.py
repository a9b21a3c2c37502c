"""The HIL suite's bench: every fixture board on the simulated bench (default), Debian's kernel
in a QEMU guest on cgroup v2 and v1 (`--bench kernel`), the lab's board with `--bench real
--bench-config lab.yaml`, or a labgrid place (`--bench labgrid -p labgrid --lg-env env.yaml
[--lg-place NAME]`, docs/hil.md). Each scenario's timings go to a summary a lab can keep
(.test-results/hil-summary.json and .md), beside pytest's JUnit XML."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import hilkit
import pytest
from hilkit import SERVICE_OF_KIND, Agent, compose, compose_text
from hwprov.sandbox.images import ensure_busybox
from hwprov.sim.paths import fixtures_dir

from lab import kernelbench
from lab.bench import Bench
from lab.kernelbench import Guest, KeptGuest, KernelBench
from lab.realbench import RealBench, parse_config
from lab.simbench import SimBench

# A lab job gives each run its own folder (scripts/lab-job.sh: jobs share a checkout).
RESULTS = Path(
    os.environ.get("HWPROV_HIL_RESULTS") or Path(__file__).resolve().parents[2] / ".test-results"
)
SUMMARY: list[dict[str, Any]] = []

if os.geteuid() != 0 or shutil.which("umockdev-wrapper") is None or not shutil.which("dockerd"):
    pytest.skip(
        "needs root, umockdev and docker.io (scripts/bootstrap.sh)", allow_module_level=True
    )


# Under TCG a scenario waits about this many times longer, and may take this long in all.
KERNEL_SLOWNESS, KERNEL_TIMEOUT_S = 8.0, 900
# What the README's test command runs on the kernel bench (--kernel-set ci), per cgroup
# version: each test costs 1.5-3 min under TCG, so the whole matrix (about 28 tests, over an
# hour here) does not fit in CI's time. Kept: what only a real kernel shows, the live grant on
# both cgroup versions (the one path that differs between them), and one plug of every unit
# kind through the real drivers. The rest runs with --kernel-set full (docs/hil.md).
KERNEL_CI = {
    "v2": {
        "test_kernel_truths.py",
        "test_live_grant.py",
        "test_hot_plug_of_each_device_kind",
        "test_live_revoke.py",
    },
    "v1": {"test_live_grant.py"},
}


def _interrupted(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--bench") == "kernel":
        hilkit.SLOWNESS = KERNEL_SLOWNESS
    if config.getoption("--bench") == "labgrid":
        # A lab job cancelled (scripts/lab-job.sh, a CI runner) sends TERM: tear the scenario
        # down as on Ctrl-C, so the place's device is left clean for the next job.
        signal.signal(signal.SIGTERM, _interrupted)
    place = config.getoption("--lg-place")
    if place:
        # What the env file's `RemotePlace: {name: !template $LG_PLACE}` reads (docs/hil.md).
        os.environ["LG_PLACE"] = place


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--bench") != "kernel":
        return
    ci = config.getoption("--kernel-set") == "ci"
    for item in items:
        item.add_marker(pytest.mark.timeout(KERNEL_TIMEOUT_S))
        callspec = getattr(item, "callspec", None)
        bench = str(callspec.params.get("bench_name", "")) if callspec else ""
        kept = KERNEL_CI.get(bench.removeprefix("kernel:"), set())
        name = getattr(item, "originalname", item.name)
        if ci and not ({item.path.name, name} & kept):
            why = "not in the kernel bench's CI set (tests/hil/conftest.py KERNEL_CI): "
            item.add_marker(pytest.mark.skip(reason=why + "run it with --kernel-set full"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "bench_name" in metafunc.fixturenames:
        which = metafunc.config.getoption("--bench")
        if which in ("real", "labgrid"):
            names = [which]
        elif which == "kernel":
            cgroups = metafunc.config.getoption("--cgroup") or ["v2", "v1"]
            # Session scope: pytest runs every test of one guest before booting the next.
            metafunc.parametrize("bench_name", [f"kernel:{c}" for c in cgroups], scope="session")
            return
        else:
            boards = sorted(p.stem for p in fixtures_dir().glob("*.yaml"))
            names = metafunc.config.getoption("--board") or boards
        metafunc.parametrize("bench_name", names)


@pytest.fixture(scope="session", autouse=True)
def _sim_engine(request: pytest.FixtureRequest) -> None:
    # The simulated bench's engine is the session's: set up before any per-test check runs.
    if request.config.getoption("--bench") == "sim":
        request.getfixturevalue("engine")
    # So is the labgrid place's target, with its coordinator session's thread.
    if request.config.getoption("--bench") == "labgrid" and request.config.pluginmanager.hasplugin(
        "labgrid"
    ):
        request.getfixturevalue("target")


class Guests:
    """The kernel bench's guest: one at a time (TCG takes both cores), kept for the session."""

    def __init__(self, kept: str | None) -> None:
        self.current: Guest | None = None
        self.kept = kept

    def get(self, cgroup: str) -> Guest:
        if self.current is not None and self.current.cgroup != cgroup:
            self.current.stop()
            self.current = None
        if self.current is None:
            guest = KeptGuest(Path(self.kept)) if self.kept else Guest(cgroup)
            if guest.cgroup != cgroup:
                pytest.skip(f"the kept guest is cgroup {guest.cgroup}, not {cgroup}")
            guest.boot()
            SUMMARY.append({"scenario": "(guest boot)", "bench": f"kernel:{cgroup}",
                            "step": "boot to ready",
                            "ms": round(guest.boot_s * 1000, 1)})  # fmt: skip
            self.current = guest
        return self.current


@pytest.fixture(scope="session")
def guests(request: pytest.FixtureRequest) -> Iterator[Guests]:
    why = kernelbench.missing()
    if why is not None:
        # The README's test command sets this where the guest can boot: there, a kernel tier
        # that quietly skipped would be a tier that quietly stopped testing anything.
        if os.environ.get("HWPROV_KERNEL_BENCH") == "required":
            pytest.fail(f"kernel bench expected here but cannot run: {why}")
        pytest.skip(f"kernel bench: {why}")
    held = Guests(request.config.getoption("--kernel-guest"))
    yield held
    if held.current is not None:
        held.current.stop()


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
           kinds: Iterable[str] = SERVICE_OF_KIND,
           agent_args: tuple[str, ...] = ()) -> Agent:  # fmt: skip
        """Boot the bench, bring the project up with the compose CLI (a service for each of
        `kinds`, then `extra`'s), start the agent."""
        self.bench.boot(all_attached=all_attached)
        self.compose_file = self.workdir / "docker-compose.yml"
        networked = self.bench.networked
        self.compose_file.write_text(text or compose_text(self.image, extra, kinds, networked))
        start = time.monotonic()
        compose(self.bench, self.compose_file, "up", "-d")
        self.record("(compose up)", time.monotonic() - start)
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
                start = time.monotonic()
                compose(self.bench, self.compose_file, "down", "-v", "--timeout", "2")
                self.record("(compose down)", time.monotonic() - start)
        finally:
            self.bench.shutdown()


@pytest.fixture
def hil(bench_name: str, request: pytest.FixtureRequest) -> Iterator[Hil]:
    closing: list[Any] = []  # docker clients, a labgrid bench: closed last first
    if bench_name.startswith("kernel:"):
        # First: a guest that cannot boot skips (or fails) before anything is made.
        guest = request.getfixturevalue("guests").get(bench_name.removeprefix("kernel:"))
        # The scenario's files must be where the guest sees them, at the same path.
        workdir = Path(tempfile.mkdtemp(prefix="hil.", dir=guest.share))
    else:
        # A short folder: the bench's control socket path must fit in 108 bytes.
        workdir = Path(tempfile.mkdtemp(prefix="hwprov-hil.", dir="/tmp"))
    bench: Bench
    try:
        if bench_name.startswith("kernel:"):
            bench = KernelBench(guest)
            client = docker.DockerClient(base_url=guest.engine_url, timeout=120)
            closing.append(client)
            image = ensure_busybox(client)
        elif bench_name == "labgrid":
            bench, client, image = labgrid_bench(request, workdir, closing)
        elif bench_name == "real":
            path = request.config.getoption("--bench-config")
            if not path:
                pytest.fail("--bench real needs --bench-config FILE (docs/hil.md)")
            config = parse_config(Path(path).read_text(), path)
            bench, image = RealBench(config), config.image
            client = docker.DockerClient(base_url=config.engine)
            closing.append(client)
        else:
            engine = request.getfixturevalue("engine")
            client = request.getfixturevalue("docker_client")
            image = ensure_busybox(client)
            bench = SimBench(bench_name, engine.base_url, workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)  # a setup that failed leaves nothing behind
        for opened in reversed(closing):
            opened.close()
        raise
    h = Hil(bench, client, workdir, image, request.node.originalname)
    try:
        yield h
    finally:
        try:
            h.close()
        finally:
            SUMMARY.extend(h.records)
            shutil.rmtree(workdir, ignore_errors=True)
            for opened in reversed(closing):
                opened.close()


def labgrid_bench(
    request: pytest.FixtureRequest, workdir: Path, closing: list[Any]
) -> tuple[Bench, docker.DockerClient, str]:
    """The place's bench, with the device's engine forwarded for the tests' client."""
    if not request.config.pluginmanager.hasplugin("labgrid"):
        pytest.fail("--bench labgrid needs labgrid's plugin: -p labgrid (docs/hil.md)")
    from lab.lgbench import LabgridBench

    target = request.getfixturevalue("target")
    place = os.environ.get("LG_PLACE") or target.name
    bench = LabgridBench(target, place, workdir)
    bench.open()
    closing.append(bench)
    client = docker.DockerClient(base_url=bench.engine_url, timeout=120)
    closing.append(client)
    return bench, client, bench.device.image or ensure_busybox(client)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if not SUMMARY:
        return
    RESULTS.mkdir(exist_ok=True)
    # One summary per bench: the README's test command runs the sim and the kernel bench.
    which = config.getoption("--bench")
    stem = "hil-summary" if which == "sim" else f"hil-summary-{which}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(SUMMARY, indent=1))
    rows = [("scenario", "bench", "step", "ms")]
    rows += [(r["scenario"], r["bench"], r["step"], str(r["ms"])) for r in SUMMARY]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    (RESULTS / f"{stem}.md").write_text(
        "| " + " | ".join(rows[0]) + " |\n|" + "---|" * 4 + "\n"
        + "".join("| " + " | ".join(r) + " |\n" for r in rows[1:])
    )  # fmt: skip
    terminalreporter.write_sep("-", "HIL timings (plug -> container ready)")
    for line in lines:
        terminalreporter.write_line(line)
