"""Load a compose file into `Project`: every error names the file, line and column.

Decisions (see docs/compose.md):
- values are interpolated after parsing, so `${VAR:?a message: with colons}` stays one value;
- the process environment wins over `.env` beside the file, as with docker compose;
- `restart: no` parses as a YAML 1.1 boolean and is read back as "no";
- duplicate keys are warnings carrying file:line (the later value wins);
- `io.resin.*` labels read as `io.balena.*`;
- a supervisor target-state JSON (fields under `composition`) and an IOTstack-style fragment
  (services at the top level) load as one project each, with a warning saying so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from agent.compose.interpolate import InterpolationError, interpolate, read_dotenv
from agent.compose.model import DeviceMapping, Project, Service
from agent.compose.yamlsrc import Located, load_yaml
from agent.errors import ComposeError
from agent.records import Props

SERVICE_HINTS = {"image", "build", "container_name", "devices", "command", "environment"}
YAML_FALSE_WORDS = {False: "no", True: "yes"}


def load_project(path: Path, env: Mapping[str, str] | None = None) -> Project:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ComposeError(str(path), None, None, f"cannot read the file: {err}") from err
    dotenv_file = path.parent / ".env"
    dotenv = read_dotenv(dotenv_file.read_text()) if dotenv_file.is_file() else {}
    merged = {**dotenv, **(os.environ if env is None else env)}
    return load_project_text(text, str(path), merged)


def load_project_text(text: str, source: str = "<string>", env: Mapping[str, str] = {}) -> Project:
    if text.lstrip().startswith("{"):
        # JSON (supervisor target state): YAML would choke on its tab indentation.
        try:
            doc, duplicates = json.loads(text), []
        except json.JSONDecodeError as err:
            raise ComposeError(
                source, err.lineno, err.colno, f"not valid JSON: {err.msg}"
            ) from None
        return _project(doc, source, env, duplicates)
    try:
        doc, duplicates = load_yaml(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise ComposeError(source, line, col, f"not valid YAML: {err.problem or err}") from None
    except yaml.YAMLError as err:
        raise ComposeError(source, None, None, f"not valid YAML: {err}") from None
    return _project(doc, source, env, duplicates)


def _project(
    doc: Any, source: str, env: Mapping[str, str], duplicates: list[tuple[str, int]]
) -> Project:
    warnings = [f"{source}:{line}: duplicate key '{key}' (the later value wins)"
                for key, line in duplicates]  # fmt: skip
    if not isinstance(doc, dict):
        raise ComposeError(source, 1, 1, "expected a mapping with 'services' at the top level")
    services_doc, shape = _services_of(doc, source)
    if shape:
        warnings.append(f"{source}: {shape}")
    services = tuple(_service(name, body, source, env) for name, body in services_doc.items())
    version = doc.get("version")
    return Project(
        source=source,
        version=None if version is None else str(version),
        services=services,
        name=str(doc["name"]) if isinstance(doc.get("name"), str) else None,
        volumes=tuple(
            str(k) for k in doc.get("volumes") or {} if isinstance(doc.get("volumes"), dict)
        ),
        networks=tuple(
            str(k) for k in doc.get("networks") or {} if isinstance(doc.get("networks"), dict)
        ),
        warnings=tuple(warnings),
    )


def _services_of(doc: dict[str, Any], source: str) -> tuple[dict[str, Any], str]:
    if "services" in doc:
        services = doc["services"]
        if services is None:
            return {}, ""
        if not isinstance(services, dict):
            raise ComposeError(source, _line(doc, "services"), 1, "'services' must be a mapping")
        return services, ""
    if isinstance(doc.get("composition"), dict):
        name = str(doc.get("serviceName") or "main")
        body = Located(doc["composition"])
        body.line = getattr(doc["composition"], "line", 1)
        body.key_lines = getattr(doc["composition"], "key_lines", {})
        if "image" in doc:
            body["image"] = doc["image"]
        return {name: body}, "a supervisor target-state service: fields read from 'composition'"
    fragment = {k: v for k, v in doc.items() if isinstance(v, dict) and SERVICE_HINTS & set(v)}
    if fragment:
        return fragment, "no 'services' key: top-level entries read as services (a fragment)"
    return {}, ""


def _line(mapping: object, key: str) -> int | None:
    lines = getattr(mapping, "key_lines", {})
    return lines.get(key) or getattr(mapping, "line", None) or None


def _expand(value: Any, env: Mapping[str, str], where: tuple[str, int | None]) -> Any:
    if isinstance(value, str):
        try:
            return interpolate(value, env)
        except InterpolationError as err:
            raise ComposeError(where[0], where[1], None, str(err)) from None
    if isinstance(value, list):
        return [_expand(v, env, where) for v in value]
    if isinstance(value, dict):
        out = Located({k: _expand(v, env, (where[0], _line(value, k) or where[1]))
                       for k, v in value.items()})  # fmt: skip
        out.line = getattr(value, "line", 0)
        out.key_lines = getattr(value, "key_lines", {})
        return out
    return value


def _strings(value: Any, field: str, fail: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        fail(field, "expected a list of strings")
    return tuple(str(v) for v in value)


def _pairs(value: Any, field: str, fail: Any) -> dict[str, str]:
    """A map, or a list of KEY=VALUE strings (labels, environment)."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): _scalar(v) for k, v in value.items()}
    if isinstance(value, list):
        out = {}
        for item in value:
            if not isinstance(item, str):
                fail(field, f"expected KEY=VALUE strings, got {item!r}")
            key, _, val = item.partition("=")
            out[key.strip()] = val
        return out
    fail(field, "expected a mapping or a list of KEY=VALUE strings")
    return {}


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _device(entry: Any, line: int | None, fail: Any) -> DeviceMapping:
    if isinstance(entry, dict):
        host, target = entry.get("source"), entry.get("target") or entry.get("source")
        if not isinstance(host, str) or not isinstance(target, str):
            fail("devices", f"long syntax needs 'source' (and 'target'), got {dict(entry)!r}")
        perms = entry.get("permissions")
        return DeviceMapping(host, target, str(perms) if perms else None, line)
    if not isinstance(entry, str) or not entry.strip():
        fail("devices", f"expected 'host[:container[:permissions]]', got {entry!r}")
    parts = entry.strip().split(":")
    if len(parts) > 3 or not parts[0]:
        fail("devices", f"expected 'host[:container[:permissions]]', got '{entry}'")
    host = parts[0]
    container = parts[1] if len(parts) > 1 and parts[1] else host
    perms = parts[2] if len(parts) > 2 else None
    if perms is not None and (not perms or set(perms) - set("rwm")):
        fail("devices", f"permissions must be letters of 'rwm', got '{perms}' in '{entry}'")
    return DeviceMapping(host, container, perms, line)


