"""The agent's settings: file < environment < command line, and clear errors for typos."""

from __future__ import annotations

from pathlib import Path

import pytest
from hwprov.daemon.config import Config, ConfigError, from_file, resolve

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "config.example.yaml"


def test_the_documented_example_loads() -> None:
    config = from_file(EXAMPLE)
    assert config.compose_file == Path("/data/docker-compose.yml")
    assert config.on_unplug == "stop" and config.disable == ("bluetooth",)
    assert config.engine == "unix:///var/run/balena-engine.sock"


def test_environment_beats_the_file_and_the_command_line_beats_both(tmp_path: Path) -> None:
    file = tmp_path / "hwprov.yaml"
    file.write_text("debounce-ms: 50\non-unplug: stop\nlog-format: text\nsettle-ms: 300\n")
    env = {"HWPROV_DEBOUNCE_MS": "20", "HWPROV_DISABLE": "gpio, bluetooth"}
    config = resolve(file, {"debounce_ms": 5.0, "disable": ()}, env)
    assert config == Config(
        debounce_ms=5.0, on_unplug="stop", log_format="text", settle_ms=300.0,
        disable=("gpio", "bluetooth"),
    )  # fmt: skip
    assert resolve(None, {}, {}).on_unplug == "recreate"  # the default, with no file around


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("debounce_ms: 5\n", "debounce_ms: unknown setting (known: compose-file"),
        ("on-unplug: pause\n", "on-unplug: expected one of recreate, stop"),
        ("grant: hot\n", "grant: expected one of recreate, live"),
        ("settle-ms: soon\n", "settle-ms: expected milliseconds"),
        ("debounce-ms: -1\n", "must not be negative"),
        ("udev-buffer-kib: 0\n", "udev-buffer-kib: must be at least 1"),
        ("udev-buffer-kib: 1.5\n", "udev-buffer-kib: expected KiB, a whole number"),
        ("- a\n", "top: expected a mapping"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_a_bad_file_names_the_setting(tmp_path: Path, text: str, needle: str) -> None:
    file = tmp_path / "hwprov.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")) as err:
        from_file(file)
    assert str(err.value).startswith(str(file))


def test_a_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="environment: HWPROV_LOG_FORMAT: expected one of"):
        resolve(None, {}, {"HWPROV_LOG_FORMAT": "xml"})


def test_the_udev_buffer_is_in_kib_from_the_file_or_the_environment(tmp_path: Path) -> None:
    file = tmp_path / "hwprov.yaml"
    file.write_text("udev-buffer-kib: 64\n")
    assert resolve(file, {}, {}).udev_buffer_kib == 64
    assert resolve(file, {}, {"HWPROV_UDEV_BUFFER_KIB": "16"}).udev_buffer_kib == 16
    assert resolve(None, {}, {}).udev_buffer_kib == 32 * 1024  # Home Assistant's 32 MiB
