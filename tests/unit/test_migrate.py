"""`hwprov migrate`'s text edit: comments kept, every way a key can be written handled or
named in a note, and the result loads with nothing privileged."""

from __future__ import annotations

from hwprov.compose.loader import load_project_text
from hwprov.export.migrate import match_filter, migrate
from hwprov.planning.planner import make_plan
from hwprov.planning.requirements import requirements_of
from hwprov.records import DeviceNode, Grant, Hardware, Props

I2C = Hardware("i2c:/devices/i2c-1", "i2c", "i2c-1", "i2c", "/sys/devices/i2c-1",
               node="/dev/i2c-1", major=89, minor=1, details=Props({"bus": "1"}))  # fmt: skip
FTDI = Hardware(
    "serial:usb:0403:6001:A5:if00", "serial", "ttyUSB0", "serial", "/sys/x/ttyUSB0",
    node="/dev/ttyUSB0", major=188, minor=0,
    details=Props({"vendor_id": "0403", "model_id": "6001", "serial": "A5"}),
)  # fmt: skip
HCI = Hardware("bluetooth:uart", "bluetooth", "hci0", "bluetooth", "/sys/y/hci0")
HARDWARE = (I2C, FTDI, HCI)


def grant(hw: Hardware) -> Grant:
    if hw.kind == "bluetooth":
        return Grant(hw.id, "bt", capabilities=("NET_ADMIN",), network_mode="host",
                     labels=Props({"io.balena.features.dbus": "1"}))  # fmt: skip
    node = DeviceNode(hw.node or "", hw.node or "", "rw", hw.major, hw.minor)
    return Grant(hw.id, "node", devices=(node,))


def run(text: str):
    project = load_project_text(text, "c.yml", env={})
    reqs = [requirements_of(s, "c.yml") for s in project.services]
    plan = make_plan("c.yml", reqs, HARDWARE, grant, {})
    result = migrate(text, project, plan, HARDWARE, grant)
    return result, load_project_text(result.text, "c.yml", env={})


def test_a_privileged_service_gets_labels_caps_and_network_by_identity() -> None:
    text = (
        "services:\n"
        "  # reads everything\n"
        "  app:\n"
        "    image: x\n"
        "    network_mode: host\n"
        "    privileged: true  # old habit\n"
        "    labels:\n"
        "      - keep=me\n"
        "  other:\n"
        "    image: y\n"
    )
    result, after = run(text)
    app = next(s for s in after.services if s.name == "app")
    assert not app.privileged
    # Bluetooth, offered only on the host network, brings its capability and D-Bus feature
    assert app.network_mode == "host" and set(app.cap_add) == {"NET_ADMIN"}
    assert app.labels["keep"] == "me"  # list-form labels extended in list form
    assert app.labels["io.hwprov.device.i2c-1"] == "kind=i2c, bus=1"
    assert app.labels["io.hwprov.device.serial-ttyusb0"] == (
        "kind=serial, vendor=0403, model=6001, serial=A5"
    )
    assert app.labels["io.balena.features.dbus"] == "1"
    assert "  # reads everything\n" in result.text and "# old habit" not in result.text
    assert result.text.endswith("  other:\n    image: y\n") and not result.notes


def test_forms_it_cannot_extend_are_left_to_the_user_with_a_note() -> None:
    text = (
        "services:\n"
        "  app:\n"
        "    image: x\n"
        "    network_mode: host\n"
        "    cap_add: [SYS_ADMIN]\n"
        "    labels: {keep: me}\n"
        "    privileged: true\n"
    )
    result, after = run(text)
    assert not after.services[0].privileged
    notes = " | ".join(result.notes)
    assert "NET_ADMIN to its cap_add by hand" in notes
    assert "add these labels by hand" in notes and "kind=i2c, bus=1" in notes


def test_declared_hardware_stays_declared() -> None:
    text = "services:\n  app:\n    image: x\n    privileged: true\n    devices: [/dev/i2c-1]\n"
    _, after = run(text)
    assert not after.services[0].privileged
    assert not [k for k in after.services[0].labels if k.startswith("io.hwprov.device.")]


def test_a_needed_network_mode_is_added_or_named() -> None:
    # no network_mode: Bluetooth is not offered off the host network (planner policy), so
    # nothing asks for host; the nodes still become labels
    _, after = run("services:\n  app:\n    image: x\n    privileged: true\n")
    assert after.services[0].network_mode is None
    assert "io.hwprov.device.i2c-1" in after.services[0].labels


def test_the_filter_names_one_device_when_identity_is_shared() -> None:
    twin = Hardware("serial:usb:0403:6001:A5:if01", "serial", "ttyUSB1", "serial", "/sys/z",
                    node="/dev/ttyUSB1", details=FTDI.details)  # fmt: skip
    assert match_filter(FTDI, (FTDI, twin)) == "kind=serial, node=/dev/ttyUSB0"
    assert match_filter(HCI, HARDWARE) == "kind=bluetooth, name=hci0"
