"""The compose loader on the shared corpus of real files, on edge cases, and on random input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.compose.interpolate import interpolate, read_dotenv
from agent.compose.loader import load_project, load_project_text
from agent.errors import ComposeError

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "compose-corpus"
FILES = sorted((CORPUS / "corpus").iterdir()) if CORPUS.is_dir() else []
# Files that are really broken, and why (from the corpus index).
BROKEN = {
    "compose-spec__compose-go__loader__tests__devices_test.go#TestDeviceMapping.yaml":
        "permissions must be letters of 'rwm'",  # a synthetic 'permissions' literal
    "google__android-emulator-container-scripts__js__docker__docker-compose.yaml@02ef230":
        "expected a list",  # docker-compose itself rejected it; fixed in the next commit
}  # fmt: skip
# Files that interpolate required variables: the environment their README tells users to set.
ENV = {
    "SensorsIot__IOTstack__.templates__deconz__service.yml": {"DECONZ_DEVICE_PATH": "/dev/ttyUSB0"},
    "SensorsIot__IOTstack__.templates__esphome__service.yml": {"ESPHOME_PASSWORD": "x"},
    "SensorsIot__IOTstack__.templates__zigbee2mqtt__service.yml": {
        "ZIGBEE2MQTT_DEVICE_PATH": "/dev/ttyACM0"
    },
}
needs_corpus = pytest.mark.skipif(not FILES, reason="../shared/compose-corpus is not here")


def companion_env(name: str) -> dict[str, str]:
    env = dict(ENV.get(name, {}))
    for companion in (CORPUS / "companions").glob("*.env*"):
        if name.startswith(companion.name.split(".env")[0]):
            env.update(read_dotenv(companion.read_text()))
    return env


@needs_corpus
@pytest.mark.parametrize("path", FILES, ids=[f.name[:60] for f in FILES])
def test_every_corpus_file_loads_or_is_rejected_clearly(path: Path) -> None:
    if path.name in BROKEN:
        with pytest.raises(ComposeError) as err:
            load_project(path, env={})
        assert BROKEN[path.name] in str(err.value) and str(path) in str(err.value)
        assert err.value.line is not None
        return
    project = load_project(path, env=companion_env(path.name))
    assert project.services, f"{path.name}: no services"
    for service in project.services:
        for device in service.devices:
            assert device.host and device.container


@needs_corpus
def test_interpolated_device_entry_resolves_from_the_companion_env() -> None:
    name = "meshtastic__firmware__docker-compose.yml"
    project = load_project(CORPUS / "corpus" / name, env=companion_env(name))
    [device] = project.services[0].devices
    assert device.host == "/dev/bus/usb/001/037"
    with pytest.raises(ComposeError) as err:  # without it, a clear error with the line
        load_project(CORPUS / "corpus" / name, env={})
    assert err.value.line == 11


@needs_corpus
def test_node_red_devices_and_labels() -> None:
    project = load_project(
        CORPUS / "corpus" / "balena-labs-projects__balena-node-red__docker-compose.yml", env={}
    )
    svc = project.service("node-red")
    assert svc.privileged and svc.network_mode == "host" and svc.cap_add == ("SYS_RAWIO",)
    assert [(d.host, d.container, d.line) for d in svc.devices] == [
        ("/dev/mem", "/dev/mem", 21), ("/dev/gpiomem", "/dev/gpiomem", 22),
        ("/dev/i2c-1", "/dev/i2c-1", 23),
    ]  # fmt: skip
    assert svc.features == ("supervisor-api",) and svc.restart == "always"


def test_restart_no_stays_no_and_labels_normalise() -> None:
    p = load_project_text(
        "services:\n  a:\n    image: x\n    restart: no\n    labels:\n"
        "      - io.resin.features.dbus=1\n      - plain=yes\n  b:\n    restart: 'no'\n"
    )
    a, b = p.services
    assert a.restart == b.restart == "no"
    assert dict(a.labels) == {"io.balena.features.dbus": "1", "plain": "yes"}
    assert a.features == ("dbus",)


def test_anchors_merges_extensions_and_duplicates() -> None:
    text = (
        "x-base: &base\n  image: busybox\n  privileged: true\n"
        "services:\n  a:\n    <<: *base\n    privileged: false\n"
        "    image: other\n    image: third\n"
    )
    p = load_project_text(text, "c.yml")
    assert p.services[0].image == "third" and p.services[0].privileged is False
    assert p.warnings == ("c.yml:9: duplicate key 'image' (the later value wins)",)


def test_long_syntax_devices_and_depends_on_map() -> None:
    p = load_project_text(
        "services:\n  a:\n    devices:\n      - source: /dev/ttyUSB0\n        target: /dev/gps\n"
        "        permissions: rw\n    depends_on:\n      db: {condition: service_started}\n"
    )
    [d] = p.services[0].devices
    assert (d.host, d.container, d.permissions) == ("/dev/ttyUSB0", "/dev/gps", "rw")
    assert p.services[0].depends_on == ("db",)


@pytest.mark.parametrize(
    ("text", "env", "out"),
    [
        ("${A}", {"A": "1"}, "1"),
        ("$A-x", {"A": "1"}, "1-x"),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A-d}", {"A": ""}, ""),
        ("${A-d}", {}, "d"),
        ("$$A", {"A": "1"}, "$A"),
        ("${A:-${B}}", {"B": "2"}, "2"),
        ("${DEV:?set it: e.g. /dev/x}:/dev/y", {"DEV": "/dev/ttyUSB0"}, "/dev/ttyUSB0:/dev/y"),
    ],
)
def test_interpolation(text: str, env: dict[str, str], out: str) -> None:
    assert interpolate(text, env) == out


def test_dotenv_beside_the_file_and_the_environment_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("# comment\nexport DEV='/dev/ttyUSB1'\nOTHER=a # note\n")
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  a:\n    devices: ['${DEV}:/dev/gps']\n    environment: ['O=${OTHER}']\n"
    )
    p = load_project(tmp_path / "docker-compose.yml", env={})
    assert p.services[0].devices[0].host == "/dev/ttyUSB1"
    assert p.services[0].environment["O"] == "a"
    assert (
        load_project(tmp_path / "docker-compose.yml", env={"DEV": "/dev/x"})
        .services[0]
        .devices[0]
        .host
        == "/dev/x"
    )


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("services:\n  a:\n    image: [unclosed\n", 4, "not valid YAML"),
        ("services: [a, b]\n", 1, "'services' must be a mapping"),
        ("services:\n  a:\n    devices: ['/dev/x:/dev/y:rwz']\n", 3, "letters of 'rwm'"),
        ("services:\n  a:\n    image: ${X:?X is needed}\n", 3, "X is needed"),
        ("services:\n  a:\n    cap_add: {a: 1}\n", 3, "cap_add"),
        ("- just a list\n", 1, "expected a mapping"),
    ],
)
def test_broken_files_name_file_line_and_problem(text: str, line: int, needle: str) -> None:
    with pytest.raises(ComposeError) as err:
        load_project_text(text, "broken.yml", {})
    assert needle in str(err.value) and str(err.value).startswith("broken.yml:")
    assert err.value.line == line


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
service_keys = st.sampled_from(
    ["image", "devices", "labels", "cap_add", "privileged", "restart", "environment",
     "network_mode", "depends_on", "group_add"]
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(service_keys, yaml_values, max_size=6), st.text(max_size=40))
def test_random_services_give_records_or_clear_errors(body: dict, noise: str) -> None:
    doc = {"services": {"svc": body}}
    for text in (yaml.safe_dump(doc), noise):
        try:
            load_project_text(text, "fuzz.yml", {"A": "1"})
        except ComposeError as err:
            assert str(err).startswith("fuzz.yml")
