"""Typos in hwprov's labels are errors at plan time that name what was meant, not silence."""

from __future__ import annotations

import types

import pytest
from hwprov.compose.loader import load_project_text
from hwprov.errors import ComposeError
from hwprov.planning.build import build_plan
from hwprov.planning.matchlabels import misspelt_labels
from hwprov.plugins import Hardware, UdevDevice, hookimpl
from hwprov.plugins.host import PluginHost

HOST = PluginHost().load(eps=[])


def compose(*labels: str) -> str:
    lines = "".join(f"\n      {label}" for label in labels)
    return f"services:\n  gps:\n    image: busybox\n    labels:{lines}\n"


def plan_error(text: str, host: PluginHost = HOST) -> str:
    with pytest.raises(ComposeError) as err:
        build_plan(load_project_text(text, "docker-compose.yml"), [], host)
    return str(err.value)


def test_an_unknown_kind_is_an_error_naming_the_known_kinds_and_the_nearest() -> None:
    message = plan_error(compose('io.hwprov.device.gps: "kind=serail, vendor=0403"'))
    assert message == (
        "docker-compose.yml:2:1: service 'gps': label io.hwprov.device.gps: kind 'serail' is "
        "not one the loaded plugins know (kinds: bluetooth, gpio, i2c, serial); did you mean "
        "'serial'?"
    )


@pytest.mark.parametrize(
    ("label", "meant"),
    [
        ("io.hwprov.devices.gps", "io.hwprov.device.gps"),
        ("io.hwprov.device-gps", "io.hwprov.device.gps"),
        ("io.hwprv.device.gps", "io.hwprov.device.gps"),
        ("io.hwprov.enabled", "io.hwprov.enable"),
        ("io.hwprov.on_unplug", "io.hwprov.on-unplug"),
        ("io.hwprov.grants", "io.hwprov.grant"),
    ],
)
def test_a_misspelt_label_is_an_error_with_a_suggestion(label: str, meant: str) -> None:
    message = plan_error(compose(f'{label}: "kind=serial"'))
    assert f"label '{label}' is not one hwprov reads" in message
    assert message.endswith(f"did you mean '{meant}'?")


def test_anything_else_in_the_namespace_is_an_error_and_other_vendors_labels_are_not() -> None:
    assert misspelt_labels({"io.hwprov.colour": "x"}) == [
        "label 'io.hwprov.colour' is not one hwprov reads "
        "(io.hwprov.device.<slot>, io.hwprov.enable, io.hwprov.on-unplug, io.hwprov.grant); "
        "did you mean "
        "'io.hwprov.device.colour'?"
    ]
    assert misspelt_labels({"io.hwprov.device.": "kind=i2c"}) == [
        "label 'io.hwprov.device.': a slot name must follow io.hwprov.device."
    ]
    fine = {
        "io.hwprov.device.gps": "kind=serial",
        "io.hwprov.enable": "true",
        "io.hwprov.on-unplug": "stop",
        "io.hwprov.held": "gps",
        "io.balena.features.dbus": "1",
        "com.example.device.gps": "x",
        "traefik.enable": "true",
    }
    assert misspelt_labels(fine) == []


def _spi_plugin(declares: bool) -> types.SimpleNamespace:
    def classify(device: UdevDevice) -> Hardware | None:
        return None

    hooks: dict[str, object] = {"hwprov_classify": hookimpl(classify)}
    if declares:
        hooks["hwprov_kinds"] = hookimpl(lambda: ["spi"])
    return types.SimpleNamespace(**hooks)


def test_a_third_party_kind_is_known_when_its_plugin_declares_it() -> None:
    host = PluginHost().load(eps=[])
    host.register(_spi_plugin(declares=True), "spidev")
    assert host.kinds().names == {"bluetooth", "gpio", "i2c", "serial", "spi"}
    project = load_project_text(compose('io.hwprov.device.flash: "kind=spi"'), "c.yml")
    plan = build_plan(project, [], host)
    assert plan.warnings == () and plan.services[0].unmet[0].reason == "nothing attached matches"
    assert "did you mean 'spi'?" in plan_error(compose('io.hwprov.device.f: "kind=sip"'), host)


def test_while_a_classifying_plugin_keeps_its_kinds_to_itself_an_unknown_kind_is_a_warning() -> (
    None
):
    host = PluginHost().load(eps=[])
    host.register(_spi_plugin(declares=False), "spidev")
    assert host.kinds().undeclared == ("spidev",)
    project = load_project_text(compose('io.hwprov.device.flash: "kind=spi"'), "c.yml")
    plan = build_plan(project, [], host)
    assert plan.warnings == (
        "c.yml:2: service 'gps': label io.hwprov.device.flash: kind 'spi' is not one the loaded "
        "plugins know (kinds: bluetooth, gpio, i2c, serial) (unless spidev, which does not say, "
        "makes it)",
    )


def test_the_grant_label_takes_live_or_recreate_and_nothing_else() -> None:
    """io.hwprov.grant (issue 18): read per service, a bad value is an error at plan time."""
    from hwprov.planning.matchlabels import grant_mode
    from hwprov.records import GrantMode

    assert grant_mode({"io.hwprov.grant": " Live "}) == GrantMode.LIVE
    assert grant_mode({"io.hwprov.grant": "recreate"}) == GrantMode.RECREATE
    assert grant_mode({}) is None  # hwprov run's default decides
    message = plan_error(compose('io.hwprov.grant: "hotplug"'))
    assert message.endswith(
        "service 'gps': io.hwprov.grant: 'hotplug' is not a grant mode (expected recreate or live)"
    )
