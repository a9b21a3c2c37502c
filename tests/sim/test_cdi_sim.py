"""`hwprov cdi` on the simulated Raspberry Pi 4: what it prints loads under the CDI schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
from conftest import sim
from hwprov.export.cdi import problems
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "data" / "cdi"


def validator() -> jsonschema.Validator:
    schema = json.loads((SCHEMA_DIR / "schema.json").read_text())
    defs = Resource.from_contents(json.loads((SCHEMA_DIR / "defs.json").read_text()), DRAFT7)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=Registry().with_resource("defs.json", defs))


def cdi_specs(*shell: str, flags: str = "") -> dict[str, dict[str, Any]]:
    out = sim("sh", "-c", "; ".join([*shell, f"hwprov cdi --format json {flags}"]), board="rpi4b")
    assert out.returncode == 0, out.stderr
    specs = json.loads(out.stdout)
    check = validator()
    for spec in specs:
        check.validate(spec)
        assert problems(spec) == [], spec["kind"]
    return {s["kind"]: s for s in specs}


def nodes(spec: dict[str, Any], name: str) -> list[tuple[str, str, int, int]]:
    (device,) = (d for d in spec["devices"] if d["name"] == name)
    return [
        (n["path"], n.get("hostPath", n["path"]), n["major"], n["minor"])
        for n in device["containerEdits"]["deviceNodes"]
    ]


def test_rpi4_specs_validate_and_name_the_board_hardware() -> None:
    specs = cdi_specs("hwprov sim plug ftdi >/dev/null")
    assert sorted(specs) == [
        "hwprov.io/bluetooth", "hwprov.io/gpio", "hwprov.io/i2c", "hwprov.io/serial",
    ]  # fmt: skip
    assert nodes(specs["hwprov.io/i2c"], "1") == [("/dev/i2c-1", "/dev/i2c-1", 89, 1)]
    assert nodes(specs["hwprov.io/serial"], "ftdi-A50285BI") == [
        ("/dev/ttyUSB0", "/dev/ttyUSB0", 188, 0),
        ("/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0", "/dev/ttyUSB0",
         188, 0),
    ]  # fmt: skip
    assert [d["name"] for d in specs["hwprov.io/gpio"]["devices"]] == [
        "gpiochip0", "gpiochip1", "gpiomem",  # /dev/mem is explicit-only: not offered
    ]  # fmt: skip
    assert [d["name"] for d in specs["hwprov.io/bluetooth"]["devices"]] == ["hci0"]
    # By default no annotations, so each spec is at the version CDI 0.5 runtimes read.
    assert {k: s["cdiVersion"] for k, s in specs.items()} == {
        "hwprov.io/bluetooth": "0.3.0", "hwprov.io/gpio": "0.3.0",
        "hwprov.io/i2c": "0.5.0", "hwprov.io/serial": "0.5.0",
    }  # fmt: skip


def test_annotations_are_asked_for_and_make_the_specs_0_6_0() -> None:
    specs = cdi_specs(flags="--annotations")
    assert {s["cdiVersion"] for s in specs.values()} == {"0.6.0"}
    # Only the bluetooth grant asks for what CDI cannot carry, and its spec says so.
    assert {k for k, s in specs.items() if s.get("annotations")} == {"hwprov.io/bluetooth"}
    assert specs["hwprov.io/bluetooth"]["annotations"]["hwprov.io/also-needs"] == (
        "--network host --cap-add NET_ADMIN --cap-add NET_RAW"
    )
    (bus,) = specs["hwprov.io/i2c"]["devices"]
    assert bus["annotations"]["hwprov.io/id"] == "i2c:/devices/platform/soc/fe804000.i2c/i2c-1"


def test_output_folder_gets_one_file_per_kind(tmp_path: Path) -> None:
    out = sim("hwprov", "cdi", "--output", f"{tmp_path}/cdi/", board="rpi4b")
    assert out.returncode == 0, out.stderr
    written = sorted(p.name for p in (tmp_path / "cdi").iterdir())
    assert written == ["hwprov-bluetooth.yaml", "hwprov-gpio.yaml", "hwprov-i2c.yaml",
                       "hwprov-serial.yaml"]  # fmt: skip
    assert "hwprov-i2c.yaml (cdiVersion 0.5.0): hwprov.io/i2c=1" in out.stderr
    # Without annotations the flags CDI cannot carry are said where the user sees them.
    assert (
        "hwprov.io/bluetooth also needs on the run line: --network host --cap-add NET_ADMIN "
        "--cap-add NET_RAW" in out.stderr
    )
