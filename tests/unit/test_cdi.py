"""`hwprov cdi`: CDI specs from hardware records, checked against the CDI v0.6.0 schema."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import types
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hwprov.commands.cdi import output_format, render, write_specs
from hwprov.commands.main import build_parser
from hwprov.export.cdi import (
    bare,
    build_specs,
    device_name,
    minimum_version,
    problems,
    sanitise,
)
from hwprov.plugins import hookimpl, node_grant
from hwprov.plugins.host import PluginHost
from hwprov.records import DeviceNode, Grant, Hardware, Kind, ProbedDevice, Props, UdevDevice
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from udevdata import ftdi_tty, gpio_node, hci, i2c_bus

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "data" / "cdi"


def validator() -> jsonschema.Validator:
    """The CDI repo's own schema; schema.json's `defs.json#...` refs resolve from disk."""
    schema = json.loads((SCHEMA_DIR / "schema.json").read_text())
    defs = Resource.from_contents(json.loads((SCHEMA_DIR / "defs.json").read_text()), DRAFT7)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=Registry().with_resource("defs.json", defs))


def assert_valid(spec: dict[str, Any]) -> None:
    validator().validate(spec)
    assert problems(spec) == []


def builtins() -> PluginHost:
    return PluginHost().load(eps=[])


def hardware(host: PluginHost) -> list[Hardware]:
    devices = [i2c_bus(1), ftdi_tty(0), gpio_node("gpio", "gpiochip0", 254, 0), hci("hci0")]
    found = [host.classify(d) for d in devices]
    assert all(found)
    return [h for h in found if h]


def builtin_specs() -> list[dict[str, Any]]:
    host = builtins()
    return build_specs(hardware(host), host.grant)


def by_kind() -> dict[str, dict[str, Any]]:
    return {s["kind"]: s for s in builtin_specs()}


def _plugin(**hooks: object) -> types.SimpleNamespace:
    return types.SimpleNamespace(**{k: hookimpl(v) for k, v in hooks.items()})


def test_one_spec_per_kind_each_valid_against_the_schema() -> None:
    specs = builtin_specs()
    assert [s["kind"] for s in specs] == [
        "hwprov.io/bluetooth", "hwprov.io/gpio", "hwprov.io/i2c", "hwprov.io/serial",
    ]  # fmt: skip
    for spec in specs:
        assert spec["cdiVersion"] == "0.6.0" == minimum_version(spec)
        assert_valid(spec)


def test_bare_specs_claim_the_lowest_version_their_fields_need() -> None:
    # CDI 0.5 loaders (Debian 12's podman 4.3.1) refuse a 0.6.0 spec whole, annotations and all.
    specs = {s["kind"]: bare(s) for s in builtin_specs()}
    assert {k: s["cdiVersion"] for k, s in specs.items()} == {
        "hwprov.io/bluetooth": "0.3.0",  # a mount and env, no hostPath
        "hwprov.io/gpio": "0.3.0",
        "hwprov.io/i2c": "0.5.0",  # the name "1" begins with a digit
        "hwprov.io/serial": "0.5.0",  # the by-id node has a hostPath
    }
    for spec in specs.values():
        assert "annotations" not in spec
        assert all("annotations" not in d for d in spec["devices"])
        assert_valid(spec)
    assert (
        specs["hwprov.io/bluetooth"]["devices"][0]["containerEdits"]
        == (by_kind()["hwprov.io/bluetooth"]["devices"][0]["containerEdits"])
    )


def test_minimum_version_follows_the_reference_librarys_rule() -> None:
    node = {"path": "/dev/x0", "type": "c", "major": 1, "minor": 2}
    plain = {"cdiVersion": "0.3.0", "kind": "hwprov.io/x",
             "devices": [{"name": "x0", "containerEdits": {"deviceNodes": [node]}}]}  # fmt: skip
    assert minimum_version(plain) == "0.3.0"
    cases: dict[str, Any] = {
        "0.4.0": {"mounts": [{"hostPath": "/a", "containerPath": "/a", "type": "bind"}]},
        "0.5.0": {"deviceNodes": [node | {"hostPath": "/dev/y0"}]},
    }
    for want, spec_edits in cases.items():
        at_spec_level = plain | {"containerEdits": spec_edits}
        assert minimum_version(at_spec_level) == want, spec_edits
    assert minimum_version(plain | {"devices": [{"name": "0x", "containerEdits": {}}]}) == "0.5.0"
    assert minimum_version(plain | {"kind": "hwprov.io/x.y"}) == "0.6.0"
    assert minimum_version(plain | {"annotations": {"a": "b"}}) == "0.6.0"
    too_old = plain | {"containerEdits": cases["0.4.0"]}
    assert any("need cdiVersion 0.4.0, not 0.3.0" in p for p in problems(too_old))


def test_i2c_bus_is_named_by_its_number_with_its_node_numbers() -> None:
    assert by_kind()["hwprov.io/i2c"]["devices"] == [
        {
            "name": "1",
            "annotations": {"hwprov.io/id": "i2c:/devices/platform/soc/fe804000.i2c/i2c-1"},
            "containerEdits": {
                "deviceNodes": [
                    {"path": "/dev/i2c-1", "type": "c", "major": 89, "minor": 1,
                     "permissions": "rw"}
                ]
            },
        }
    ]  # fmt: skip


def test_usb_serial_is_named_by_maker_and_serial_and_also_mapped_at_its_by_id_path() -> None:
    by_id = "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"
    (device,) = by_kind()["hwprov.io/serial"]["devices"]
    assert device["name"] == "ftdi-A50285BI"
    assert device["containerEdits"]["deviceNodes"] == [
        {"path": "/dev/ttyUSB0", "type": "c", "major": 188, "minor": 0, "permissions": "rw"},
        {"path": by_id, "hostPath": "/dev/ttyUSB0", "type": "c", "major": 188, "minor": 0,
         "permissions": "rw"},
    ]  # fmt: skip


def test_kernel_only_serial_gets_the_same_name_and_the_computed_by_id_node() -> None:
    host = builtins()
    hw = host.classify(ftdi_tty(0, with_udev_db=False))
    assert hw is not None and hw.links == ()
    (spec,) = build_specs([hw], host.grant)
    (device,) = spec["devices"]
    assert device["name"] == "ftdi-A50285BI"
    assert [n["path"] for n in device["containerEdits"]["deviceNodes"]] == [
        "/dev/ttyUSB0", "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0",
    ]  # fmt: skip


def test_gpiochip_keeps_its_kernel_name() -> None:
    (device,) = by_kind()["hwprov.io/gpio"]["devices"]
    assert device["name"] == "gpiochip0"
    assert device["containerEdits"]["deviceNodes"] == [
        {"path": "/dev/gpiochip0", "type": "c", "major": 254, "minor": 0, "permissions": "rw"}
    ]


def test_bluetooth_gets_the_host_dbus_and_says_what_cdi_cannot_express() -> None:
    spec = by_kind()["hwprov.io/bluetooth"]
    assert spec["annotations"]["hwprov.io/also-needs"] == (
        "--network host --cap-add NET_ADMIN --cap-add NET_RAW"
    )
    assert "host network" in spec["annotations"]["hwprov.io/why"]
    (device,) = spec["devices"]
    assert device["name"] == "hci0"
    assert device["containerEdits"] == {
        "env": ["DBUS_SYSTEM_BUS_ADDRESS=unix:path=/host/run/dbus/system_bus_socket"],
        "mounts": [{"hostPath": "/run/dbus", "containerPath": "/host/run/dbus",
                    "options": ["rbind", "nosuid", "nodev", "noexec"]}],
    }  # fmt: skip


def test_dev_mem_ungranted_hardware_and_grants_cdi_cannot_carry_are_left_out() -> None:
    mem = Hardware("gpio:mem", Kind.GPIO, "mem", "gpio", "/sys/devices/virtual/mem/mem",
                   node="/dev/mem", major=1, minor=1, explicit_only=True)  # fmt: skip
    ghost = Hardware("x:1", "custom", "thing0", "x", "/sys/devices/thing0", node="/dev/thing0")
    host = builtins()
    assert host.grant(mem) is not None  # granted when named, but never offered
    assert build_specs([mem, ghost], host.grant) == []
    # a grant of capabilities only: nothing for the runtime to add, so no device to offer
    assert build_specs([ghost], lambda hw: Grant(hw.id, "caps", capabilities=("SYS_ADMIN",))) == []


def test_names_are_sanitised_and_unique_within_a_kind() -> None:
    assert sanitise("serial:/devices/platform/x y") == "serial:_devices_platform_x_y"
    assert sanitise("/weird name!") == "weird_name"
    assert sanitise("///") == "device"
    twins = [
        Hardware(f"c:{i}", "my/odd kind", "dev/0", "x", f"/sys/c{i}", node=f"/dev/c{i}")
        for i in (2, 1, 3)
    ]

    def grant(hw: Hardware) -> Grant:
        return Grant(hw.id, "its node", devices=(DeviceNode(hw.node or "", hw.node or ""),))

    (spec,) = build_specs(twins, grant)
    assert spec["kind"] == "hwprov.io/my_odd_kind"
    assert [d["name"] for d in spec["devices"]] == ["dev_0", "dev_0-2", "dev_0-3"]
    # the suffix follows identity, not discovery order
    assert [d["annotations"]["hwprov.io/id"] for d in spec["devices"]] == ["c:1", "c:2", "c:3"]
    # a node granted without numbers: the runtime reads type and numbers from the host node
    assert spec["devices"][0]["containerEdits"]["deviceNodes"] == [
        {"path": "/dev/c1", "permissions": "rw"}
    ]
    assert_valid(spec)


def test_usb_serial_without_a_serial_number_is_named_by_port_and_interface() -> None:
    hw = Hardware(
        "serial:usb:1a86:7523@1-1.4:if01", Kind.SERIAL, "ttyUSB3", "serial", "/sys/x",
        node="/dev/ttyUSB3", major=188, minor=3,
        details=Props({"vendor_id": "1a86", "manufacturer": "QinHeng Electronics",
                       "usb_port": "1-1.4"}),
    )  # fmt: skip
    assert device_name(hw) == "qinheng-usb1-1.4-if01"


def test_devices_are_in_natural_order_and_probed_chips_are_noted() -> None:
    host = builtins()
    buses = [host.classify(i2c_bus(n)) for n in (10, 2, 1)]
    first = buses[2]
    assert first is not None
    probed = dataclasses.replace(first, probed=(ProbedDevice("0x76", "bme280", "identified"),))
    (spec,) = build_specs([b for b in buses[:2] if b] + [probed], host.grant)
    assert [d["name"] for d in spec["devices"]] == ["1", "2", "10"]
    assert spec["devices"][0]["annotations"]["hwprov.io/probed"] == "0x76=bme280"


def test_a_third_party_kind_gets_its_spec_from_its_plugins_grant() -> None:
    host = PluginHost().load()  # with the installed hwprov-spidev entry point
    spidev = UdevDevice(
        sys_path="/sys/devices/platform/soc/fe204000.spi/spi_master/spi0/spi0.1/spidev/spidev0.1",
        subsystem="spidev", sys_name="spidev0.1", node="/dev/spidev0.1", major=153, minor=1,
    )  # fmt: skip
    hw = host.classify(spidev)
    assert hw is not None and hw.plugin == "spidev"
    (spec,) = build_specs([hw], host.grant)
    assert spec["kind"] == "hwprov.io/spi"
    (device,) = spec["devices"]
    assert device["name"] == "spidev0.1"
    assert device["containerEdits"] == {
        "deviceNodes": [
            {"path": "/dev/spidev0.1", "type": "c", "major": 153, "minor": 1, "permissions": "rw"}
        ]
    }
    assert "annotations" not in spec  # nothing beyond CDI asked for
    assert_valid(spec)


def rtc(n: int) -> Hardware:
    return Hardware(f"rtc:/devices/rtc{n}", "rtc", f"rtc{n}", "rtc", f"/sys/devices/rtc{n}",
                    node=f"/dev/rtc{n}", major=252, minor=n)  # fmt: skip


def test_a_third_party_grant_with_a_capability_says_what_cdi_cannot_express() -> None:
    def grant(hardware: Hardware) -> Grant | None:
        if hardware.plugin != "rtc":
            return None
        return node_grant(hardware, f"{hardware.name}: setting the clock", ("SYS_TIME",))

    host = builtins()
    host.register(_plugin(hwprov_grant=grant), "rtc")
    (spec,) = build_specs([rtc(1), rtc(0)], host.grant)
    notes = spec["annotations"]
    assert notes["hwprov.io/also-needs"] == "--cap-add SYS_TIME"  # once for both devices
    assert "capabilities" in notes["hwprov.io/why"]
    assert "network" not in notes["hwprov.io/why"]
    assert "rtc0: setting the clock" in notes["hwprov.io/why"]  # the plugin's own reason
    assert [d["name"] for d in spec["devices"]] == ["rtc0", "rtc1"]
    assert_valid(spec)


def test_any_kind_with_a_stable_by_id_name_is_also_mapped_there() -> None:
    by_id = "/dev/disk/by-id/usb-SanDisk_Ultra_4C530001-0:0"
    stick = Hardware("disk:/devices/sda", "disk", "sda", "disks", "/sys/devices/sda",
                     node="/dev/sda", major=8, minor=0,
                     links=("/dev/disk/by-path/usb-0:3:1.0-scsi-0:0:0:0", by_id))  # fmt: skip
    block = DeviceNode("/dev/sda", "/dev/sda", "r", 8, 0, node_type="b")
    (spec,) = build_specs([stick], lambda hw: Grant(hw.id, "read the stick", devices=(block,)))
    (device,) = spec["devices"]
    assert device["containerEdits"]["deviceNodes"] == [
        {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0, "permissions": "r"},
        {"path": by_id, "hostPath": "/dev/sda", "type": "b", "major": 8, "minor": 0,
         "permissions": "r"},
    ]  # fmt: skip
    assert block.cgroup_rule == "b 8:0 r"
    assert_valid(spec)


def test_a_broken_spec_fails_the_schema_so_the_validator_is_live() -> None:
    good = by_kind()["hwprov.io/i2c"]
    assert_valid(good)
    no_devices = {k: v for k, v in good.items() if k != "devices"}
    bad_major = copy.deepcopy(good)
    bad_major["devices"][0]["containerEdits"]["deviceNodes"][0]["major"] = "89"
    no_path = copy.deepcopy(good)
    del no_path["devices"][0]["containerEdits"]["deviceNodes"][0]["path"]
    for broken in (no_devices, bad_major, no_path):
        with pytest.raises(jsonschema.ValidationError):
            validator().validate(broken)


def test_the_loader_rules_the_schema_does_not_carry() -> None:
    good = by_kind()["hwprov.io/serial"]
    cases: dict[str, Any] = {
        "not a CDI device name": ("name", "ftdi/A5"),
        "unknown field 'additionalGids'": ("additionalGids", [20]),  # a 0.7.0 field
        "invalid permissions": ("permissions", "rwx"),
        "need cdiVersion 0.6.0": ("cdiVersion", "0.5.0"),
        "is not vendor/class": ("kind", "hwprov.io"),
        "name used twice": ("twice", None),
    }
    for message, (field, value) in cases.items():
        spec = copy.deepcopy(good)
        device = spec["devices"][0]
        if field == "name":
            device["name"] = value
        elif field == "additionalGids":
            device["containerEdits"][field] = value
        elif field == "permissions":
            device["containerEdits"]["deviceNodes"][0][field] = value
        elif field == "twice":
            spec["devices"].append(copy.deepcopy(device))
        else:
            spec[field] = value
        validator().validate(spec)  # the schema lets every one of these through
        assert any(message in p for p in problems(spec)), (message, problems(spec))


def test_yaml_and_json_renderings_load_back_to_the_same_spec() -> None:
    spec = by_kind()["hwprov.io/i2c"]
    assert yaml.safe_load(render(spec, "yaml")) == spec  # name "1" stays a string
    assert json.loads(render(spec, "json")) == spec


def test_output_writes_one_file_per_kind_and_removes_stale_ones(tmp_path: Path) -> None:
    specs = builtin_specs()
    mine = tmp_path / "hwprov-old.yaml"
    mine.write_text("cdiVersion: 0.6.0\nkind: hwprov.io/old\ndevices: []\n")
    theirs = tmp_path / "hwprov-notes.yaml"
    theirs.write_text("kind: vendor.com/other\n")
    paths = write_specs(specs, str(tmp_path / "hwprov.yaml"), output_format("x.yaml", None))
    assert [p.name for p in paths] == [
        "hwprov-bluetooth.yaml", "hwprov-gpio.yaml", "hwprov-i2c.yaml", "hwprov-serial.yaml",
    ]  # fmt: skip
    assert not mine.exists() and theirs.exists()
    for path, spec in zip(paths, specs, strict=True):
        assert yaml.safe_load(path.read_text()) == spec
    folder = tmp_path / "run" / "cdi"
    written = write_specs(specs[:1], f"{folder}/", output_format(f"{folder}/", "json"))
    assert written == [folder / "hwprov-bluetooth.json"]
    assert json.loads(written[0].read_text()) == specs[0]


def test_help_has_an_example() -> None:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser = sub.choices["cdi"]
    assert (parser.epilog or "").startswith("example: hwprov cdi ")
    text = parser.format_help()
    assert "--output" in text and "--format" in text and "--disable" in text
