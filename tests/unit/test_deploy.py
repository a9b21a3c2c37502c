"""The deployment artefacts say what docs/deploy.md says they do (the image is built in
tests/engine/test_image.py, on a base made offline)."""

from __future__ import annotations

import configparser
import fnmatch
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hwprov.compose.loader import load_project
from hwprov.daemon.state import HEARTBEAT_S, STALE_AFTER_BEATS

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_the_balena_snippet_has_each_setting_hwprov_relies_on_and_no_more() -> None:
    project = load_project(DEPLOY / "docker-compose.hwprov.yml", env={})
    [service] = project.services
    assert not project.notes, project.notes  # nothing the supervisor would drop
    assert service.name == "hwprov" and not service.privileged
    assert service.network_mode == "host"
    assert service.raw["pid"] == "host"
    assert service.cap_add == ("SYS_ADMIN",)
    assert set(service.features) == {"balena-socket", "sysfs"}
    assert service.labels["io.hwprov.enable"] == "false"
    assert service.restart == "always"
    build = service.build
    assert build["dockerfile"] == "hwprov/deploy/Dockerfile"  # type: ignore[index]
    assert build["args"]["RELEASE_COMPOSE"] == "docker-compose.yml"  # type: ignore[index]
    assert not service.devices and not service.volumes


def test_the_image_installs_hwprov_and_runs_the_agent_on_the_baked_in_project() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]
    # The base is a build argument: the registry's by default, one made offline otherwise
    # (tests/engine/test_image.py builds on that one).
    assert lines[0] == "ARG BASE=python:3.11-slim-bookworm" and lines[1] == "FROM ${BASE}"
    assert "RUN python3 -m venv /opt/hwprov/venv" in lines
    assert "then pip install --no-cache-dir --no-index --find-links wheels hwprov; \\" in lines
    assert "else pip install --no-cache-dir .; \\" in lines
    wheels = re.search(r"ARG WHEELS=\$\{HWPROV_SRC\}/(\S+)", text)
    assert wheels is not None and (DEPLOY.parent / wheels.group(1)).is_dir()
    entrypoint = next(line for line in lines if line.startswith("ENTRYPOINT"))
    assert json.loads(entrypoint.removeprefix("ENTRYPOINT ")) == ["hwprov", "run"]
    assert "ENV HWPROV_COMPOSE_FILE=/etc/hwprov/docker-compose.yml" in lines
    default = re.search(r"ARG RELEASE_COMPOSE=(\S+)", text)
    assert default is not None
    empty = load_project(DEPLOY.parent / default.group(1), env={})
    assert empty.services == ()  # the image's default project: nothing to manage


