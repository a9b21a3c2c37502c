"""The deployment artefacts say what docs/deploy.md says they do (the image is not built here:
no registry for its base)."""

from __future__ import annotations

import configparser
import fnmatch
import json
import re
from pathlib import Path

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
    assert lines[0].startswith("FROM python:3.11")
    assert "RUN pip install --no-cache-dir ." in lines
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

    for heavy in (".git", ".venv", "agent/hwprov/__pycache__", "hwprov.egg-info"):
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
