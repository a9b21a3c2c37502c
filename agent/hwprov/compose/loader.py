"""Load a compose file into a `Project`. Every error is a ComposeError naming the file, line and
column and what was expected; nothing is returned half-read. Decisions: docs/compose.md."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from hwprov.compose import fields as f
from hwprov.compose.interpolate import DotenvError, InterpolationError, interpolate, read_dotenv
from hwprov.compose.model import Project, Service
from hwprov.compose.yamlsrc import Pos, YList, YMap, load_json, load_yaml
from hwprov.errors import ComposeError
from hwprov.records import Props

# src/compose/sanitise.ts supportedComposeFields (snake_case), plus what the supervisor or the
# balena builder read before that filter (build, depends_on, expose).
_SUPPORTED = """
    cap_add cap_drop command cgroup_parent devices dns dns_opt dns_search tmpfs entrypoint
    environment extra_hosts group_add healthcheck image init labels running network_mode networks
    pid pids_limit ports security_opt stop_grace_period stop_signal storage_opt sysctls ulimits
    userns_mode volumes restart cpu_shares cpu_quota cpus cpuset domainname hostname ipc
    mac_address mem_limit mem_reservation oom_kill_disable oom_score_adj privileged read_only
    runtime shm_size user working_dir tty build depends_on expose
