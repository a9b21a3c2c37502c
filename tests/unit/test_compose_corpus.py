"""The compose loader on the 60 real files of ../shared/compose-corpus (skipped when absent)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hwprov.compose import Project, load_project
from hwprov.compose.interpolate import read_dotenv
from hwprov.errors import ComposeError

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "compose-corpus"
FILES = sorted((CORPUS / "corpus").iterdir()) if (CORPUS / "corpus").is_dir() else []
pytestmark = pytest.mark.skipif(not FILES, reason="../shared/compose-corpus is not here")

# Really broken: docker-compose 1.24.1 refused it too (index.tsv), fixed in the next commit.
REJECTED = {
    "google__android-emulator-container-scripts__js__docker__docker-compose.yaml@02ef230": (
        27,
        "service 'emulator': devices: expected a list, got '/dev/kvm' "
        "(write one path as '- /dev/kvm')",
    ),
}  # fmt: skip
# Fine once their variables are set; refused with file:line until then. IOTstack's own error
# text says what to put in ~/IOTstack/.env; meshtastic's comes from companions/.
NEEDS_ENV = {
    "SensorsIot__IOTstack__.templates__deconz__service.yml": (
        12, "required variable DECONZ_DEVICE_PATH", {"DECONZ_DEVICE_PATH": "/dev/ttyUSB0"}
    ),
    "SensorsIot__IOTstack__.templates__esphome__service.yml": (
        8, "required variable ESPHOME_PASSWORD", {"ESPHOME_PASSWORD": "ChangeMe"}
    ),
    "SensorsIot__IOTstack__.templates__zigbee2mqtt__service.yml": (
        19, "required variable ZIGBEE2MQTT_DEVICE_PATH", {"ZIGBEE2MQTT_DEVICE_PATH": "/dev/ttyACM0"}
    ),
    "meshtastic__firmware__docker-compose.yml": (
        12, "got '' after interpolating '${USB_DEVICE}'", {}
    ),
}  # fmt: skip


def companion(name: str) -> Path | None:
    """companions/<prefix>.env.example belongs to the corpus files named <prefix>*."""
    for path in sorted((CORPUS / "companions").glob("*.env*")):
        if name.startswith(path.name.split(".env")[0]):
            return path
    return None


def env_for(name: str) -> dict[str, str]:
    path = companion(name)
    env = read_dotenv(path.read_text(), source=str(path)) if path else {}
    return {**env, **NEEDS_ENV.get(name, (0, "", {}))[2]}


def load(name: str) -> Project:
    return load_project(CORPUS / "corpus" / name, env=env_for(name))


def test_the_corpus_is_the_one_described() -> None:
    assert len(FILES) == 60
    index = (CORPUS / "index.tsv").read_text().splitlines()[1:]
    assert sorted(line.split("\t")[0] for line in index) == [f.name for f in FILES]


@pytest.mark.parametrize("path", FILES, ids=[f.name[:70] for f in FILES])
def test_every_file_loads_or_is_rejected_with_file_line_and_reason(path: Path) -> None:
    if path.name in REJECTED:
        line, message = REJECTED[path.name]
        with pytest.raises(ComposeError) as err:
            load(path.name)
        assert (err.value.line, err.value.message) == (line, message)
        assert str(err.value).startswith(f"{path}:{line}:")
        return
    if path.name in NEEDS_ENV:
        line, needle, _ = NEEDS_ENV[path.name]
        with pytest.raises(ComposeError) as err:
            load_project(path, env={})
        assert err.value.line == line and needle in err.value.message
    project = load(path.name)
    assert project.services, f"{path.name}: no services"
    assert project.source == str(path)
    for service in project.services:
        assert service.line > 0
        hash(service)  # frozen all the way down
        for device in service.devices:
            assert device.host and device.container and device.line


def test_node_red_devices_caps_and_lines() -> None:
    red = load("balena-labs-projects__balena-node-red__docker-compose.yml").service("node-red")
    assert [(d.host, d.container, d.permissions, d.line) for d in red.devices] == [
        ("/dev/mem", "/dev/mem", None, 21),
        ("/dev/gpiomem", "/dev/gpiomem", None, 22),
        ("/dev/i2c-1", "/dev/i2c-1", None, 23),
    ]
    assert red.privileged and red.network_mode == "host" and red.cap_add == ("SYS_RAWIO",)
    assert red.features == ("supervisor-api",) and red.restart == "always"


def test_compose_go_device_fixtures_short_long_and_placeholder_permissions() -> None:
    short = load("compose-spec__compose-go__loader__tests__devices_test.go#TestDeviceMapping.yaml")
    assert [(d.host, d.container, d.permissions) for d in short.service("test").devices] == [
        ("/dev/source", "/dev/target", "permissions"),
        ("/dev/single", "/dev/single", None),  # the engine's default, rwm, applies
    ]
    assert any(
        "'permissions' of '/dev/source' are not letters of 'rwm'" in w for w in short.warnings
    )
    long = load(
        "compose-spec__compose-go__loader__tests__devices_test.go#TestDeviceMappingLongSyntax.yaml"
    )
    [device] = long.service("test").devices
    assert (device.host, device.container, device.line) == ("/dev/source", "/dev/target", 6)
    gpu = load(
        "compose-spec__compose-go__loader__tests__devices_test.go#TestDeviceReservation.yaml"
    )
    assert gpu.service("test").devices == ()  # deploy.resources...devices are GPU requests


def test_labels_in_list_form_and_dollar_escapes() -> None:
    tailscale = load("klutchell__balena-tailscale__docker-compose.yml").services[0]
    assert dict(tailscale.labels) == {"io.balena.features.kernel-modules": "1"}
    assert tailscale.cap_add == ("net_admin", "sys_module")  # kept as written
    adsb = load("ketilmo__balena-ads-b__docker-compose.yml")
    kiosk, dump = adsb.service("kiosk"), adsb.service("dump1090-fa")
    assert kiosk.features == ("supervisor-api",)
    regex = "traefik.http.middlewares.dump1090-fa-redirect.redirectregex.regex"
    assert dump.labels[regex] == "^.*/dump1090-fa.*$"  # '$$' read as '$'
    assert [(d.host, d.container) for d in dump.devices] == [("/dev/bus/usb", "/dev/bus/usb")]


def test_anchors_and_merges_resolve() -> None:
    supervisor = load("balena-os__balena-supervisor__docker-compose.yml")
    assert supervisor.version == "2.3"
    assert supervisor.service("core-next").image == "ghcr.io/balena-io/helios:0.25.28"
    assert supervisor.service("service-relay").image == "ghcr.io/balena-io/helios:0.25.28"
    assert supervisor.service("core").features == ("balena-api", "balena-socket", "dbus")
    assert all(s.devices == () for s in supervisor.services)  # driver_opts 'device:' is no device
    printers = load("mkuf__prind__custom__docker-compose.custom.multiple-printers.yaml")
    klipper = printers.service("printer1-klipper")
    assert klipper.privileged and "/dev:/dev" in klipper.volumes  # both from x-klipper-svc
    webcam = printers.service("printer2-webcam")
    assert [(d.host, d.container) for d in webcam.devices] == [("/dev/video1", "/dev/webcam")]
    srcful = load("srcfl__srcful-gateway__docker-compose.yml")  # a list of maps merged into env
    assert srcful.service("web").environment["REST_SERVICE_PORT"] == "5000"


def test_interpolated_device_entries_resolve_from_env_and_dotenv(tmp_path: Path) -> None:
    name = "meshtastic__firmware__docker-compose.yml"
    [device] = load(name).services[0].devices
    assert (device.host, device.container, device.permissions, device.line) == (
        "/dev/bus/usb/001/037", "/dev/bus/usb/001/037", None, 12
    )  # fmt: skip
    # The same through a real .env beside the file, and an explicit env winning over it.
    shutil.copy(CORPUS / "corpus" / name, tmp_path / "docker-compose.yml")
    shutil.copy(companion(name), tmp_path / ".env")  # type: ignore[arg-type]
    assert load_project(tmp_path / "docker-compose.yml", env={}).services[0].devices == (device,)
    mine = load_project(tmp_path / "docker-compose.yml", env={"USB_DEVICE": "/dev/ttyUSB0"})
    assert mine.services[0].devices[0].host == "/dev/ttyUSB0"
    mjpg = load("SensorsIot__IOTstack__.templates__mjpg-streamer__service.yml")
    assert [(d.host, d.container) for d in mjpg.services[0].devices] == [("/dev/video0",) * 2]
    zigbee = load("SensorsIot__IOTstack__.templates__zigbee2mqtt__service.yml")
    assert [(d.host, d.container) for d in zigbee.services[0].devices] == [("/dev/ttyACM0",) * 2]


def test_restart_no_unquoted_and_quoted() -> None:
    sound = load("balena-io-experimental__balena-sound__docker-compose.yml")
    assert sound.service("hostname").restart == "no"
    dashboard = load("tdicola__balena-multi-device-sensor-dashboard__docker-compose.yml")
    assert dashboard.service("dtoverlay-dht-bbb").restart == "no"
    assert load("klutchell__balena-pihole__docker-compose.yml").service("hostname").restart == "no"
    ruuvi = load("balena-io-examples__ruuvitag__docker-compose.yml")
    assert ruuvi.service("sensor").restart == "never"
    assert any("restart 'never' is not a policy" in w for w in ruuvi.warnings)


def test_legacy_resin_labels_read_as_balena() -> None:
    gps = load("balena-io-experimental__gps-tracker__docker-compose.yml").services[0]
    assert gps.features == ("balena-api", "dbus", "supervisor-api")
    assert not any(k.startswith("io.resin.") for k in gps.labels)


def test_supervisor_target_state_json() -> None:
    project = load(
        "balena-os__balena-supervisor__test__data__docker-states__network-mode-service__compose.json"
    )
    [main] = project.services
    assert main.name == "main" and main.network_mode == "service:test"
    assert main.image.startswith("sha256:f9e0fa6e") and main.raw["tty"] is True
    assert "imageId" not in main.raw and main.line == 1
    assert any("'composition'" in w for w in project.warnings)


def test_odd_shapes_from_the_index() -> None:
    hvac = load("frederikheld__balena-hvac__docker-compose.yml").service("hvac")
    assert ("/var/run", "/var/run") in [(d.host, d.container) for d in hvac.devices]  # kept
    assert hvac.privileged and hvac.line == 4
    scrypted = load("koush__scrypted__install__docker__docker-compose.yml")
    assert scrypted.service("scrypted").devices == ()  # a flow list of comments only
    frigate = load("jvanlier__infra-pi-home__frigate__docker-compose.yml").services[0]
    assert [(d.host, d.container) for d in frigate.devices] == [("/dev/bus/usb",) * 2]
    kvm = load(
        "google__android-emulator-container-scripts__js__docker__docker-compose.yaml@7b43ec7"
    )
    assert [d.host for s in kvm.services for d in s.devices] == ["/dev/kvm"]
    rak = load("xoseperez__rak-basicstation__docker-compose.yml")
    concentratord = rak.service("chirpstack-concentratord")
    assert [(d.host, d.container) for d in concentratord.devices] == [
        ("/dev/rak5146", "/dev/ttyACM0")
    ]
    assert concentratord.group_add == ("dialout",)
    assert rak.service("rak-basicstation").depends_on == ("chirpstack-concentratord",)
    assert any("ignores container_name" in n for n in rak.notes)
    domoticz = load("SensorsIot__IOTstack__.templates__domoticz__service.yml").services[0]
    assert domoticz.devices == () and "x-devices" in domoticz.raw  # disabled by the x- prefix
    ultrafeeder = load("sdr-enthusiasts__docker-adsb-ultrafeeder__docker-compose.yml").services[0]
    assert ultrafeeder.device_cgroup_rules == ("c 189:* rwm",)
    assert ultrafeeder.environment["LOGLEVEL"] == "verbose"  # ${LOGLEVEL-verbose}
    bluetooth = load("balena-labs-projects__bluetooth__docker-compose.yml").services[0]
    assert bluetooth.labels["io.balena.features.dbus"] == "1"  # an int in the file


def test_network_modes() -> None:
    project = load("docker__compose__tests__fixtures__networks__network-mode.yml@5c6c300")
    assert [s.network_mode for s in project.services] == [
        "bridge", "service:bridge", "container:composetest_network_mode_container", "host", "none"
    ]  # fmt: skip


def test_no_corpus_file_has_duplicate_keys() -> None:
    # The decision to refuse duplicates (docs/compose.md) costs no corpus file.
    for path in FILES:
        try:
            load(path.name)
        except ComposeError as err:
            assert "duplicate key" not in err.message