def test_the_systemd_unit_starts_reloads_and_restarts_hwprov() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((DEPLOY / "hwprov.service").read_text())
    service = unit["Service"]
    assert service["ExecStart"] == "/usr/local/bin/hwprov run"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"  # hwprov reloads on SIGHUP
    assert service["KillSignal"] == "SIGTERM" and service["Restart"] == "on-failure"
    assert "docker.service" in unit["Unit"]["After"] and unit["Unit"]["Requires"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert "HWPROV_COMPOSE_FILE=/etc/hwprov/docker-compose.yml" in service["Environment"]
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    # The loop turns every half of it when idle (daemon/notify.py); a pass may take most of it.
    assert int(service["WatchdogSec"]) >= 60


def test_the_image_is_healthy_while_hwprov_status_says_the_agent_is_up() -> None:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    [check] = [line.split() for line in text.splitlines() if line.startswith("HEALTHCHECK")]
    options = dict(o.removeprefix("--").split("=") for o in check[1:] if o.startswith("--"))
    assert check[check.index("CMD") + 1 :] == ['["hwprov",', '"status"]']
    # the start period covers at least one stale window: a slow coldplug is not "unhealthy"
    assert options == {
        "interval": "30s", "timeout": "10s", "start-period": "60s", "retries": "3"
    }  # fmt: skip
    assert int(options["start-period"].removesuffix("s")) >= HEARTBEAT_S * STALE_AFTER_BEATS


def test_the_build_context_leaves_out_what_the_image_never_copies() -> None:
    patterns = [
        line.strip()
        for line in (DEPLOY.parent / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    root = DEPLOY.parent

    def ignored(rel: str) -> bool:
        return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(rel, p.removeprefix("**/"))
                   for p in patterns)  # fmt: skip

    for heavy in (".git", ".venv", "agent/hwprov/__pycache__", "hwprov.egg-info", ".image"):
        assert ignored(heavy), heavy
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copies = [line for line in dockerfile.splitlines() if line.startswith("COPY ")]
    copied = [c for line in copies for c in re.findall(r"\$\{HWPROV_SRC\}/(\S+)", line)]
    copied.append("deploy/no-release.yml")  # the release's compose file by default
    assert {"agent", "plugins", "hw-fixtures", "README.md", "LICENSE", "pyproject.toml"} <= set(
        copied
    )
    for rel in copied:
        assert (root / rel).exists(), rel
        assert not ignored(rel), f"{rel} is copied into the image but left out of the context"
    for source in (root / "agent").rglob("*.py"):
        assert not ignored(str(source.relative_to(root))), source


def unit_lines(text: str) -> list[tuple[str, str]]:
    """(key, value) of each setting, in order: a key may repeat (configparser keeps one)."""
    pairs = []
    for line in text.splitlines():
        if line and line[0] not in "#;[" and "=" in line:
            key, _, value = line.partition("=")
            pairs.append((key.strip(), value.strip()))
    return pairs


def test_the_unit_bounds_hwprov_to_the_capabilities_docs_deploy_md_explains() -> None:
    pairs = unit_lines((DEPLOY / "hwprov.service").read_text())
    caps = {c for k, v in pairs if k == "CapabilityBoundingSet" for c in v.split()}
    assert caps == {
        "CAP_SYS_ADMIN", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_MKNOD", "CAP_CHOWN",
        "CAP_DAC_OVERRIDE", "CAP_BPF", "CAP_NET_ADMIN", "CAP_SYSLOG",
    }  # fmt: skip
    docs = (DEPLOY.parent / "docs/deploy.md").read_text()
    hardening = docs[docs.index("### The systemd unit") :]
    for cap in caps:
        assert f"`{cap}`" in hardening, cap
    # Each sandboxing directive of the unit has its line in the table, and so does each one
    # deliberately left out.
    settings = {k for k, _ in pairs} - {
        "Description", "Documentation", "Requires", "After", "Environment", "EnvironmentFile",
        "ExecStart", "ExecReload", "KillSignal", "Restart", "RestartSec", "WantedBy",
    }  # fmt: skip
    rows = [line for line in hardening.splitlines() if line.startswith("| `")]
    for key in settings | {"PrivateTmp", "ProtectHome", "PrivateDevices", "ProtectClock"}:
        assert any(f"`{key}" in row.split(" | ")[0] for row in rows), key


SCORE_MEASURED = 4.3  # systemd 252 (Debian 12), `--offline=true`; 9.4 before the hardening


def test_systemd_analyze_rates_the_unit_no_worse_than_measured() -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("no systemd-analyze (Debian package systemd)")
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(DEPLOY / "hwprov.service")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for hwprov\.service: (\d+\.\d)", out.stdout)
    assert found is not None, out.stdout[-2000:] + out.stderr[-2000:]
    assert float(found.group(1)) <= SCORE_MEASURED, out.stdout


def test_systemd_analyze_verify_accepts_the_unit_as_installed(tmp_path: Path) -> None:
    """Offline, in a root laid out as the host the unit is for: systemd's own units and
    docker.service (Debian's), the unit in /etc/systemd/system, its commands in place."""
    units = Path("/lib/systemd/system")
    if shutil.which("systemd-analyze") is None or not (units / "docker.service").exists():
        pytest.skip("no systemd-analyze or docker.service (scripts/bootstrap.sh)")
    shutil.copytree(units, tmp_path / "usr/lib/systemd/system", symlinks=True)
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(DEPLOY / "hwprov.service", tmp_path / "etc/systemd/system")
    hwprov = tmp_path / "usr/local/bin/hwprov"  # the console script `pip install .` makes
    hwprov.parent.mkdir(parents=True)
    hwprov.write_text("#!/bin/sh\n")
    hwprov.chmod(0o755)
    (tmp_path / "bin").mkdir()
    shutil.copy("/bin/kill", tmp_path / "bin/kill")  # ExecReload's
    out = subprocess.run(
        ["systemd-analyze", "verify", f"--root={tmp_path}", "/etc/systemd/system/hwprov.service"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    # An unknown or misspelt directive is only a warning (exit 0): none is allowed either.
    assert (out.returncode, out.stdout, out.stderr) == (0, "", ""), out.stderr
