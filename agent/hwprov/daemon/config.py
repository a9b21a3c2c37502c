"""The agent's settings: defaults, then the config file, then environment, then the command line.

The file is YAML (docs/config.md has the schema); a key hwprov does not know is an error
naming the file and the key, so a typo never silently leaves a default in place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from hwprov.daemon import statusfile
from hwprov.daemon.decisions import LOG_FORMATS
from hwprov.daemon.listen import parse_listen
from hwprov.errors import HwprovError
from hwprov.hardware.udev import RECEIVE_BUFFER
from hwprov.records import GrantMode, UnplugPolicy

DEFAULT_FILE = Path("/etc/hwprov/config.yaml")


class ConfigError(HwprovError):
    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(f"{source}: {key}: {problem}")


@dataclass(frozen=True, slots=True)
class Config:
    compose_file: Path = Path("docker-compose.yml")
    project: str | None = None
    engine: str | None = None  # None: $DOCKER_HOST, then the local socket
    debounce_ms: float = 0.0
    settle_ms: float = 500.0
    on_unplug: UnplugPolicy = UnplugPolicy.RECREATE
    grant: GrantMode = GrantMode.RECREATE
    disable: tuple[str, ...] = ()
    log_format: str = "json"
    udev_buffer_kib: int = RECEIVE_BUFFER // 1024
    status_file: Path = statusfile.DEFAULT
    metrics_listen: str | None = None  # None: no metrics endpoint (opt-in)


# Environment variable -> field, for the settings people set per device.
ENVIRONMENT = {
    "HWPROV_COMPOSE_FILE": "compose_file",
    "HWPROV_PROJECT": "project",
    "HWPROV_ENGINE": "engine",
    "HWPROV_DEBOUNCE_MS": "debounce_ms",
    "HWPROV_SETTLE_MS": "settle_ms",
    "HWPROV_ON_UNPLUG": "on_unplug",
    "HWPROV_GRANT": "grant",
    "HWPROV_DISABLE": "disable",
    "HWPROV_LOG_FORMAT": "log_format",
    "HWPROV_UDEV_BUFFER_KIB": "udev_buffer_kib",
    "HWPROV_STATUS_FILE": "status_file",
    "HWPROV_METRICS_LISTEN": "metrics_listen",
}
FILE_KEYS = {f.name.replace("_", "-"): f.name for f in fields(Config)}


def _value(name: str, raw: Any, source: str, key: str) -> Any:
    if name in ("compose_file", "status_file"):
        return Path(str(raw))
    if name == "metrics_listen" and raw is not None:
        try:
            return str(parse_listen(str(raw)))
        except ValueError as err:
            raise ConfigError(source, key, str(err)) from None
    if name in ("debounce_ms", "settle_ms"):
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(source, key, f"expected milliseconds, got {raw!r}") from None
        if value < 0:
            raise ConfigError(source, key, "must not be negative")
        return value
    if name == "udev_buffer_kib":
        try:
            kib = int(str(raw))  # not int(raw): 1.5 is no whole number of KiB
        except (TypeError, ValueError):
            raise ConfigError(source, key, f"expected KiB, a whole number, got {raw!r}") from None
        if kib < 1:
            raise ConfigError(source, key, "must be at least 1")
        return kib
    if name == "disable":
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, list | tuple):
            raise ConfigError(source, key, "expected a list of plugin names")
        return tuple(str(i).strip() for i in items if str(i).strip())
    if name == "on_unplug":
        try:
            return UnplugPolicy(raw)
        except ValueError:
            raise ConfigError(source, key, f"expected one of {', '.join(UnplugPolicy)}") from None
    if name == "grant":
        try:
            return GrantMode(raw)
        except ValueError:
            raise ConfigError(source, key, f"expected one of {', '.join(GrantMode)}") from None
    if name == "log_format" and raw not in LOG_FORMATS:
        raise ConfigError(source, key, f"expected one of {', '.join(LOG_FORMATS)}")
    return None if raw is None else str(raw)


def from_file(path: Path, base: Config = Config()) -> Config:
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except OSError as err:
        raise ConfigError(str(path), "file", f"cannot read it ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ConfigError(str(path), "file", f"not valid YAML: {err}") from None
    if not isinstance(doc, dict):
        raise ConfigError(str(path), "top", "expected a mapping of settings")
    changes = {}
    for key, raw in doc.items():
        name = FILE_KEYS.get(str(key))
        if name is None:
            raise ConfigError(
                str(path), str(key), f"unknown setting (known: {', '.join(FILE_KEYS)})"
            )
        changes[name] = _value(name, raw, str(path), str(key))
    return replace(base, **changes)


def from_environment(env: Mapping[str, str], base: Config) -> Config:
    changes = {
        name: _value(name, env[var], "environment", var)
        for var, name in ENVIRONMENT.items()
        if env.get(var)
    }
    return replace(base, **changes)


def resolve(
    file: Path | None, cli: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> Config:
    """Defaults < file (the one given, else /etc/hwprov/config.yaml if present) < env < CLI."""
    config = Config()
    if file is not None:
        config = from_file(file, config)
    elif DEFAULT_FILE.is_file():
        config = from_file(DEFAULT_FILE, config)
    config = from_environment(os.environ if env is None else env, config)
    given = {k: v for k, v in cli.items() if v is not None and v != ()}
    return replace(config, **{k: _value(k, v, "command line", k) for k, v in given.items()})
