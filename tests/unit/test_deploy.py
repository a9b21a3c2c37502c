"""The deployment artefacts say what docs/deploy.md says they do (the image is built in
tests/engine/test_image.py, on a base made offline)."""

from __future__ import annotations

import configparser
import json
import re
from pathlib import Path

from hwprov.compose.loader import load_project

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