"""
SUPERVISOR_FIELDS = frozenset(_SUPPORTED.split())
# Keys that make a top-level mapping look like a service in a fragment without `services:`.
SERVICE_HINTS = frozenset(["image", "build", "container_name", "devices", "command", "privileged"])
TOP_LEVEL = frozenset({"version", "name", "services", "volumes", "networks", "secrets", "configs"})
KNOWN_VERSION = re.compile(r"[23](\.[0-9]+)*")


def load_project(path: Path, env: Mapping[str, str] | None = None) -> Project:
    """Read `path`, interpolating from `env` (default: the process environment) over the
    `.env` file beside it (env wins, as the process environment does in docker compose)."""
    path = Path(path)
    text = _read(path)
    env = dict(os.environ) if env is None else dict(env)
    dotenv_path = path.parent / ".env"
    dotenv: dict[str, str] = {}
    if dotenv_path.is_file():
        try:
            dotenv = read_dotenv(_read(dotenv_path), env, str(dotenv_path))
        except DotenvError as err:
            raise ComposeError(err.source, err.line, 1, err.message) from None
    return load_project_text(text, str(path), env, dotenv)


def load_project_text(
    text: str,
    source: str = "<string>",
    env: Mapping[str, str] | None = None,
    dotenv: Mapping[str, str] | None = None,
) -> Project:
    """Read compose `text` (YAML or JSON). `source` names it in errors; variables come from
    `env`, then `dotenv`. Pure: no file and no process environment is read."""
    lookup = {**(dotenv or {}), **(env or {})}
    return _Reader(source, lookup).project(_parse(text, source))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ComposeError(str(path), None, None, f"cannot read the file: {err}") from None


def _parse(text: str, source: str) -> Any:
    as_json = source.endswith(".json") or text.lstrip()[:1] in ("{", "[")
    if as_json:
        try:
            # Only a check: the YAML reader reads the numbers (and refuses ints too long to
            # print, where json's int() would raise a bare ValueError).
            json.loads(text, parse_int=str)
        except json.JSONDecodeError as err:
            if source.endswith(".json"):
                raise ComposeError(
                    source, err.lineno, err.colno, f"not valid JSON: {err.msg}"
                ) from None
            as_json = False  # a YAML flow mapping, say
        except RecursionError:
            raise ComposeError(source, None, None, "not valid JSON: nested too deeply") from None
    try:
        return load_json(text) if as_json else load_yaml(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = err.problem or err.context or "cannot be read"
        if "'\\t'" in problem:
            problem += " (YAML does not allow tabs for indentation)"
        if err.context and err.problem and err.context_mark:
            problem += f" ({err.context} at line {err.context_mark.line + 1})"
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise ComposeError(source, line, column, f"not valid YAML: {problem}") from None
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        column = err.position - text.rfind("\n", 0, err.position)
        raise ComposeError(
            source, line, column, f"not valid YAML: {err.reason} #x{err.character:04x}"
        ) from None
    except yaml.YAMLError as err:
        raise ComposeError(source, None, None, f"not valid YAML: {err}") from None


class _Reader:
    def __init__(self, source: str, env: dict[str, str]) -> None:
        self.source, self.env = source, env
        self.warnings: list[str] = []
        self.notes: list[str] = []
        self.unset: dict[str, Pos] = {}

    def fail(self, pos: Pos | None, message: str) -> ComposeError:
        line, column = pos if pos and pos[0] else (None, None)
        return ComposeError(self.source, line, column, message)

    def warn(self, pos: Pos, message: str) -> None:
        self.warnings.append(
            f"{self.source}:{pos[0]}: {message}" if pos[0] else f"{self.source}: {message}"
        )

    def project(self, doc: Any) -> Project:
        if doc is None:
            raise self.fail((1, 1), "the file is empty: expected a mapping with 'services'")
        if not isinstance(doc, YMap):
            pos = doc.pos if isinstance(doc, YList) else (1, 1)
            raise self.fail(
                pos, f"expected a mapping with 'services' at the top level, got {f.describe(doc)}"
            )
        version = doc.texts.get(
            "version", None if doc.get("version") is None else str(doc["version"])
        )
        if version is not None and not KNOWN_VERSION.fullmatch(version):
            self.warn(
                doc.value_pos("version"), f"version '{version}' is not 2.x or 3.x: read as 2.x"
            )
        name: str | None = None
        if isinstance(doc.get("name"), str):
            name = self.expand("", "name", doc["name"], doc.value_pos("name"))
            # compose puts the normalised name where the rest of the file can interpolate it
            normalised = re.sub(r"[^a-z0-9_-]", "", name.lower()).lstrip("_-")
            if normalised:
                self.env.setdefault("COMPOSE_PROJECT_NAME", normalised)
        services = tuple(self.service(*entry) for entry in self.entries(doc))
        self.check_the_rest(doc)
        for variable, pos in self.unset.items():
            self.warn(pos, f"variable {variable} is not set: read as an empty string")
        return Project(
            source=self.source,
            version=version,
            services=services,
            name=name,
            volumes=self.top_level(doc, "volumes"),
            networks=self.top_level(doc, "networks"),
            warnings=tuple(self.warnings),
            notes=tuple(self.notes),
        )

    def entries(self, doc: YMap) -> list[tuple[str, Any, Pos]]:
        """(name, body, position) of each service, whatever shape the file has."""
        if "services" in doc:
            services = doc["services"]
            if services is None:
                return []
            if not isinstance(services, YMap):
                raise self.fail(
                    doc.value_pos("services"),
                    f"'services' must be a mapping (name: settings), got {f.describe(services)}",
                )
            return [(name, body, services.key_pos(name)) for name, body in services.items()]
        if isinstance(doc.get("composition"), dict):
            self.warn(
                doc.pos, "a supervisor target-state service: settings read from 'composition'"
            )
            return [(str(doc.get("serviceName") or "main"), doc, doc.pos)]
        fragment = [(k, v, doc.key_pos(k)) for k, v in doc.items()
                    if k not in TOP_LEVEL and not k.startswith("x-")
                    and isinstance(v, dict) and SERVICE_HINTS & set(v)]  # fmt: skip
        if fragment:
            self.warn(doc.pos, "no 'services' key: top-level entries read as services (a fragment)")
        else:
            self.warn(doc.pos, "no 'services' key and nothing that looks like a service")
        return fragment

    def service(self, name: str, body: Any, pos: Pos) -> Service:
        if body is None:
            body = YMap(pos=pos)
        if not isinstance(body, YMap):
            raise self.fail(
                pos, f"service '{name}': expected a mapping of settings, got {f.describe(body)}"
            )
        body = _unwrap_composition(body)
        values = body.like({key: self.expand(name, key, value, body.value_pos(key))
                            for key, value in body.items()})  # fmt: skip
        ignored = sorted(k for k in values if k not in SUPERVISOR_FIELDS and not k.startswith("x-"))
        if ignored:
            ignores = f"the balena supervisor ignores {', '.join(ignored)}"
            self.notes.append(f"{self.source}:{pos[0]}: service '{name}': {ignores}")

        def read(key: str, reader: Callable[..., Any], *extra: Any) -> Any:
            try:
                return reader(values.get(key), values.value_pos(key), *extra)
            except f.FieldError as err:
                raise self.fail(err.pos, f"service '{name}': {key}: {err.message}") from None

        policy, warning = read("restart", f.restart)
        if warning:
            self.warn(values.value_pos("restart"), f"service '{name}': {warning}")
        device_warnings: list[tuple[Pos, str]] = []
        devices = read("devices", f.devices, body.get("devices"), device_warnings)
        for where, message in device_warnings:
            self.warn(where, f"service '{name}': devices: {message}")
        return Service(
            name=name,
            line=pos[0],
            image=read("image", f.optional_text),
            build=read("build", f.build),
            devices=devices,
            cap_add=read("cap_add", f.strings),
            cap_drop=read("cap_drop", f.strings),
            privileged=read("privileged", f.boolean),
            network_mode=read("network_mode", f.network_mode),
            labels=Props(_balena_labels(read("labels", f.pairs))),
            environment=Props(read("environment", f.pairs, self.env)),
            volumes=read("volumes", f.volumes),
            depends_on=read("depends_on", f.depends_on),
            restart=policy,
            group_add=read("group_add", f.strings, True),
            device_cgroup_rules=read("device_cgroup_rules", f.strings),
            ulimits=read("ulimits", f.ulimits),
            command=read("command", f.command),
            raw=f.freeze(values),
        )

    def expand(self, service: str, key: str, value: Any, pos: Pos) -> Any:
        try:
            return self._expand(value, pos)
        except f.FieldError as err:
            where = f"service '{service}': {key}" if service else key
            raise self.fail(err.pos, f"{where}: {err.message}") from None

    def _expand(self, value: Any, pos: Pos) -> Any:
        if isinstance(value, str):
            unset: list[str] = []
            try:
                text = interpolate(value, self.env, unset)
            except InterpolationError as err:
                raise f.FieldError(str(err), pos) from None
            for variable in unset:
                self.unset.setdefault(variable, pos)
            return text
        if isinstance(value, YMap):
            return value.like({k: self._expand(v, value.value_pos(k)) for k, v in value.items()})
        if isinstance(value, YList):
            return value.like([self._expand(v, value.item_pos(i)) for i, v in enumerate(value)])
        return value

    def check_the_rest(self, doc: YMap) -> None:
        """Interpolate the top-level values hwprov does not read, for their errors only: compose
        interpolates every string in the file, so a bad `${` in `x-*` or `secrets` fails there."""
        read = ("services", "volumes", "networks", "name")
        for key, value in doc.items():
            if key not in read and ("services" in doc or key in TOP_LEVEL or key.startswith("x-")):
                self.expand("", key, value, doc.value_pos(key))

    def top_level(self, doc: YMap, key: str) -> Any:
        value = doc.get(key)
        if value is None:
            return f.freeze({})
        if not isinstance(value, YMap):
            raise self.fail(
                doc.value_pos(key), f"'{key}' must be a mapping of names, got {f.describe(value)}"
            )
        return f.freeze(self.expand("", key, value, doc.value_pos(key)))


def _unwrap_composition(body: YMap) -> YMap:
    """A supervisor target-state service keeps its compose settings under `composition`, with
    image, labels and environment beside it; `composition` wins where both set one."""
    inner = body.get("composition")
    if not isinstance(inner, YMap):
        return body
    outer = {k: body[k] for k in ("image", "labels", "environment") if k in body}
    merged = inner.like({**outer, **inner})
    merged.keys_at = {**{k: body.key_pos(k) for k in outer}, **inner.keys_at}
    merged.values_at = {**{k: body.value_pos(k) for k in outer}, **inner.values_at}
    return merged


def _balena_labels(labels: dict[str, str]) -> dict[str, str]:
    """io.resin.* read as io.balena.* (every 'resin' in the key, so io.resin.features.resin-api
    is io.balena.features.balena-api); an io.balena.* label wins over its legacy twin, as in the
    supervisor's normalizeLabels."""
    legacy = {
        k.replace("resin", "balena"): v for k, v in labels.items() if k.startswith("io.resin.")
    }
    current = {k: v for k, v in labels.items() if not k.startswith("io.resin.")}
    return {**legacy, **current}


def project_name(compose_file: Path, declared: str | None = None) -> str:
    """As docker compose names it: `name:`, else COMPOSE_PROJECT_NAME, else the folder name."""
    raw = declared or os.environ.get("COMPOSE_PROJECT_NAME") or compose_file.resolve().parent.name
    return re.sub(r"[^a-z0-9_-]", "", raw.lower())
