"""Loading plugins from entry points, and keeping one bad plugin from hurting the others."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import types

from hwprov.plugins import hookimpl, node_grant
from hwprov.plugins.host import PluginHost
from hwprov.records import Hardware, Kind, UdevDevice
from udevdata import i2c_bus

SPIDEV = UdevDevice(
    sys_path="/sys/devices/platform/soc/fe204000.spi/spi_master/spi0/spi0.0/spidev/spidev0.0",
    subsystem="spidev", sys_name="spidev0.0", node="/dev/spidev0.0", major=153, minor=0,
)  # fmt: skip


def _plugin(**hooks: object) -> types.SimpleNamespace:
    return types.SimpleNamespace(**{k: hookimpl(v) for k, v in hooks.items()})


def test_installed_third_party_plugin_takes_part() -> None:
    # hwprov-spidev is a real distribution under tests/plugins, pip-installed by bootstrap.
    eps = importlib.metadata.entry_points(group="hwprov")
    assert "spidev" in eps.names
    host = PluginHost().load()
    assert "spidev" in host.names and "spidev" in host.subsystems()
    hw = host.classify(SPIDEV)
    assert hw is not None and (hw.kind, hw.plugin) == ("spi", "spidev")
    grant = host.grant(hw)
    assert grant is not None and grant.devices[0].cgroup_rule == "c 153:0 rw"


def test_entry_point_that_fails_to_import_is_reported_and_isolated() -> None:
    broken = importlib.metadata.EntryPoint(
        name="broken", value="hwprov_no_such_module", group="hwprov"
    )
    host = PluginHost().load(eps=[broken])
    assert [(p.plugin, p.where) for p in host.problems] == [("broken", "load")]
    assert "ModuleNotFoundError" in host.problems[0].error
    assert host.classify(i2c_bus()) is not None  # the built-ins still work


def test_a_raising_hook_is_reported_and_the_next_plugin_answers() -> None:
    def explode(device: UdevDevice) -> Hardware | None:
        raise RuntimeError("boom")

    host = PluginHost().load(eps=[])
    host.register(_plugin(hwprov_classify=explode), "exploding")
    hw = host.classify(i2c_bus())
    assert hw is not None and hw.kind == Kind.I2C  # the built-in i2c plugin still classified it
    assert [(p.plugin, p.where) for p in host.problems] == [("exploding", "hwprov_classify")]
    assert "boom" in host.problems[0].error


def test_external_plugin_is_asked_before_the_builtin_fallback() -> None:
    def claim(device: UdevDevice) -> Hardware | None:
        return Hardware(id="mine", kind="custom-i2c", name=device.sys_name, plugin="mine",
                        sys_path=device.sys_path)  # fmt: skip

    mine = _plugin(hwprov_classify=claim)
    host = PluginHost()
    host.register(mine, "mine")
    host.load(eps=[])
    hw = host.classify(i2c_bus())
    assert hw is not None and hw.kind == "custom-i2c"


def test_disabled_plugins_are_not_loaded() -> None:
    host = PluginHost(disabled=["i2c", "spidev"]).load()
    assert "i2c" not in host.names and "spidev" not in host.names
    assert host.classify(i2c_bus()) is None
    assert "i2c-dev" not in host.subsystems()


def test_a_hook_returning_junk_is_reported_not_used() -> None:
    host = PluginHost().load(eps=[])
    host.register(_plugin(hwprov_subsystems=lambda: ["usb", 42]), "junk")
    assert "usb" in host.subsystems()
    assert any("42" in p.error for p in host.problems)
    host.register(_plugin(hwprov_grant=lambda hardware: "not a grant"), "junk2")
    hw = host.classify(i2c_bus())
    assert hw is not None and host.grant(hw) is None


def test_a_misspelt_hook_is_a_reported_problem_not_silence() -> None:
    host = PluginHost()
    host.register(_plugin(hwprov_clasify=lambda device: None), "typo")
    host.load(eps=[])
    assert [(p.plugin, p.where) for p in host.problems] == [("typo", "load")]
    assert "hwprov_clasify is not a hwprov hook" in host.problems[0].error
    assert "hwprov_classify" in host.problems[0].error  # the hooks it could have meant
    assert host.classify(SPIDEV) is None  # the built-ins still work; nothing claims spidev


def test_a_bad_item_names_the_plugin_that_returned_it() -> None:
    host = PluginHost()
    host.register(_plugin(hwprov_subsystems=lambda: ["spidev", 7]), "sloppy")
    host.load(eps=[], builtins=False)
    assert host.subsystems() == ["spidev"]
    assert [(p.plugin, p.where) for p in host.problems] == [("sloppy", "hwprov_subsystems")]


def test_granting_a_node_that_is_not_there_is_the_plugins_problem() -> None:
    nodeless = Hardware.from_device(SPIDEV, kind="spi", id="spi:x", plugin="careless")
    nodeless = dataclasses.replace(nodeless, node=None)
    host = PluginHost()
    host.register(_plugin(hwprov_grant=lambda hardware: node_grant(hardware, "why")), "careless")
    host.load(eps=[], builtins=False)
    assert host.grant(nodeless) is None
    assert [(p.plugin, p.where) for p in host.problems] == [("careless", "hwprov_grant")]
    assert "PluginError: spi:x has no device node" in host.problems[0].error


def test_a_list_hook_returning_no_list_is_its_problem_not_a_traceback() -> None:
    host = PluginHost().load(eps=[])
    host.register(_plugin(hwprov_affects=lambda device: 5), "five")
    host.register(_plugin(hwprov_subsystems=lambda: "tty"), "text")  # not t, t, y
    assert host.affects(i2c_bus()) == []
    assert "t" not in host.subsystems() and "tty" in host.subsystems()  # the serial plugin's
    assert {(p.plugin, p.where) for p in host.problems} == {
        ("five", "hwprov_affects"), ("text", "hwprov_subsystems"),
    }  # fmt: skip


def test_a_bus_numbered_in_other_digits_is_not_an_i2c_bus() -> None:
    host = PluginHost().load(eps=[])
    for name in ("i2c-\u00b2", "i2c-\u0661"):  # superscript two, Arabic-Indic one
        odd = dataclasses.replace(i2c_bus(1), sys_name=name, node=f"/dev/{name}")
        assert host.classify(odd) is None
    assert host.problems == []