def _service(name: str, body: Any, source: str, env: Mapping[str, str]) -> Service:
    if body is None:
        body = Located()
    line = getattr(body, "line", None)
    if not isinstance(body, dict):
        raise ComposeError(source, line, None, f"service '{name}' must be a mapping")

    def fail(field: str, message: str) -> None:
        raise ComposeError(
            source, _line(body, field), None, f"service '{name}': {field}: {message}"
        )

    body = _expand(body, env, (source, line))
    labels = _pairs(body.get("labels"), "labels", fail)
    labels = {("io.balena." + k[len("io.resin.") :] if k.startswith("io.resin.") else k): v
              for k, v in labels.items()}  # fmt: skip
    devices_raw = body.get("devices") or []
    if not isinstance(devices_raw, list):
        fail(
            "devices", f"expected a list, got {devices_raw!r} (write one path as '- {devices_raw}')"
        )
    device_line = _line(body, "devices")
    devices = tuple(
        _device(e, device_line + i + 1 if device_line else None, fail)
        for i, e in enumerate(devices_raw)
    )
    restart = body.get("restart")
    if isinstance(restart, bool):  # YAML 1.1 reads `restart: no` as false
        restart = YAML_FALSE_WORDS[restart]
    depends = body.get("depends_on")
    depends_on = tuple(str(k) for k in depends) if isinstance(depends, dict | list) else ()
    privileged = body.get("privileged", False)
    if isinstance(privileged, str):
        privileged = privileged.strip().lower() in ("true", "yes", "1", "on")
    network_mode = body.get("network_mode")
    return Service(
        name=str(name),
        line=line or 0,
        image=str(body["image"]) if body.get("image") is not None else None,
        build=body.get("build"),
        devices=devices,
        cap_add=_strings(body.get("cap_add"), "cap_add", fail),
        cap_drop=_strings(body.get("cap_drop"), "cap_drop", fail),
        privileged=bool(privileged),
        network_mode=str(network_mode).replace(": ", ":") if network_mode else None,
        labels=Props(labels),
        environment=Props(_pairs(body.get("environment"), "environment", fail)),
        volumes=tuple(body.get("volumes") or ()),
        depends_on=depends_on,
        restart=None if restart is None else str(restart),
        group_add=_strings(body.get("group_add"), "group_add", fail),
        device_cgroup_rules=_strings(body.get("device_cgroup_rules"), "device_cgroup_rules", fail),
        command=body.get("command"),
        raw=dict(body),
    )
